"""The one shared Triton gRPC client, behind a circuit breaker.

Every session's requests go through this single `tritonclient.grpc.aio` client, so Triton's
dynamic batcher sees them together and merges frames from all sessions into one execution.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from gpu_host.backend.breaker import CircuitBreaker
from gpu_host.backend.protocol import InferenceFailedError, UnavailableError
from gpu_host.models.spec import ModelSpec

log = logging.getLogger(__name__)

TRANSPORT_FAILURES = frozenset({"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED"})
"""gRPC statuses that mean "Triton is not reachable", as tritonclient spells them."""

UNREACHABLE = "StatusCode.UNAVAILABLE"
"""The one transport failure of a load: a load past its deadline is the model's problem."""

MAX_MESSAGE_BYTES = 64 * 1024 * 1024

CHANNEL_ARGS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # gRPC's default reconnect backoff grows to 120 s; after a Triton restart we want the
    # channel back within seconds, not minutes.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
]


class ModelLoadError(Exception):
    """Triton could not load (or unload) a model; the message says why."""


class TritonUnreachableError(ModelLoadError):
    """Triton could not be asked about a model at all (not listening, or no answer)."""


class TritonGateway:
    def __init__(self, *, url: str, breaker: CircuitBreaker, timeout_s: float) -> None:
        self._client = InferenceServerClient(url, channel_args=CHANNEL_ARGS)
        self.breaker = breaker
        self._timeout_s = timeout_s
        self._requested: dict[str, list[InferRequestedOutput]] = {}

    async def close(self) -> None:
        await self._client.close()

    async def models_ready(self, names: Iterable[str]) -> bool:
        """True when Triton answers and every named model is loaded (no breaker: a probe)."""
        try:
            if not await self._client.is_server_live(client_timeout=self._timeout_s):
                return False
            for name in names:
                if not await self._client.is_model_ready(name, client_timeout=self._timeout_s):
                    return False
        except InferenceServerException:
            return False
        return True

    async def model_ready(self, name: str) -> bool:
        """Whether Triton has `name` loaded and ready; raises `TritonUnreachableError` when
        Triton cannot be asked."""
        try:
            return bool(await self._client.is_model_ready(name, client_timeout=self._timeout_s))
        except InferenceServerException as exc:
            if exc.status() in TRANSPORT_FAILURES:
                raise TritonUnreachableError(
                    f"inference server unavailable: {exc.status()}"
                ) from exc
            return False

    async def load_model(self, name: str, *, timeout_s: float) -> None:
        """Load `name` through Triton's model repository API (explicit model control);
        returns once it is ready. Raises `ModelLoadError` when Triton refuses or takes longer
        than `timeout_s`, `TritonUnreachableError` when it cannot be asked.
        https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_model_repository.md"""
        try:
            await self._client.load_model(name, client_timeout=timeout_s)
        except InferenceServerException as exc:
            if exc.status() == UNREACHABLE:
                raise TritonUnreachableError(
                    f"inference server unavailable: {exc.status()}"
                ) from exc
            raise ModelLoadError(f"{name}: {exc.message() or exc.status()}") from exc

    async def unload_model(self, name: str) -> None:
        """Ask Triton to unload `name`. Triton answers at once and finishes the unload when
        the model's in-flight requests are done (its state reads UNLOADING meanwhile)."""
        try:
            await self._client.unload_model(name, client_timeout=self._timeout_s)
        except InferenceServerException as exc:
            raise ModelLoadError(f"{name}: unload failed: {exc.message()}") from exc

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
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        batches = await asyncio.gather(*(self._infer_batch(spec, chunk) for chunk in chunks))
        return [outputs for batch in batches for outputs in batch]

    async def _infer_batch(
        self, spec: ModelSpec, items: Sequence[Mapping[str, npt.NDArray[Any]]]
    ) -> list[dict[str, npt.NDArray[Any]]]:
        inputs = [_input(spec, t.name, items) for t in spec.inputs]
        outputs = self._requested.get(spec.name)
        if outputs is None:  # the same for every request of the model: made once
            outputs = [InferRequestedOutput(t.name) for t in spec.outputs]
            self._requested[spec.name] = outputs
        if not self.breaker.allow():
            raise UnavailableError("inference server unavailable (circuit open)")
        try:
            result = await self._client.infer(
                spec.name, inputs, outputs=outputs, client_timeout=self._timeout_s
            )
        except InferenceServerException as exc:
            if exc.status() in TRANSPORT_FAILURES:
                self.breaker.record_failure()
                log.warning("triton unreachable (%s): %s", exc.status(), exc.message())
                raise UnavailableError(f"inference server unavailable: {exc.status()}") from exc
            # Triton answered, so the connection is fine; the request itself was refused.
            self.breaker.record_success()
            raise InferenceFailedError(f"{spec.name}: {exc.message()}") from exc
        self.breaker.record_success()
        batches = {
            t.name: _batch(result.as_numpy(t.name), t.name, len(items)) for t in spec.outputs
        }
        return [{name: batch[i] for name, batch in batches.items()} for i in range(len(items))]


def _input(
    spec: ModelSpec, name: str, items: Sequence[Mapping[str, npt.NDArray[Any]]]
) -> InferInput:
    """The items' tensor `name`, checked against the spec and stacked into one batch."""
    tensor = next(t for t in spec.inputs if t.name == name)
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
    infer_input = InferInput(name, list(batched.shape), tensor.dtype.value)
    infer_input.set_data_from_numpy(batched)
    return infer_input


def _batch(batch: npt.NDArray[Any] | None, name: str, count: int) -> npt.NDArray[Any]:
    if batch is None:
        raise InferenceFailedError(f"response lacks output {name!r}")
    if batch.shape[:1] != (count,):
        raise InferenceFailedError(f"output {name!r} has {batch.shape[:1]} items, sent {count}")
    return batch
