"""The one shared Triton client (HTTP with binary tensors), behind a circuit breaker.

Every session's requests go through this single client (`triton_http`), so Triton's dynamic
batcher sees them together and merges frames from all sessions into one execution.

With `shared_slot_bytes`, a request's inputs go through shared memory (`triton_shm`): the
slots are made and registered with Triton on first use. When Triton cannot map the region
(another host, another /dev/shm) or has lost it (a restart), requests carry their tensors in
the body, and registering is tried again after `REGISTER_RETRY_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import numpy.typing as npt
import orjson

from gpu_host.backend.breaker import CircuitBreaker
from gpu_host.backend.protocol import InferenceFailedError, UnavailableError
from gpu_host.backend.triton_http import (
    SharedTensor,
    Tensor,
    TransportError,
    TritonHttpClient,
    TritonHttpError,
)
from gpu_host.backend.triton_shm import SHM_DIR, SharedSlots
from gpu_host.models.spec import ModelSpec, TensorSpec

log = logging.getLogger(__name__)

REGISTER_RETRY_S = 30.0
"""After a failed registration of the shared-memory region, requests carry their tensors in
the body this long before registering is tried again."""


class ModelLoadError(Exception):
    """Triton could not load (or unload) a model; the message says why."""


class TritonUnreachableError(ModelLoadError):
    """Triton could not be asked about a model at all (not listening, or no answer)."""


def _model_path(name: str, action: str) -> str:
    return f"/v2/models/{quote(name, safe='')}/{action}"


def _repository_path(name: str, action: str) -> str:
    return f"/v2/repository/models/{quote(name, safe='')}/{action}"


def _region_path(name: str, action: str) -> str:
    return f"/v2/systemsharedmemory/region/{quote(name, safe='')}/{action}"


class TritonGateway:
    def __init__(
        self,
        *,
        url: str,
        breaker: CircuitBreaker,
        timeout_s: float,
        shared_slot_bytes: int | None = None,
        shm_dir: Path = SHM_DIR,
    ) -> None:
        """`url`: Triton's HTTP address, `http://host:port`. `shared_slot_bytes`: the size of
        a shared-memory slot, one per possible request in flight (the largest request's
        inputs; larger ones go in the body); None: every request carries its tensors."""
        self._client = TritonHttpClient(url)
        self.breaker = breaker
        self._timeout_s = timeout_s
        self._outputs: dict[str, tuple[str, ...]] = {}
        self._slot_bytes = shared_slot_bytes
        self._shm_dir = shm_dir
        self._shared: SharedSlots | None = None
        self._registered = False
        self._register_at = 0.0
        """Monotonic time from which registering may be tried (again)."""

    @property
    def shared_memory_in_use(self) -> bool:
        """Whether requests send their inputs through the registered shared-memory region."""
        return self._registered

    @property
    def shared_region(self) -> str | None:
        """The shared-memory region's name, once made."""
        return None if self._shared is None else self._shared.name

    async def close(self) -> None:
        self._slot_bytes = None  # nothing made after this
        if self._shared is not None:
            if self._registered:
                with contextlib.suppress(TransportError, TimeoutError):
                    await self._client.request(
                        "POST", _region_path(self._shared.name, "unregister"), timeout_s=2.0
                    )
                self._registered = False
            self._shared.close()
        await self._client.close()

    async def models_ready(self, names: Iterable[str]) -> bool:
        """True when Triton answers and every named model is loaded (no breaker: a probe)."""
        try:
            live = await self._client.request("GET", "/v2/health/live", timeout_s=self._timeout_s)
            if live.status != 200:
                return False
            for name in names:
                ready = await self._client.request(
                    "GET", _model_path(name, "ready"), timeout_s=self._timeout_s
                )
                if ready.status != 200:
                    return False
        except (TransportError, TimeoutError):
            return False
        return True

    async def model_ready(self, name: str) -> bool:
        """Whether Triton has `name` loaded and ready; raises `TritonUnreachableError` when
        Triton cannot be asked."""
        try:
            response = await self._client.request(
                "GET", _model_path(name, "ready"), timeout_s=self._timeout_s
            )
        except (TransportError, TimeoutError) as exc:
            raise TritonUnreachableError(f"inference server unavailable: {_why(exc)}") from exc
        return response.status == 200

    async def load_model(self, name: str, *, timeout_s: float) -> None:
        """Load `name` through Triton's model repository API (explicit model control);
        returns once it is ready. Raises `ModelLoadError` when Triton refuses or takes longer
        than `timeout_s`, `TritonUnreachableError` when it cannot be asked.
        https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_model_repository.md"""
        try:
            response = await self._client.request(
                "POST", _repository_path(name, "load"), timeout_s=timeout_s
            )
        except TransportError as exc:
            raise TritonUnreachableError(f"inference server unavailable: {exc}") from exc
        except TimeoutError as exc:  # Triton is there; the model's load is what takes long
            raise ModelLoadError(f"{name}: not loaded within {timeout_s:g} s") from exc
        if response.status != 200:
            raise ModelLoadError(f"{name}: {response.error_message()}")

    async def unload_model(self, name: str) -> None:
        """Ask Triton to unload `name`. Triton answers at once and finishes the unload when
        the model's in-flight requests are done (its state reads UNLOADING meanwhile)."""
        try:
            response = await self._client.request(
                "POST", _repository_path(name, "unload"), timeout_s=self._timeout_s
            )
        except (TransportError, TimeoutError) as exc:
            raise ModelLoadError(f"{name}: unload failed: {_why(exc)}") from exc
        if response.status != 200:
            raise ModelLoadError(f"{name}: unload failed: {response.error_message()}")

    async def infer(
        self, spec: ModelSpec, tensors: Mapping[str, npt.NDArray[Any]]
    ) -> dict[str, npt.NDArray[Any]]:
        """Run ONE item (no batch dimension in or out) through `spec`'s model."""
        (outputs,) = await self.infer_many(spec, [tensors])
        return outputs

    async def infer_many(
        self, spec: ModelSpec, items: Sequence[Mapping[str, npt.NDArray[Any]]]
    ) -> list[dict[str, npt.NDArray[Any]]]:
        """Run several items (e.g. one frame's text regions) through `spec`'s model.

        Items travel as batches of at most `max_batch_size` (one request each, sent
        concurrently), so K items cost ceil(K / max) round trips, not K.
        """
        size = spec.max_batch_size
        if len(items) <= size:  # one request: no gather (a task per call) needed
            return await self._infer_batch(spec, items)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        batches = await asyncio.gather(*(self._infer_batch(spec, chunk) for chunk in chunks))
        return [outputs for batch in batches for outputs in batch]

    async def _infer_batch(
        self, spec: ModelSpec, items: Sequence[Mapping[str, npt.NDArray[Any]]]
    ) -> list[dict[str, npt.NDArray[Any]]]:
        inputs = [_input(spec, tensor, items) for tensor in spec.inputs]
        outputs = self._outputs.get(spec.name)
        if outputs is None:  # the same for every request of the model: made once
            outputs = self._outputs[spec.name] = tuple(t.name for t in spec.outputs)
        if not self.breaker.allow():
            raise UnavailableError("inference server unavailable (circuit open)")
        try:
            result = await self._send(spec.name, inputs, outputs)
        except (TransportError, TimeoutError) as exc:
            self.breaker.record_failure()
            log.warning("triton unreachable: %s", _why(exc))
            raise UnavailableError(f"inference server unavailable: {_why(exc)}") from exc
        except TritonHttpError as exc:
            # Triton answered, so the connection is fine; the request itself was refused.
            self.breaker.record_success()
            raise InferenceFailedError(f"{spec.name}: {exc.message}") from exc
        self.breaker.record_success()
        batches = {name: _batch(result[name], name, len(items)) for name in outputs}
        return [{name: batch[i] for name, batch in batches.items()} for i in range(len(items))]

    async def _send(
        self, model: str, inputs: Sequence[Tensor], outputs: Sequence[str]
    ) -> dict[str, npt.NDArray[Any]]:
        """One request, its inputs in a shared-memory slot when one is to be had."""
        slot = await self._lease(inputs)
        if slot is None:
            return await self._client.infer(model, inputs, outputs, timeout_s=self._timeout_s)
        shared = self._shared
        assert shared is not None  # a slot was leased from it
        try:
            offsets = shared.place(slot, [tensor.array for tensor in inputs])
            placed = [
                SharedTensor(t.name, t.datatype, t.array.shape, shared.name, at, t.array.nbytes)
                for t, at in zip(inputs, offsets, strict=True)
            ]
            try:
                return await self._client.infer(model, placed, outputs, timeout_s=self._timeout_s)
            except TritonHttpError as exc:
                if shared.name not in exc.message:
                    raise
                # Triton no longer knows the region (it restarted): this request goes again
                # with its tensors, and the region is registered again first thing.
                log.warning("triton lost shared memory region %s: %s", shared.name, exc.message)
                self._registered = False
                self._register_at = 0.0
        finally:
            # Also on a cancel or timeout: Triton may still read the slot for the abandoned
            # request, whose answer nobody reads; the next lessee's data is its own.
            shared.release(slot)
        return await self._client.infer(model, inputs, outputs, timeout_s=self._timeout_s)

    async def _lease(self, inputs: Sequence[Tensor]) -> int | None:
        if self._slot_bytes is None:
            return None
        if not self._registered:
            if time.monotonic() < self._register_at:
                return None
            await self._register()
        if not self._registered or self._shared is None:
            return None
        return self._shared.lease([tensor.array.nbytes for tensor in inputs])

    async def _register(self) -> None:
        """Make the slots (first time) and register them with Triton (again, if Triton says
        it already has that name)."""
        # Requests arriving meanwhile send their tensors rather than register too.
        self._register_at = time.monotonic() + REGISTER_RETRY_S
        if self._shared is None and self._slot_bytes is not None:
            try:
                self._shared = SharedSlots(
                    slot_bytes=self._slot_bytes,
                    slots=self._client.max_connections,
                    directory=self._shm_dir,
                )
            except OSError as exc:
                log.warning("no shared memory for inputs (they go in the body): %s", exc)
                self._slot_bytes = None
                return
        shared = self._shared
        if shared is None:
            return
        body = orjson.dumps({"key": shared.key, "offset": 0, "byte_size": shared.byte_size})
        register = _region_path(shared.name, "register")
        timeout_s = self._timeout_s
        try:
            response = await self._client.request(
                "POST", register, timeout_s=timeout_s, body=[body]
            )
            if response.status != 200:
                # Our own earlier registration (Triton kept it; we thought it lost): replace it.
                unregister = _region_path(shared.name, "unregister")
                await self._client.request("POST", unregister, timeout_s=timeout_s)
                response = await self._client.request(
                    "POST", register, timeout_s=timeout_s, body=[body]
                )
        except (TransportError, TimeoutError) as exc:
            log.info("shared memory not registered (inputs go in the body): %s", _why(exc))
            return
        if response.status != 200:
            log.warning(
                "triton refused shared memory region %s (inputs go in the body): %s",
                shared.name,
                response.error_message(),
            )
            return
        self._registered = True
        log.info("inputs go to triton through shared memory region %s", shared.name)


