"""Inputs through shared memory (`gpu_host.backend.triton_shm`): the slots themselves, and the
gateway using them against a scripted Triton that maps the registered object as Triton does
— registration, a region Triton refuses or has lost, and the body as the fallback."""

from __future__ import annotations

import json
import mmap
import os
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from gpu_host.backend.breaker import CircuitBreaker
from gpu_host.backend.protocol import InferenceFailedError
from gpu_host.backend.triton_gateway import REGISTER_RETRY_S, TritonGateway
from gpu_host.backend.triton_http import DATATYPES
from gpu_host.backend.triton_shm import (
    ALIGNMENT,
    SharedSlots,
    region_name,
    remove_objects_of,
    remove_objects_of_the_dead,
)
from tests.unit.gpu_host.fake_http_server import (
    Reply,
    Request,
    infer_response,
    json_response,
    serving,
)
from tests.unit.gpu_host.test_triton_gateway import SPEC, item

# --- the slots ----------------------------------------------------------------------------


@pytest.fixture
def slots(tmp_path: Path) -> Iterator[SharedSlots]:
    made = SharedSlots(slot_bytes=100, slots=3, directory=tmp_path)
    yield made
    made.close()


def test_an_object_of_slots_aligned_size_only_its_owner_can_read(
    slots: SharedSlots, tmp_path: Path
) -> None:
    path = tmp_path / slots.name
    assert slots.slot_bytes == 2 * ALIGNMENT  # 100 bytes, rounded up to whole cache lines
    assert path.stat().st_size == slots.byte_size == 3 * slots.slot_bytes
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert slots.key == f"/{slots.name}"


def test_leases_are_last_in_first_out_and_run_out(slots: SharedSlots) -> None:
    first = slots.lease([10])
    second = slots.lease([10])
    third = slots.lease([10])
    assert {first, second, third} == {0, slots.slot_bytes, 2 * slots.slot_bytes}
    assert slots.lease([10]) is None, "no slot free: the caller sends its tensors instead"
    assert second is not None
    slots.release(second)
    assert slots.lease([10]) == second, "the slot just freed is the next one leased"


@pytest.mark.parametrize(
    "sizes", [[129], [64, 65], [100, 1, 1]], ids=["one-too-big", "two-misaligned", "three"]
)
def test_tensors_that_do_not_fit_a_slot_get_none(slots: SharedSlots, sizes: list[int]) -> None:
    assert slots.lease(sizes) is None
    assert slots.free == 3


@pytest.mark.parametrize("offset", [1, -128, 3 * 128], ids=["inside", "negative", "past-end"])
def test_releasing_what_is_no_slot_is_an_error(slots: SharedSlots, offset: int) -> None:
    with pytest.raises(ValueError, match="not a leased slot"):
        slots.release(offset)


def test_releasing_a_free_slot_twice_is_an_error(slots: SharedSlots) -> None:
    offset = slots.lease([1])
    assert offset is not None
    slots.release(offset)
    with pytest.raises(ValueError, match="not a leased slot"):
        slots.release(offset)


def test_placed_tensors_are_in_the_object_at_their_offsets(
    slots: SharedSlots, tmp_path: Path
) -> None:
    """What another process mapping the object (Triton) reads is the tensors' bytes."""
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([7, 8], dtype=np.uint8)
    offset = slots.lease([a.nbytes, b.nbytes])
    assert offset is not None
    offsets = slots.place(offset, [a, b])
    assert offsets == [offset, offset + ALIGNMENT]
    data = (tmp_path / slots.name).read_bytes()
    assert data[offsets[0] : offsets[0] + a.nbytes] == a.tobytes()
    assert data[offsets[1] : offsets[1] + b.nbytes] == b.tobytes()


def test_placing_more_than_a_slot_is_an_error(slots: SharedSlots) -> None:
    with pytest.raises(ValueError, match="overflow a slot"):
        slots.place(0, [np.zeros(129, np.uint8)])


