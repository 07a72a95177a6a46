"""The local system, composed: moto, the control API + frontend, the reconcile loop, the agent.

Everything the AWS deployment has, on one machine, wired the same way: the control API and
reconcile are the Lambda code with the same settings model; the backend reads the same
`SPINUP_*` variables it reads on the instance; moto answers the same boto3 calls.
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

from infra.csp import content_security_policy, origin_of
from infra.local.agent import HostAgent
from infra.local.emulated_aws import create_stopped_instance, ec2_client, instance_state, start_moto
from infra.local.issuer import DEV_AUDIENCE, DevIssuer
from infra.local.oidc import LocalOidcProvider, ProviderSettings
from infra.local.settings import LocalSettings
from infra.local.supervisor import HostSupervisor
from infra.local.web import add_local_routes, code_flow_config
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


def _state_change(instance_id: str, state: str | None) -> dict[str, Any]:
    return {
        "detail-type": STATE_CHANGE,
        "source": "aws.ec2",
        "detail": {"instance-id": instance_id, "state": state or "terminated"},
    }


def _page_config(
    local: LocalSettings, issuer: DevIssuer, oidc: LocalOidcProvider
) -> dict[str, Any]:
    """/config.json: a development token, or (`SPINUP_LOCAL_SIGN_IN=code`) the code flow."""
    config: dict[str, Any] = {"apiBase": "/api", "wsUrl": local.ws_url}
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

        ec2 = ec2_client(endpoint=endpoint, region=local.region)
        # What exists only locally is set here; everything else (timeouts, budget, instance
        # types) comes from SPINUP_* in the environment, exactly as the Lambdas read it.
        settings = Settings(
            table_name=local.table_name,
            instance_id="i-00000000",  # replaced below, once the instance exists
            aws_region=local.region,
            aws_endpoint_url=endpoint,
            ws_url=local.ws_url,
            auth_mode="jwks",
            jwks_url=jwks_url,
            jwt_issuer=issuer.issuer,
            jwt_audience=DEV_AUDIENCE,
            ticket_secret=SecretStr(ticket_secret),
        )
        instance_id = create_stopped_instance(
            ec2, image_id=local.image_id, instance_type=settings.default_instance_type
        )
        settings = settings.model_copy(update={"instance_id": instance_id})
        clients = make_clients(settings)
        bootstrap(settings, clients)

        app = create_app(settings, clients=clients)
        add_local_routes(
            app,
            frontend_dir=local.frontend_dir,
            config=_page_config(local, issuer, oidc),
            jwks=issuer.jwks(),
            csp=content_security_policy(connect_to=[origin_of(local.ws_url)]),
            oidc=oidc,
        )

        loop = ReconcileLoop(
            reconcile=lambda event: handle(event, settings, clients, time.time()),
            interval_s=local.reconcile_interval_s,
        )
        loop.start()
        stack.callback(loop.close)

        backend_env = {
            **os.environ,
            "SPINUP_TRITON_GRPC_URL": f"{local.bind}:{local.triton_grpc_port}",
            "SPINUP_JWKS_URL": jwks_url,
            "SPINUP_JWT_ISSUER": issuer.issuer,
            "SPINUP_JWT_AUDIENCE": DEV_AUDIENCE,
            "SPINUP_ALLOWED_ORIGINS": local.ui_origin,
            "SPINUP_TABLE_NAME": settings.table_name,
            "SPINUP_HOST_ID": settings.host_id,
            "SPINUP_AWS_REGION": local.region,
            "SPINUP_AWS_ENDPOINT_URL": endpoint,
            "SPINUP_MODELS": ",".join(local.served_models),
            "SPINUP_TICKET_SECRET": ticket_secret,
            # The engine hellos with tickets here too; token hellos stay accepted unless asked.
            "SPINUP_REQUIRE_TICKETS": "true" if local.require_tickets else "false",
            "SPINUP_USER_MODELS": str(local.user_models),
            "SPINUP_WORKERS": str(local.backend_workers),
        }
        agent = HostAgent(
            read_state=lambda: instance_state(ec2, instance_id),
            stack=HostSupervisor(settings=local, backend_env=backend_env),
            on_state_change=lambda state: loop.fire(_state_change(instance_id, state)),
            poll_s=local.agent_poll_s,
        )
        agent.start()
        stack.callback(agent.close)

        config = uvicorn.Config(
            app, host=local.bind, port=local.ui_port, log_level="warning", lifespan="on"
        )
        yield uvicorn.Server(config)


def run(local: LocalSettings) -> None:
    """Serve until Ctrl-C (or SIGTERM), then stop every part, leaving no process behind."""
    with local_system(local) as server:
        log.info(
            "Spinup is running locally: open %s/ and press Start (Ctrl-C stops it)", local.ui_origin
        )
        server.run()
    log.info("stopped")
