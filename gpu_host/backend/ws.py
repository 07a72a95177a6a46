"""`/ws/inference`: one session per socket — hello, then frames in and results out.

Between the hello and `ready`, the models the session needs are made loaded
(`model_loader`): a `loading` notice first when one is not; a close 1011 with the reason when
one cannot load (its load failed, or the model budget is full of models in use).

Two tasks per session: the receiver validates each binary frame (header, size, JPEG header —
all before decoding) and drops it into the session's one-slot newest-wins buffer; the worker
takes the newest frame, infers it and sends the result. A slow model therefore never queues
frames: it skips to the latest one and the `dropped` count says how many it skipped. Text
messages after the hello are requests (`read_text`), which set the session's state only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketState

from gpu_host.backend.auth import UnauthorizedError
from gpu_host.backend.context import Backend
from gpu_host.backend.frames import Frame, check_jpeg
from gpu_host.backend.model_loader import ModelUnavailableError
from gpu_host.backend.motion import MotionMemory
from gpu_host.backend.pipeline import SessionReads
from gpu_host.backend.protocol import (
    READ_TEXT,
    BadHelloError,
    BadMessageError,
    CloseCode,
    ErrorCode,
    FrameError,
    FrameTooLargeError,
    NoticeKind,
    choose_models,
    close_reason,
    error_message,
    notice_message,
    parse_frame_header,
    parse_hello,
    parse_request,
    ready_message,
    result_message,
)
from gpu_host.backend.sessions import SessionHandle, TooManySessionsError
from gpu_host.backend.slot import NewestWinsSlot
from gpu_host.backend.worker_header import worker_header

log = logging.getLogger(__name__)

SHUTDOWN_NOTICE = "The inference server is shutting down."
LOADING_NOTICE = "Loading the {model} model; results follow when it is ready."


def origin_allowed(origin: str | None, allowed: Sequence[str]) -> bool:
    """Empty `allowed` admits any origin. A request without Origin is not from a browser
    page (browsers always send it on WebSockets); such a client could claim any origin
    anyway, so the check — which protects users' browsers from other sites — lets it by."""
    if not allowed or origin is None:
        return True
    return origin.rstrip("/") in allowed


class _DisconnectedError(Exception):
    """The client went away."""


async def inference_socket(websocket: WebSocket) -> None:
    backend: Backend = websocket.app.state.backend
    await InferenceSession(backend, websocket).run()


