"""The control plane against moto's real server, with a JWKS issuer and an injected clock.

One moto server for the session, reset before each test; each test gets a fresh table, the
GPU fleet's Auto Scaling group with nothing running, and the app wired to them.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from fastapi import FastAPI
from moto.dynamodb.responses import DynamoHandler
from moto.server import ThreadedMotoServer

from lambdas.aws.clients import Clients, make_clients
from lambdas.aws.fleet import AutoScalingFleet
from lambdas.bootstrap import bootstrap
from lambdas.control import app as app_module
from lambdas.control import lambda_handler
from lambdas.control.app import create_app
from lambdas.reconcile import handler as reconcile_handler
from lambdas.settings import Settings
from tests.integration.control.harness import (
    AUDIENCE,
    GROUP,
    ISSUER,
    REGION,
    T0,
    TICKET_SECRET,
    TYPES,
    WS_BASE_URL,
    Aws,
    Clock,
    Issuer,
    MemoryRoutes,
    RecordingFleet,
    create_fleet,
)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server, with each DynamoDB request made atomic as DynamoDB makes it: moto's
    conditional update reads, checks and writes without a lock, so concurrent requests could
    both pass one condition — which would test moto, not the control plane."""
    atomic = threading.Lock()
    handle = DynamoHandler.call_action

    def call_action_atomically(self: DynamoHandler) -> Any:
        with atomic:
            return handle(self)

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DynamoHandler, "call_action", call_action_atomically)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()


@pytest.fixture(scope="session")
def boto_session() -> boto3.session.Session:
    """One session for all tests, so botocore parses each service model once."""
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    made = Issuer()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(made.jwks_body)))
            self.end_headers()
            self.wfile.write(made.jwks_body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test output is for the tests."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    made.jwks_url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    yield made
    server.shutdown()
    server.server_close()


@pytest.fixture
def aws(
    moto_endpoint: str,
    boto_session: boto3.session.Session,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Aws:
    """A clean emulated account with the GPU fleet's group and nothing running; fake
    credentials only (and no local AWS configuration) for the test's duration."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    made = Aws(moto_endpoint, "spinup-it", GROUP, boto_session)
    create_fleet(made)
    return made


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings a test changes: `@pytest.mark.parametrize("overrides", [{...}])`."""
    return {}


@pytest.fixture
def settings(aws: Aws, issuer: Issuer, overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "table_name": aws.table_name,
        "group_name": aws.group_name,
        "aws_region": REGION,
        "aws_endpoint_url": aws.endpoint,
        "ws_base_url": WS_BASE_URL,
        "auth_mode": "jwks",
        "jwks_url": issuer.jwks_url,
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "instance_types": TYPES,
        "ticket_secret": TICKET_SECRET,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def fleet(aws: Aws, boto_session: boto3.session.Session, clock: Clock) -> RecordingFleet:
    """The real Auto Scaling adapter against moto, its calls logged."""
    adapter = AutoScalingFleet(
        boto_session.client("autoscaling", endpoint_url=aws.endpoint),
        boto_session.client("ec2", endpoint_url=aws.endpoint),
        aws.group_name,
    )
    return RecordingFleet(adapter, clock)


@pytest.fixture
def routes() -> MemoryRoutes:
    return MemoryRoutes()


@pytest.fixture
def clients(
    settings: Settings,
    boto_session: boto3.session.Session,
    fleet: RecordingFleet,
    routes: MemoryRoutes,
) -> Clients:
    made = make_clients(settings, boto_session, fleet=fleet, routes=routes)
    bootstrap(settings, made)
    return made


@pytest.fixture
def lambda_environment(
    settings: Settings,
    clients: Clients,
    aws: Aws,
    routes: MemoryRoutes,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    """The Lambdas' SPINUP_ environment as the CDK app sets it (apigw mode), with the route
    table in memory: the Lambdas' own clients are built from the environment, the KeyValueStore
    client aside (moto has no KeyValueStore data plane). The table exists (`clients`)."""
    environment = {
        "SPINUP_TABLE_NAME": settings.table_name,
        "SPINUP_GROUP_NAME": settings.group_name,
        "SPINUP_AWS_ENDPOINT_URL": aws.endpoint,
        "SPINUP_AUTH_MODE": "apigw",
        "SPINUP_WS_BASE_URL": WS_BASE_URL,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    def with_memory_routes(settings: Settings, *args: Any, **kwargs: Any) -> Clients:
        return make_clients(settings, *args, routes=routes, **kwargs)

    monkeypatch.setattr(app_module, "make_clients", with_memory_routes)
    monkeypatch.setattr(reconcile_handler, "make_clients", with_memory_routes)
    lambda_handler._adapter.cache_clear()
    reconcile_handler._runtime.cache_clear()
    yield environment
    lambda_handler._adapter.cache_clear()
    reconcile_handler._runtime.cache_clear()


@pytest.fixture
def app(settings: Settings, clients: Clients, clock: Clock) -> FastAPI:
    return create_app(settings, clients=clients, clock=clock)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://spinup.test") as client:
        yield client