def _why(exc: BaseException) -> str:
    return "no answer in time" if isinstance(exc, TimeoutError) else str(exc)


def _input(
    spec: ModelSpec, tensor: TensorSpec, items: Sequence[Mapping[str, npt.NDArray[Any]]]
) -> Tensor:
    """The items' tensor `tensor.name`, checked against the spec and stacked into one batch."""
    name = tensor.name
    arrays = []
    for tensors in items:
        array = tensors.get(name)
        if array is None:
            raise ValueError(f"{spec.name}: preprocess produced no {name!r}")
        if array.shape != tensor.dims or array.dtype != np.dtype(tensor.dtype.numpy_name):
            raise ValueError(
                f"{spec.name}.{name}: got {array.dtype}{list(array.shape)}, "
                f"spec says {tensor.dtype.numpy_name}{list(tensor.dims)}"
            )
        arrays.append(array)
    # One item (a frame) is sent as a view with a batch axis; only a real batch is stacked.
    batched = np.ascontiguousarray(arrays[0][np.newaxis] if len(arrays) == 1 else np.stack(arrays))
    return Tensor(name, tensor.dtype.value, batched)


def _batch(batch: npt.NDArray[Any], name: str, count: int) -> npt.NDArray[Any]:
    if batch.shape[:1] != (count,):
        raise InferenceFailedError(f"output {name!r} has {batch.shape[:1]} items, sent {count}")
    return batch
