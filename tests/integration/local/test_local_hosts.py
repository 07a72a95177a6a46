"""Real host stacks driven by the emulated fleet's lifecycle, reached through the web front.

Given the local fleet with the real tritonserver (CPU) and backend per host, each test does
what reconcile would (desired capacity, protection, routes) and checks what a browser gets:
a socket through `/ws/{host}/inference` that the host's backend greets with `ready`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.sync.client import connect
from websockets.typing import Origin

from lambdas.domain.routing import routed_path
from tests.integration.local.conftest import MODELS, LocalFleet
from tests.support.waiting import eventually

pytestmark = pytest.mark.triton


def greet(system: LocalFleet, host: str, user: str = "ann") -> dict[str, Any]:
    """A browser's hello through the web front to `host`; the backend's answer."""
    with connect(
        f"{system.ws_base}{routed_path(host)}",
        origin=Origin(system.local.ui_origin),
        proxy=None,
        open_timeout=10,
    ) as ws:
        hello = {"type": "hello", "token": system.issuer.issue(user), "models": list(MODELS)}
        ws.send(json.dumps(hello))
        answer: dict[str, Any] = json.loads(ws.recv(timeout=20))
        return answer


def test_a_host_starts_serves_and_restarts_right_after_a_stop(one_host: LocalFleet) -> None:
    """Given a warmed host, when it is started, then its socket is served; when it is stopped
    and started again at once (before the agent looks), then a fresh stack reaches ready."""
    system = one_host
    warmed = eventually(
        system.fleet.describe,
        lambda v: [i.lifecycle_state for i in v.instances] == ["Warmed:Stopped"],
        what="the warm pool initialized",
    ).instances[0]

    system.fleet.set_desired_capacity(1)
    assert system.in_service(1) == [warmed.instance_id], "the warmed host was started"
    assert greet(system, warmed.instance_id)["type"] == "ready"

    system.fleet.set_protection(warmed.instance_id, protected=False)
    system.fleet.set_desired_capacity(0)
    system.routes.delete(warmed.instance_id)
    system.fleet.set_desired_capacity(1)
    assert system.state(warmed.instance_id) == "Pending:Wait", "back from the pool at once"
    assert system.in_service(1) == [warmed.instance_id]
    assert greet(system, warmed.instance_id, user="bob")["type"] == "ready"
    states = [state for instance, state in system.events if instance == warmed.instance_id]
    assert states[-4:] == ["stopping", "stopped", "pending", "running"]


def test_two_hosts_each_serve_their_own_sockets(two_hosts: LocalFleet) -> None:
    system = two_hosts
    system.fleet.set_desired_capacity(2)
    hosts = system.in_service(2)
    origins = {system.routes.entries()[host] for host in hosts}
    assert len(origins) == 2, "each host on its own ports"
    for host in hosts:
        assert greet(system, host)["type"] == "ready"

    idle, kept = hosts
    system.fleet.set_protection(idle, protected=False)
    system.fleet.set_desired_capacity(1)
    system.routes.delete(idle)
    eventually(
        system.agent.runners,
        lambda runners: [r.instance_id for r in runners.values()] == [kept],
        what="only the kept host's stack runs",
        timeout_s=60,
    )
    assert greet(system, kept)["type"] == "ready"
