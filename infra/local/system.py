"""The local system, composed: moto, the emulated fleet and its routes, the control API +
frontend + socket router, the reconcile loop, the host agent.

Everything the AWS deployment has, on one machine, wired the same way: the control API and
reconcile are the Lambda code with the same settings model, given the fleet and route table
emulations behind the same interfaces as AWS's adapters; each host's backend reads the same
`SPINUP_*` variables it reads on a GPU host; moto answers the same boto3 calls.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from pydantic import SecretStr

from gpu_host.models.user_models import offered_models, read_user_models
from infra.csp import content_security_policy
from infra.local.agent import HostAgent, Initializer
from infra.local.emulated_aws import autoscaling_client, ec2_client, start_moto
from infra.local.fleet import EmulatedFleet
from infra.local.issuer import DEV_AUDIENCE, DevIssuer
from infra.local.oidc import LocalOidcProvider, ProviderSettings
from infra.local.ports import SlotPorts
from infra.local.routes import LocalRoutes
from infra.local.settings import LocalSettings
from infra.local.supervisor import backend_env, host_stacks
from infra.local.web import add_local_routes, code_flow_config, front_config
from infra.local.ws_proxy import DenialNoise
from lambdas.aws.clients import make_clients
from lambdas.bootstrap import bootstrap
from lambdas.control.app import create_app
from lambdas.reconcile.handler import STATE_CHANGE, handle
from lambdas.settings import Settings

log = logging.getLogger(__name__)

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
}
"""moto accepts any credentials; these keep boto3 from looking for real ones."""
GROUP_NAME = "spinup-local-gpu"


class ReconcileLoop:
    """The local stand-in for EventBridge: a tick every few seconds, plus state changes."""

    def __init__(self, *, reconcile: Callable[[dict[str, Any]], object], interval_s: float) -> None:
        self._reconcile = reconcile
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="reconcile-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def fire(self, event: dict[str, Any]) -> None:
        # One reconcile at a time in this process, as one Lambda invocation handles one event.
        with self._lock:
            try:
                self._reconcile(event)
            except Exception:
                log.exception("reconcile failed (the next tick tries again)")

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.fire({"detail-type": "Scheduled Event", "source": "spinup.local"})


def _state_change(instance_id: str, state: str) -> dict[str, Any]:
    return {
        "detail-type": STATE_CHANGE,
        "source": "aws.ec2",
        "detail": {"instance-id": instance_id, "state": state},
    }


def _page_config(
    local: LocalSettings, issuer: DevIssuer, oidc: LocalOidcProvider
) -> dict[str, Any]:
    """/config.json: a development token, or (`SPINUP_LOCAL_SIGN_IN=code`) the code flow. No
    socket URL: each session gets its host's from the status."""
    config: dict[str, Any] = {"apiBase": "/api"}
    if local.sign_in == "dev":
        config["devToken"] = issuer.issue()
    else:
        config["oidc"] = code_flow_config(local.ui_origin, oidc.settings)
    return config


@contextlib.contextmanager
def local_system(local: LocalSettings) -> Iterator[uvicorn.Server]:
    """Start every part; yields the (not yet serving) UI+API server; stops all on exit."""
    for name, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    local.run_dir.mkdir(parents=True, exist_ok=True)

    with contextlib.ExitStack() as stack:
        moto, endpoint = start_moto(bind=local.bind, port=local.moto_port)
        stack.callback(moto.stop)
        issuer = DevIssuer(issuer=local.ui_origin)
        oidc = LocalOidcProvider(
            issuer=issuer,
            settings=ProviderSettings(
                # The client id is the ID token's audience, as with Cognito.
                client_id=DEV_AUDIENCE,
                redirect_uri=f"{local.ui_origin}/",
                token_ttl_s=local.token_ttl_s,
                refresh_ttl_s=local.refresh_ttl_s,
            ),
        )
        jwks_url = f"{local.ui_origin}/.well-known/jwks.json"
        # Socket tickets are signed with a secret of this run only (in AWS, Secrets Manager's).
        ticket_secret = secrets.token_urlsafe(48)

        # What exists only locally is set here; everything else (timeouts, budget, instance
        # types, sessions per host) comes from SPINUP_* in the environment, as the Lambdas
        # read it.
        settings = Settings(
            table_name=local.table_name,
            group_name=GROUP_NAME,
            aws_region=local.region,
            aws_endpoint_url=endpoint,
            ws_base_url=local.ws_base_url,
            auth_mode="jwks",
            jwks_url=jwks_url,
            jwt_issuer=issuer.issuer,
            jwt_audience=DEV_AUDIENCE,
            ticket_secret=SecretStr(ticket_secret),
        )
        ports = SlotPorts(local.first_host_ports)
        fleet = EmulatedFleet.create(
            autoscaling=autoscaling_client(endpoint=endpoint, region=local.region),
            ec2=ec2_client(endpoint=endpoint, region=local.region),
            group_name=settings.group_name,
            image_id=local.image_id,
            instance_type=settings.default_instance_type,
            max_size=local.max_hosts,
            warm_pool_size=local.warm_hosts,
            # A host's "public DNS name" is its backend's address: the origin the route
            # table (the KeyValueStore in AWS) names for its sockets.
            origin_of_slot=lambda slot: f"{local.bind}:{ports(slot).backend}",
        )
        routes = LocalRoutes()
        clients = make_clients(settings, fleet=fleet, routes=routes)
        bootstrap(settings, clients)

        app = create_app(settings, clients=clients)
        add_local_routes(
            app,
            frontend_dir=local.frontend_dir,
            config=_page_config(local, issuer, oidc),
            jwks=issuer.jwks(),
            # Sockets go through this origin (the web front routes them), as through CloudFront.
            csp=content_security_policy(),
            oidc=oidc,
            routes=routes,
            dev_token=issuer.issue if local.sign_in == "dev" else None,
            models=offered_models(read_user_models(local.user_models), local.served_models),
        )

        loop = ReconcileLoop(
            reconcile=lambda event: handle(event, settings, clients, time.time()),
            interval_s=local.reconcile_interval_s,
        )
        loop.start()
        stack.callback(loop.close)

        env = backend_env(
            local,
            base=os.environ,
            jwks_url=jwks_url,
            jwt_issuer=issuer.issuer,
            jwt_audience=DEV_AUDIENCE,
            table_name=settings.table_name,
            aws_endpoint_url=endpoint,
            ticket_secret=ticket_secret,
        )
        agent = HostAgent(
            fleet=fleet,
            make_stack=host_stacks(local, ports, env),
            initializer=Initializer(local.run_dir / "instances"),
            on_state_change=lambda instance, state: loop.fire(_state_change(instance, state)),
            poll_s=local.agent_poll_s,
            ready_timeout_s=local.host_ready_timeout_s,
        )
        agent.start()
        stack.callback(agent.close)

        logging.getLogger("uvicorn.error").addFilter(DenialNoise())
        yield uvicorn.Server(front_config(app, host=local.bind, port=local.ui_port))


def run(local: LocalSettings) -> None:
    """Serve until Ctrl-C (or SIGTERM), then stop every part, leaving no process behind."""
    with local_system(local) as server:
        log.info(
            "Spinup is running locally: open %s/ and press Start (Ctrl-C stops it)", local.ui_origin
        )
        server.run()
    log.info("stopped")
