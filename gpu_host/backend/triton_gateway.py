"""The one shared Triton client (HTTP with binary tensors), behind a circuit breaker.

Every session's requests go through this single client (`triton_http`), so Triton's dynamic
batcher sees them together and merges frames from all sessions into one execution.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from gpu_host.backend.breaker import CircuitBreaker
from gpu_host.backend.protocol import InferenceFailedError, UnavailableError
from gpu_host.backend.triton_http import Tensor, TransportError, TritonHttpClient, TritonHttpError
from gpu_host.models.spec import ModelSpec, TensorSpec

log = logging.getLogger(__name__)


class ModelLoadError(Exception):
    """Triton could not load (or unload) a model; the message says why."""


class TritonUnreachableError(ModelLoadError):
    """Triton could not be asked about a model at all (not listening, or no answer)."""


def _model_path(name: str, action: str) -> str:
    return f"/v2/models/{quote(name, safe='')}/{action}"


def _repository_path(name: str, action: str) -> str:
    return f"/v2/repository/models/{quote(name, safe='')}/{action}"


class TritonGateway:
    def __init__(self, *, url: str, breaker: CircuitBreaker, timeout_s: float) -> None:
        """`url`: Triton's HTTP address, `http://host:port`."""
        self._client = TritonHttpClient(url)
        self.breaker = breaker
        self._timeout_s = timeout_s
        self._outputs: dict[str, tuple[str, ...]] = {}

    async def close(self) -> None:
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
            result = await self._client.infer(spec.name, inputs, outputs, timeout_s=self._timeout_s)
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
