"""The IMDSv2 client against a local server that behaves as the metadata service does."""

from __future__ import annotations

import pytest

from gpu_host.bootstrap.imds import Imds, ImdsError
from infra.local.ports import free_port
from tests.infra.host.fakes import INSTANCE_ID, FakeImds


def test_reads_with_one_session_token(imds: FakeImds) -> None:
    client = Imds(imds.url)
    assert client.instance_id() == INSTANCE_ID
    assert client.target_lifecycle_state() == "Warmed:Stopped"
    assert imds.tokens_issued == 1


@pytest.mark.parametrize("state", ["InService", "Warmed:Stopped", "Warmed:Running"])
def test_target_state_is_read_as_published(imds: FakeImds, state: str) -> None:
    imds.items["autoscaling/target-lifecycle-state"] = state
    assert Imds(imds.url).target_lifecycle_state() == state


def test_no_target_state_outside_a_group(imds: FakeImds) -> None:
    """An instance in no Auto Scaling group has no `autoscaling/` items: 404, not an error."""
    del imds.items["autoscaling/target-lifecycle-state"]
    assert Imds(imds.url).target_lifecycle_state() is None


def test_a_refused_token_is_renewed_once(imds: FakeImds) -> None:
    client = Imds(imds.url)
    client.instance_id()
    imds.expire_tokens()
    assert client.instance_id() == INSTANCE_ID
    assert imds.tokens_issued == 2


@pytest.mark.parametrize("value", ["gpu-0", "i-XYZ", ""])
def test_an_instance_id_that_is_none_is_refused(imds: FakeImds, value: str) -> None:
    imds.items["instance-id"] = value
    with pytest.raises(ImdsError, match="not an instance id"):
        Imds(imds.url).instance_id()


def test_unreachable_metadata_is_an_imds_error() -> None:
    with pytest.raises(ImdsError):
        Imds(f"http://127.0.0.1:{free_port()}", timeout_s=1).instance_id()


def test_a_proxy_in_the_environment_is_not_used(
    imds: FakeImds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The metadata service is link-local: a proxy (here one that does not exist) would
    never reach it."""
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert Imds(imds.url).instance_id() == INSTANCE_ID