def test_close_deletes_the_object_and_leases_nothing_more(
    slots: SharedSlots, tmp_path: Path
) -> None:
    slots.close()
    assert not (tmp_path / slots.name).exists()
    assert slots.lease([1]) is None
    slots.close()  # twice is fine


def test_an_existing_object_is_never_taken_over(tmp_path: Path) -> None:
    (tmp_path / "spinup-1-taken").write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        SharedSlots(slot_bytes=8, slots=1, name="spinup-1-taken", directory=tmp_path)
    assert (tmp_path / "spinup-1-taken").read_bytes() == b"someone else's"


@pytest.mark.parametrize(("slot_bytes", "count"), [(0, 1), (8, 0), (-1, 2)])
def test_slots_must_have_a_size(tmp_path: Path, slot_bytes: int, count: int) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        SharedSlots(slot_bytes=slot_bytes, slots=count, directory=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_region_names_carry_the_pid_and_never_repeat() -> None:
    names = {region_name() for _ in range(100)}
    assert len(names) == 100
    assert all(name.startswith(f"spinup-{os.getpid()}-") for name in names)
    assert region_name(42).startswith("spinup-42-")


def test_a_dead_workers_objects_are_removed_and_only_its_own(tmp_path: Path) -> None:
    for name in ("spinup-12-aa", "spinup-12-bb", "spinup-123-cc", "spinup-1-dd", "other-12-ee"):
        (tmp_path / name).touch()
    removed = remove_objects_of(12, tmp_path)
    assert sorted(p.name for p in removed) == ["spinup-12-aa", "spinup-12-bb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "other-12-ee",
        "spinup-1-dd",
        "spinup-123-cc",
    ]


def test_the_objects_of_every_dead_process_are_removed(tmp_path: Path) -> None:
    for name in ("spinup-12-aa", "spinup-13-bb", "spinup-14-cc", "spinup-x-dd", "spinup-"):
        (tmp_path / name).touch()
    removed = remove_objects_of_the_dead(lambda pid: pid == 13, tmp_path)
    assert sorted(p.name for p in removed) == ["spinup-12-aa", "spinup-14-cc"]
    assert objects(tmp_path) == ["spinup-", "spinup-13-bb", "spinup-x-dd"]


# --- the gateway with shared memory ----------------------------------------------------------


class ShmTriton:
    """A scripted Triton with the system shared memory extension: `register` maps the object
    named by `key` in `directory` (Triton's shm_open), infer reads inputs from a region or
    from the body, and answers the `tiny` model (y = x0, x1, x0 + x1; n = 2k)."""

    def __init__(self, directory: Path, *, refuse_registration: bool = False) -> None:
        self.directory = directory
        self.refuse_registration = refuse_registration
        self.regions: dict[str, mmap.mmap] = {}
        self.inputs_from: list[str] = []
        """Per infer request: "shm" or "body"."""

    def forget_regions(self) -> None:
        """What a restart does."""
        for mapped in self.regions.values():
            mapped.close()
        self.regions.clear()

    def __call__(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        if parts[:3] == ["v2", "systemsharedmemory", "region"]:
            return self._region(parts[3], parts[4], request)
        length = int(request.headers["inference-header-content-length"])
        header = json.loads(request.body[:length])
        inputs, at = {}, length
        for tensor in header["inputs"]:
            params = tensor["parameters"]
            dtype = DATATYPES[tensor["datatype"]]
            if "shared_memory_region" in params:
                region = params["shared_memory_region"]
                if region not in self.regions:
                    message = f"Unable to find system shared memory region: '{region}'"
                    return Reply(json_response(400, {"error": message}))
                start = params["shared_memory_offset"]
                raw = self.regions[region][start : start + params["shared_memory_byte_size"]]
                self.inputs_from.append("shm")
            else:
                raw = request.body[at : at + params["binary_data_size"]]
                at += len(raw)
                self.inputs_from.append("body")
            inputs[tensor["name"]] = np.frombuffer(raw, dtype).reshape(tensor["shape"])
        x, k = inputs["x"], inputs["k"]
        y = np.concatenate([x, x.sum(axis=1, keepdims=True)], axis=1)
        return Reply(infer_response({"y": y, "n": (k * 2).astype(np.int64)}))

    def _region(self, name: str, action: str, request: Request) -> Reply:
        if action == "unregister":
            if name in self.regions:
                self.regions.pop(name).close()
            return Reply(json_response(200, {}))
        if self.refuse_registration:
            return Reply(json_response(400, {"error": f"Unable to open shared memory {name}"}))
        if name in self.regions:
            return Reply(json_response(400, {"error": f"shared memory region '{name}' exists"}))
        body = json.loads(request.body)
        fd = os.open(self.directory / body["key"].lstrip("/"), os.O_RDWR)
        try:
            self.regions[name] = mmap.mmap(fd, body["byte_size"], offset=body["offset"])
        finally:
            os.close(fd)
        return Reply(json_response(200, {}))


SLOT_BYTES = 2 * ALIGNMENT
"""Fits a `tiny` request's two tensors (8 + 4 bytes an item, each aligned)."""

Gateways = Callable[..., TritonGateway]


@pytest.fixture
async def shm_gateway(tmp_path: Path) -> AsyncIterator[Gateways]:
    made: list[TritonGateway] = []

    def make(
        url: str, slot_bytes: int | None = SLOT_BYTES, shm_dir: Path = tmp_path
    ) -> TritonGateway:
        breaker = CircuitBreaker(failure_threshold=2, cooldown_s=5.0)
        gateway = TritonGateway(
            url=url, breaker=breaker, timeout_s=5.0, shared_slot_bytes=slot_bytes, shm_dir=shm_dir
        )
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.close()


def expect_tiny(outputs: dict[str, npt.NDArray[Any]], i: int) -> None:
    np.testing.assert_array_equal(outputs["y"], [i, 10 * i, 11 * i])
    np.testing.assert_array_equal(outputs["n"], [2 * i])


def objects(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def region_calls(requests: list[Request]) -> list[str]:
    return [r.path.rsplit("/", 1)[1] for r in requests if "/systemsharedmemory/" in r.path]


async def test_inputs_go_through_a_region_registered_on_first_use(
    shm_gateway: Gateways, tmp_path: Path
) -> None:
    triton = ShmTriton(tmp_path)
    async with serving(triton) as server:
        gateway = shm_gateway(server.url)
        for i in (1, 2, 3):
            expect_tiny(await gateway.infer(SPEC, item(i)), i)
    assert gateway.shared_memory_in_use
    assert region_calls(server.requests) == ["register"], "registered once"
    register = json.loads(server.requests[0].body)
    assert register["key"] == f"/{gateway.shared_region}"
    assert triton.inputs_from == ["shm"] * 6, "both tensors of all three requests"
    infer = server.requests[1]
    header_length = int(infer.headers["inference-header-content-length"])
    assert len(infer.body) == header_length, "no tensor data in the body"


async def test_inputs_larger_than_a_slot_go_in_the_body(
    shm_gateway: Gateways, tmp_path: Path
) -> None:
    """A slot fits one aligned tensor; the request has two (a batch of OCR regions can be
    larger than the largest frame's inputs the slots are sized for)."""
    triton = ShmTriton(tmp_path)
    async with serving(triton) as server:
        gateway = shm_gateway(server.url, slot_bytes=ALIGNMENT)
        outputs = await gateway.infer_many(SPEC, [item(1), item(2)])
    for i, out in enumerate(outputs, start=1):
        expect_tiny(out, i)
    assert triton.inputs_from == ["body", "body"]
    assert gateway.shared_memory_in_use, "registered: it is this request that does not fit"


async def test_a_refused_registration_sends_tensors_and_is_not_retried_at_once(
    shm_gateway: Gateways, tmp_path: Path
) -> None:
    """Given a Triton that cannot map the object (another host's /dev/shm), every request
    carries its tensors, and registering is not tried again on every request."""
    triton = ShmTriton(tmp_path, refuse_registration=True)
    async with serving(triton) as server:
        gateway = shm_gateway(server.url)
        for i in (1, 2, 3):
            expect_tiny(await gateway.infer(SPEC, item(i)), i)
    assert not gateway.shared_memory_in_use
    # The first attempt, then once more replacing a registration Triton might have kept.
    assert region_calls(server.requests) == ["register", "unregister", "register"]
    assert triton.inputs_from == ["body"] * 6
    assert REGISTER_RETRY_S >= 10, "a retry is minutes apart in practice, not per frame"


async def test_a_region_triton_lost_is_registered_again_and_no_request_fails(
    shm_gateway: Gateways, tmp_path: Path
) -> None:
    """Given Triton restarted (it forgot the region), when a request names the region, then
    that request is sent again with its tensors and succeeds, and the next one registers the
    region again and uses it."""
    triton = ShmTriton(tmp_path)
    async with serving(triton) as server:
        gateway = shm_gateway(server.url)
        expect_tiny(await gateway.infer(SPEC, item(1)), 1)
        triton.forget_regions()
        expect_tiny(await gateway.infer(SPEC, item(2)), 2)
        expect_tiny(await gateway.infer(SPEC, item(3)), 3)
    assert triton.inputs_from == ["shm", "shm", "body", "body", "shm", "shm"]
    assert region_calls(server.requests) == ["register", "register"]
    assert gateway.shared_memory_in_use


async def test_another_refusal_is_the_models_failure_not_the_regions(
    shm_gateway: Gateways, tmp_path: Path
) -> None:
    def failing(request: Request) -> Reply:
        if "/systemsharedmemory/" in request.path:
            return Reply(json_response(200, {}))
        return Reply(json_response(400, {"error": "tiny: input x has the wrong shape"}))

    async with serving(failing) as server:
        gateway = shm_gateway(server.url)
        with pytest.raises(InferenceFailedError, match="wrong shape"):
            await gateway.infer(SPEC, item(1))
    infers = [r for r in server.requests if r.path.endswith("/infer")]
    assert len(infers) == 1, "not sent again"
    assert gateway.shared_memory_in_use


async def test_slots_are_given_back_whatever_the_answer(
    shm_gateway: Gateways, tmp_path: Path
) -> None:
    triton = ShmTriton(tmp_path)
    async with serving(triton) as server:
        gateway = shm_gateway(server.url)
        await gateway.infer(SPEC, item(1))
        triton.forget_regions()
        await gateway.infer(SPEC, item(2))
        shared = gateway._shared
        assert shared is not None
        assert shared.free == gateway._client.max_connections


async def test_close_unregisters_and_deletes_the_object(
    shm_gateway: Gateways, tmp_path: Path
) -> None:
    triton = ShmTriton(tmp_path)
    async with serving(triton) as server:
        gateway = shm_gateway(server.url)
        await gateway.infer(SPEC, item(1))
        name = gateway.shared_region
        assert name is not None
        assert objects(tmp_path) == [name]
        await gateway.close()
        assert region_calls(server.requests) == ["register", "unregister"]
    assert triton.regions == {}
    assert objects(tmp_path) == []


@pytest.mark.parametrize(
    ("slot_bytes", "directory"),
    [(None, ""), (SLOT_BYTES, "missing")],
    ids=["turned-off", "no-writable-dev-shm"],
)
async def test_without_shared_memory_tensors_go_in_the_body_and_nothing_is_registered(
    shm_gateway: Gateways, tmp_path: Path, slot_bytes: int | None, directory: str
) -> None:
    """Shared memory turned off (`shared_slot_bytes=None`), or a /dev/shm the backend cannot
    write (a read-only container): every request carries its tensors."""
    triton = ShmTriton(tmp_path)
    async with serving(triton) as server:
        gateway = shm_gateway(server.url, slot_bytes=slot_bytes, shm_dir=tmp_path / directory)
        expect_tiny(await gateway.infer(SPEC, item(1)), 1)
        expect_tiny(await gateway.infer(SPEC, item(2)), 2)
        await gateway.close()
    assert region_calls(server.requests) == []
    assert triton.inputs_from == ["body"] * 4
    assert objects(tmp_path) == []
