"""The control plane against moto's real server, with a JWKS issuer and an injected clock.

One moto server for the session, reset before each test; each test gets a fresh table, a
stopped instance, and the app wired to them.
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
from lambdas.bootstrap import bootstrap
from lambdas.control.app import create_app
from lambdas.settings import Settings
from tests.integration.control.harness import (
    AUDIENCE,
    ISSUER,
    REGION,
    T0,
    TICKET_SECRET,
    TYPES,
    Aws,
    Clock,
    Issuer,
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
    """A clean emulated account with one stopped g5.xlarge instance; fake credentials only
    (and no local AWS configuration) for the test's duration."""
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
    ec2 = boto_session.client("ec2", endpoint_url=moto_endpoint)
    instance_id = ec2.run_instances(
        ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1, InstanceType="g5.xlarge"
    )["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance_id])
    return Aws(moto_endpoint, instance_id, "spinup-it", boto_session)


@pytest.fixture
def settings(aws: Aws, issuer: Issuer) -> Settings:
    return Settings(
        table_name=aws.table_name,
        instance_id=aws.instance_id,
        aws_region=REGION,
        aws_endpoint_url=aws.endpoint,
        ws_url="wss://spinup.test/ws/inference",
        auth_mode="jwks",
        jwks_url=issuer.jwks_url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        instance_types=TYPES,
        ticket_secret=TICKET_SECRET,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def clients(settings: Settings, boto_session: boto3.session.Session) -> Clients:
    made = make_clients(settings, boto_session)
    bootstrap(settings, made)
    return made


@pytest.fixture
def start_calls(clients: Clients) -> list[dict[str, Any]]:
    """Every StartInstances the adapter's client sends, as botocore saw it."""
    calls: list[dict[str, Any]] = []
    clients.ec2.client.meta.events.register(
        "provide-client-params.ec2.StartInstances",
        lambda params, **_: calls.append(dict(params)),
    )
    return calls


@pytest.fixture
def app(settings: Settings, clients: Clients, clock: Clock) -> FastAPI:
    return create_app(settings, clients=clients, clock=clock)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://spinup.test") as client:
        yield client
