"""The local fleet with real host stacks: moto's server, the emulated group, the host agent
running the real `tritonserver` (CPU) and backend per host, and the web front routing sockets.

Reconcile is not here (it is the control plane's, exercised end to end in tests/e2e): the
tests do what it does — set the desired capacity, unprotect an idle host, write a host's
route once it runs.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
import uvicorn
from fastapi import FastAPI
from moto.server import ThreadedMotoServer

from infra.local.agent import HostAgent, Initializer
from infra.local.fleet import EmulatedFleet
from infra.local.issuer import DEV_AUDIENCE, DevIssuer
from infra.local.ports import SlotPorts, free_port
from infra.local.routes import LocalRoutes
from infra.local.settings import LocalSettings
from infra.local.supervisor import backend_env, host_stacks
from infra.local.web import add_local_routes, front_config
from tests.support.hermetic import clean_environ
from tests.support.waiting import eventually

REGION = "us-east-1"
MODELS = ("text",)
"""One real model: what these tests check is the hosts' lifecycle, not the models."""
HOST_START_S = 240.0
"""A CPU Triton loading one model, on a busy 2-core machine."""


@dataclass
class LocalFleet:
    local: LocalSettings
    fleet: EmulatedFleet
    routes: LocalRoutes
    agent: HostAgent
    issuer: DevIssuer
    ws_base: str
    events: list[tuple[str, str]] = field(default_factory=list)

    def state(self, instance_id: str) -> str | None:
        found = self.fleet.describe().get(instance_id)
        return None if found is None else found.lifecycle_state

    def in_service(self, count: int) -> list[str]:
        """Waits until `count` hosts are in service; writes their routes, as reconcile does."""
        view = eventually(
            self.fleet.describe,
            lambda v: sum(i.lifecycle_state == "InService" for i in v.instances) == count,
            what=f"{count} host(s) in service",
            timeout_s=HOST_START_S,
            interval_s=0.5,
        )
        serving = [i for i in view.instances if i.lifecycle_state == "InService"]
        for instance in serving:
            assert instance.running
            self.routes.put(instance.instance_id, instance.public_dns)
        return [i.instance_id for i in serving]


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto's state lives in this process, whichever server (or mock) made it: start clean.
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()
    yield endpoint
    server.stop()


def _serve(app: FastAPI, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(front_config(app, host="127.0.0.1", port=port, lifespan="off"))
    thread = threading.Thread(target=server.run, name="web-front", daemon=True)
    thread.start()
    eventually(lambda: server.started, what="the web front serves")
    return server, thread


def local_fleet(
    moto_endpoint: str, tmp_path: Path, *, max_hosts: int, warm_hosts: int
) -> Iterator[LocalFleet]:
    local = LocalSettings(
        ui_port=free_port(),
        backend_port=free_port(),
        triton_http_port=free_port(),
        triton_grpc_port=free_port(),
        triton_metrics_port=free_port(),
        run_dir=tmp_path / "run",
        user_models=tmp_path / "no-user-models" / "user_models.json",
        served_models=MODELS,
        max_hosts=max_hosts,
        warm_hosts=warm_hosts,
        agent_poll_s=0.2,
        host_ready_timeout_s=HOST_START_S,
    )
    session = boto3.session.Session(region_name=REGION)
    ports = SlotPorts(local.first_host_ports)
    fleet = EmulatedFleet.create(
        autoscaling=session.client("autoscaling", endpoint_url=moto_endpoint),
        ec2=session.client("ec2", endpoint_url=moto_endpoint),
        group_name="spinup-it-local",
        image_id="ami-0123456789abcdef0",
        instance_type="g4dn.xlarge",
        max_size=max_hosts,
        warm_pool_size=warm_hosts,
        origin_of_slot=lambda slot: f"127.0.0.1:{ports(slot).backend}",
    )
    routes = LocalRoutes()
    issuer = DevIssuer(issuer=local.ui_origin)
    app = add_local_routes(
        FastAPI(),
        frontend_dir=tmp_path,
        config={},
        jwks=issuer.jwks(),
        csp="default-src 'self'",
        routes=routes,
    )
    server, thread = _serve(app, local.ui_port)
    env = backend_env(
        local,
        base=clean_environ(),
        jwks_url=f"{local.ui_origin}/.well-known/jwks.json",
        jwt_issuer=issuer.issuer,
        jwt_audience=DEV_AUDIENCE,
        table_name="spinup-it-local",
        aws_endpoint_url=moto_endpoint,
        ticket_secret="local-fleet-test-ticket-secret-32-bytes",
    )
    events: list[tuple[str, str]] = []
    agent = HostAgent(
        fleet=fleet,
        make_stack=host_stacks(local, ports, env),
        initializer=Initializer(local.run_dir / "instances"),
        on_state_change=lambda instance, state: events.append((instance, state)),
        poll_s=local.agent_poll_s,
        ready_timeout_s=local.host_ready_timeout_s,
    )
    agent.start()
    try:
        yield LocalFleet(
            local=local,
            fleet=fleet,
            routes=routes,
            agent=agent,
            issuer=issuer,
            ws_base=f"ws://127.0.0.1:{local.ui_port}",
            events=events,
        )
    finally:
        agent.close()
        server.should_exit = True
        thread.join()


@pytest.fixture
def one_host(moto_endpoint: str, tmp_path: Path) -> Iterator[LocalFleet]:
    yield from local_fleet(moto_endpoint, tmp_path, max_hosts=1, warm_hosts=1)


@pytest.fixture
def two_hosts(moto_endpoint: str, tmp_path: Path) -> Iterator[LocalFleet]:
    yield from local_fleet(moto_endpoint, tmp_path, max_hosts=2, warm_hosts=0)