class InferenceSession:
    def __init__(self, backend: Backend, websocket: WebSocket) -> None:
        self._backend = backend
        self._ws = websocket
        self._send_lock = asyncio.Lock()
        self._slot: NewestWinsSlot[Frame] = NewestWinsSlot()
        self._reads = SessionReads()
        self._motion = MotionMemory()

    async def run(self) -> None:
        await self._ws.accept(headers=[worker_header()])
        settings = self._backend.settings
        if not origin_allowed(self._ws.headers.get("origin"), settings.allowed_origins):
            await self._refuse(CloseCode.FORBIDDEN_ORIGIN, "origin not allowed")
            return
        try:
            handle = await self._handshake()
        except _DisconnectedError:
            return
        except TimeoutError:
            await self._refuse(CloseCode.HELLO_TIMEOUT, "no hello in time")
            return
        except BadHelloError as exc:
            await self._refuse(CloseCode.BAD_HELLO, f"bad hello: {exc}")
            return
        except UnauthorizedError as exc:
            await self._refuse(CloseCode.UNAUTHORIZED, str(exc))
            return
        except TooManySessionsError as exc:
            await self._refuse(CloseCode.TOO_MANY_SESSIONS, str(exc))
            return
        try:
            if not await self._models_loaded(handle):
                return
            await self._send(
                ready_message(
                    session=handle.id,
                    models=handle.models,
                    max_frame_bytes=settings.max_frame_bytes,
                    max_frame_pixels=settings.max_frame_pixels,
                    frame_budget_ms=settings.frame_budget_ms,
                )
            )
            await self._serve(handle)
        except _DisconnectedError:
            pass
        finally:
            self._backend.metrics.active_sessions.dec()
            await self._backend.sessions.close(handle.id)
            self._backend.reporter.sessions_changed()
            log.info("session %s closed (user %s)", handle.id, handle.user)

    async def _handshake(self) -> SessionHandle:
        """Read and check the hello; register the session (the caller must close it)."""
        backend = self._backend
        settings = backend.settings
        async with asyncio.timeout(settings.hello_timeout_s):
            message = await self._ws.receive()
        if message["type"] == "websocket.disconnect":
            raise _DisconnectedError
        text = message.get("text")
        if text is None:
            raise BadHelloError("the first message must be a text hello")
        hello = parse_hello(text)
        caller = await asyncio.to_thread(
            backend.authenticator.verify, ticket=hello.ticket, token=hello.token
        )
        models = choose_models(hello.models, settings.models, settings.default_models)
        handle = await backend.sessions.open(
            user=caller.user,
            models=models,
            shutdown=self._shutdown,
            uses=backend.pipeline.requires(models),
        )
        backend.metrics.active_sessions.inc()
        backend.reporter.sessions_changed()
        log.info(
            "session %s opened (user %s, control session %s, models %s)",
            handle.id,
            caller.user,
            caller.session_id or "-",
            list(models),
        )
        return handle

    async def _serve(self, handle: SessionHandle) -> None:
        worker = asyncio.create_task(self._infer_loop(handle), name=f"infer-{handle.id}")
        try:
            await self._receive_loop(handle)
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def _receive_loop(self, handle: SessionHandle) -> None:
        metrics = self._backend.metrics
        while True:
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                try:
                    self._request(handle, message.get("text") or "")
                except BadMessageError as exc:
                    await self._send_error(exc)
                continue
            metrics.frames_received.inc()
            try:
                frame = self._accept(data)
            except FrameError as exc:
                await self._send_error(exc)
                continue
            if self._slot.put(frame) is not None:
                metrics.frames_dropped.inc()

    def _request(self, handle: SessionHandle, text: str) -> None:
        """Apply a client request to the session's state (the next frame acts on it)."""
        request = parse_request(text)
        if request == READ_TEXT:
            readers = self._backend.pipeline.region_models
            if not any(name in readers for name in handle.models):
                raise BadMessageError("read_text: this session reads no text (select ocr)")
            self._reads.ask_reread()

    def _accept(self, data: bytes) -> Frame:
        """Every check that needs no decoding: header, byte size, JPEG header, pixel count."""
        received_at = time.monotonic()
        settings = self._backend.settings
        header, jpeg = parse_frame_header(data)
        if len(data) > settings.max_frame_bytes:
            raise FrameTooLargeError(
                f"{len(data)} bytes > max_frame_bytes {settings.max_frame_bytes}",
                frame_id=header.frame_id,
            )
        return check_jpeg(
            header, jpeg, max_pixels=settings.max_frame_pixels, received_at=received_at
        )

    async def _infer_loop(self, handle: SessionHandle) -> None:
        with contextlib.suppress(_DisconnectedError):  # the receiver notices it too, and ends
            await self._infer_frames(handle)

    async def _infer_frames(self, handle: SessionHandle) -> None:
        backend = self._backend
        while True:
            frame = await self._slot.get()
            try:
                outcome = await backend.pipeline.run(
                    frame, handle.models, self._reads, self._motion
                )
            except FrameError as exc:
                await self._send_error(exc, frame_id=frame.header.frame_id)
                continue
            except Exception:  # a bug in one model's code must not end the session
                log.exception("frame %d of session %s failed", frame.header.frame_id, handle.id)
                await self._send_error(
                    FrameError("internal error"),
                    code=ErrorCode.INFERENCE_FAILED,
                    frame_id=frame.header.frame_id,
                )
                continue
            if outcome.reused:
                backend.metrics.frames_reused.inc()
            backend.metrics.frames_inferred.inc()
            backend.reporter.frame_inferred()
            await self._send(
                result_message(
                    header=frame.header,
                    outputs=outcome.outputs,
                    timing_ms=outcome.timing_ms,
                    dropped=self._slot.dropped,
                    late=outcome.late,
                    reused=outcome.reused,
                )
            )

    async def _send_error(
        self, exc: FrameError, *, code: ErrorCode | None = None, frame_id: int | None = None
    ) -> None:
        code = code or exc.code
        self._backend.metrics.errors.labels(code=code.value).inc()
        frame_id = exc.frame_id if exc.frame_id is not None else frame_id
        await self._send(error_message(code, exc.message, frame_id=frame_id))

    async def _send(self, message: dict[str, Any]) -> None:
        # orjson: a result's JSON in ≈5 µs where the standard library took ≈70 µs.
        text = orjson.dumps(message).decode()
        async with self._send_lock:
            if self._ws.application_state is not WebSocketState.CONNECTED:
                raise _DisconnectedError
            try:
                await self._ws.send_text(text)
            except (RuntimeError, OSError) as exc:  # the peer is gone mid-send
                raise _DisconnectedError from exc

    async def _refuse(self, code: CloseCode, reason: str) -> None:
        self._backend.metrics.errors.labels(code=str(code.value)).inc()
        log.info("socket refused: %d %s", code.value, reason)
        await self._close(code, reason)

    async def _models_loaded(self, handle: SessionHandle) -> bool:
        """Make the session's models loaded (`model_loader`); False when they cannot be, and
        the socket is closed (1011, the reason says why). Triton unreachable is no reason to
        refuse a session of start-up models: Triton loads them when it is back, and frames
        meanwhile get `unavailable`, as before on-demand loading."""
        loader = self._backend.loader
        needed = self._backend.pipeline.requires(handle.models)
        try:
            await loader.ensure(needed, on_loading=self._loading)
        except ModelUnavailableError as exc:
            if exc.unreachable and loader.pinned.issuperset(needed):
                return True
            await self._refuse(CloseCode.INTERNAL_ERROR, str(exc))
            return False
        return True

    async def _loading(self, model: str) -> None:
        """A model this session needs is not loaded: say so before the wait (`ready` follows
        once it is loaded)."""
        await self._send(notice_message(NoticeKind.LOADING, LOADING_NOTICE.format(model=model)))

    async def _shutdown(self) -> None:
        with contextlib.suppress(_DisconnectedError):
            await self._send(notice_message(NoticeKind.SHUTDOWN, SHUTDOWN_NOTICE))
        await self._close(CloseCode.GOING_AWAY, "server shutting down")

    async def _close(self, code: CloseCode, reason: str) -> None:
        async with self._send_lock:
            if self._ws.application_state is WebSocketState.CONNECTED:
                with contextlib.suppress(RuntimeError, OSError):
                    await self._ws.close(code=code.value, reason=close_reason(reason))
