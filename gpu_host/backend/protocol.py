"""WebSocket protocol v1: message shapes and parsing, pure and I/O free except for loading
the protocol's one source, `frontend/js/protocol.json` (the engine loads the same file).

1. Client → `{"type":"hello","ticket":"<ticket>","models":[...]}` (a socket ticket from
   `POST /api/sessions/{id}/ticket`; v1 as first written sent `"token":"<JWT>"`, which only
   hosts that do not require tickets accept); server → `ready` or a close with a `CloseCode`.
2. Client → binary frames: `struct.pack("<4sIQ", b"SPF1", frame_id, capture_time_us)` + JPEG.
3. Server → `result` per inferred frame, `error` for a bad frame or an outage (socket stays
   open), `notice` for what the user should know (a `shutdown` notice precedes a 1001 close).
   Coordinates are normalized to 0..1 of the frame.
4. Client → `{"type":"read_text"}` at any time: the next frame reads every text region afresh.

The JSON names every message, field, error code, notice kind and close code; the enums here
give them readable names and are checked against it at import, so the two cannot drift.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum
from pathlib import Path
from typing import Any, Final

from gpu_host.backend.masks import encode_mask
from gpu_host.vision.types import ModelOutput

PROTOCOL_FILE: Final = Path(__file__).resolve().parents[2] / "frontend" / "js" / "protocol.json"
"""The repository path; the host release ships it (infra/constructs/host_release.py)."""


class ProtocolDriftError(RuntimeError):
    """This module and `protocol.json` disagree: fix whichever is behind."""


def _load(path: Path) -> dict[str, Any]:
    try:
        spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ProtocolDriftError(
            f"{path} is missing: the backend loads the protocol from it, so a release must ship "
            "frontend/js/protocol.json"
        ) from exc
    return spec


SPEC: Final = _load(PROTOCOL_FILE)
_FRAME: Final[dict[str, Any]] = SPEC["frame"]
_CLIENT: Final[dict[str, Any]] = SPEC["client_messages"]
_SERVER: Final[dict[str, Any]] = SPEC["server_messages"]
_CLOSE: Final[dict[str, Any]] = SPEC["close_codes"]

WS_PATH: Final[str] = SPEC["path"]
HEADER: Final = struct.Struct(_FRAME["struct"])
MAGIC: Final = str(_FRAME["magic"]).encode("ascii")
MAX_MODELS_IN_HELLO: Final[int] = _CLIENT["hello"]["max_models"]


class ClientMessage(StrEnum):
    HELLO = "hello"
    READ_TEXT = "read_text"


class ServerMessage(StrEnum):
    READY = "ready"
    RESULT = "result"
    ERROR = "error"
    NOTICE = "notice"


READ_TEXT: Final = ClientMessage.READ_TEXT
REQUESTS: Final = frozenset(m.value for m in ClientMessage if m is not ClientMessage.HELLO)
"""Text messages a client may send after the hello."""


class CloseCode(IntEnum):
    """Every close code of the protocol, those the server sends and those the transport
    (uvicorn, a proxy, the browser) does; `protocol.json` says what each means to a client."""

    NORMAL = _CLOSE["normal"]["code"]
    GOING_AWAY = _CLOSE["going_away"]["code"]
    """The server is shutting down (sent after a `shutdown` notice)."""
    ABNORMAL = _CLOSE["abnormal"]["code"]
    """Never sent: what a browser reports for a connection that dropped."""
    POLICY_VIOLATION = _CLOSE["policy_violation"]["code"]
    MESSAGE_TOO_BIG = _CLOSE["message_too_big"]["code"]
    INTERNAL_ERROR = _CLOSE["internal_error"]["code"]
    SERVICE_RESTART = _CLOSE["service_restart"]["code"]
    BAD_HELLO = _CLOSE["bad_hello"]["code"]
    UNAUTHORIZED = _CLOSE["unauthorized"]["code"]
    FORBIDDEN_ORIGIN = _CLOSE["forbidden_origin"]["code"]
    HELLO_TIMEOUT = _CLOSE["hello_timeout"]["code"]
    TOO_MANY_SESSIONS = _CLOSE["too_many_sessions"]["code"]


class ErrorCode(StrEnum):
    BAD_FRAME = "bad_frame"
    FRAME_TOO_LARGE = "frame_too_large"
    BAD_MESSAGE = "bad_message"
    UNAVAILABLE = "unavailable"
    INFERENCE_FAILED = "inference_failed"


class NoticeKind(StrEnum):
    SHUTDOWN = "shutdown"
    LOADING = "loading"
    """Before `ready`: a model the session needs is being loaded (`ws`, `model_loader`)."""


def _require_same(enum: type[Enum], expected: Mapping[str, object]) -> None:
    """`enum`'s members, by lower-cased name, must be exactly `expected` (name → value)."""
    actual = {member.name.lower(): member.value for member in enum}
    if actual != dict(expected):
        only_enum = sorted(set(actual.items()) - set(expected.items()), key=str)
        only_json = sorted(set(expected.items()) - set(actual.items()), key=str)
        raise ProtocolDriftError(
            f"{enum.__name__} and {PROTOCOL_FILE.name} disagree: only in the enum {only_enum}, "
            f"only in the JSON {only_json}"
        )


def check_spec(spec: Mapping[str, Any]) -> None:
    """Raise `ProtocolDriftError` unless `spec` lists exactly this module's names and codes."""
    _require_same(ClientMessage, {name: name for name in spec["client_messages"]})
    _require_same(ServerMessage, {name: name for name in spec["server_messages"]})
    _require_same(ErrorCode, {name: name for name in spec["error_codes"]})
    _require_same(NoticeKind, {name: name for name in spec["notice_kinds"]})
    _require_same(CloseCode, {name: c["code"] for name, c in spec["close_codes"].items()})
    frame = spec["frame"]
    if struct.calcsize(frame["struct"]) != frame["header_bytes"]:
        raise ProtocolDriftError(
            f"frame struct {frame['struct']!r} packs {struct.calcsize(frame['struct'])} bytes, "
            f"not header_bytes {frame['header_bytes']}"
        )


check_spec(SPEC)


def message_fields(kind: ClientMessage | ServerMessage) -> tuple[frozenset[str], frozenset[str]]:
    """(required, every) field name of a message type, as `protocol.json` declares them."""
    table = _CLIENT if isinstance(kind, ClientMessage) else _SERVER
    fields: dict[str, Any] = table[kind.value]["fields"]
    required = frozenset(name for name, field in fields.items() if field["required"])
    return required, frozenset(fields)


class FrameError(Exception):
    """Why one frame got no result; becomes an `error` message and the socket stays open."""

    code: ErrorCode = ErrorCode.BAD_FRAME

    def __init__(self, message: str, *, frame_id: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.frame_id = frame_id


class BadFrameError(FrameError):
    code = ErrorCode.BAD_FRAME


class FrameTooLargeError(FrameError):
    code = ErrorCode.FRAME_TOO_LARGE


class UnavailableError(FrameError):
    """Triton is unreachable (or the breaker is open)."""

    code = ErrorCode.UNAVAILABLE


class InferenceFailedError(FrameError):
    """Triton answered with an error."""

    code = ErrorCode.INFERENCE_FAILED


class BadMessageError(FrameError):
    """A text message after the hello that the server does not understand."""

    code = ErrorCode.BAD_MESSAGE


class BadHelloError(Exception):
    """The first message is not a valid hello (closes with 4400)."""


@dataclass(frozen=True, slots=True)
class FrameHeader:
    frame_id: int
    capture_us: int


@dataclass(frozen=True, slots=True)
class Hello:
    ticket: str | None
    """None when absent or not a string: the auth step turns that into 4401, not 4400."""
    token: str | None
    """A sign-in token (v1 as first written); the same None rule."""
    models: tuple[str, ...] | None
    """None: the client did not choose, so it gets the host's default models."""


def parse_frame_header(data: bytes) -> tuple[FrameHeader, bytes]:
    """Split a binary message into its header and JPEG payload, or raise `BadFrameError`."""
    if len(data) < HEADER.size:
        raise BadFrameError(
            f"frame is {len(data)} bytes, shorter than the {HEADER.size}-byte header"
        )
    magic, frame_id, capture_us = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise BadFrameError(f"bad magic {magic!r}, expected {MAGIC!r}")
    payload = data[HEADER.size :]
    if not payload:
        raise BadFrameError("no JPEG after the header", frame_id=frame_id)
    return FrameHeader(frame_id=frame_id, capture_us=capture_us), payload


def pack_frame(frame_id: int, capture_us: int, jpeg: bytes) -> bytes:
    """The client side of `parse_frame_header` (tests, benchmarks)."""
    return HEADER.pack(MAGIC, frame_id, capture_us) + jpeg


def parse_hello(text: str) -> Hello:
    """Parse the first message's text, or raise `BadHelloError` saying what is wrong."""
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise BadHelloError("hello is not JSON") from exc
    if not isinstance(message, dict):
        raise BadHelloError("hello must be a JSON object")
    if message.get("type") != ClientMessage.HELLO:
        raise BadHelloError(f"first message must have type 'hello', got {message.get('type')!r}")
    return Hello(
        ticket=_credential(message.get("ticket")),
        token=_credential(message.get("token")),
        models=_parse_models(message.get("models")),
    )


def _credential(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _parse_models(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadHelloError("models must be a list of model names")
    if not value:
        raise BadHelloError("models must not be empty (omit it to get the default models)")
    if len(value) > MAX_MODELS_IN_HELLO:
        raise BadHelloError(f"at most {MAX_MODELS_IN_HELLO} models")
    return tuple(dict.fromkeys(value))


def choose_models(
    requested: tuple[str, ...] | None, served: Sequence[str], defaults: Sequence[str] = ()
) -> tuple[str, ...]:
    """The session's models: what the hello asked for, all of it served, or `BadHelloError`.

    A hello without models gets the served ones among `defaults` — or every served model
    when none of the defaults is served, so that a session never starts with nothing.
    """
    if requested is None:
        return tuple(m for m in defaults if m in served) or tuple(served)
    unknown = [m for m in requested if m not in served]
    if unknown:
        raise BadHelloError(f"unknown models {unknown}; served: {list(served)}")
    return requested


def parse_request(text: str) -> str:
    """A text message after the hello: the request type it names, or `BadMessageError`.

    The one request so far is `read_text` (run text recognition on the next frame's regions
    even where earlier reads could be reused).
    """
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    kind = message.get("type") if isinstance(message, dict) else None
    if kind not in REQUESTS:
        raise BadMessageError(
            f"after the hello only binary frames and {sorted(REQUESTS)} requests are expected"
        )
    return str(kind)


def ready_message(
    *,
    session: str,
    models: Sequence[str],
    max_frame_bytes: int,
    max_frame_pixels: int,
    frame_budget_ms: float,
) -> dict[str, Any]:
    return {
        "type": ServerMessage.READY.value,
        "session": session,
        "models": list(models),
        "max_frame_bytes": max_frame_bytes,
        # Extensions of v1: lets a client downscale before it is told off, and tells it how
        # long the slowest model may hold a frame's result back.
        "max_frame_pixels": max_frame_pixels,
        "frame_budget_ms": frame_budget_ms,
    }


def error_message(code: ErrorCode, message: str, *, frame_id: int | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": ServerMessage.ERROR.value,
        "code": code.value,
        "message": message,
    }
    if frame_id is not None:
        error["frame_id"] = frame_id  # extension of v1: which frame failed
    return error


def notice_message(kind: NoticeKind, message: str) -> dict[str, Any]:
    """Something to show the user; a `shutdown` notice precedes the 1001 close."""
    return {"type": ServerMessage.NOTICE.value, "kind": kind.value, "message": message}


def result_message(
    *,
    header: FrameHeader,
    outputs: Sequence[ModelOutput],
    timing_ms: Mapping[str, float],
    dropped: int,
    late: Sequence[str] = (),
    reused: bool = False,
) -> dict[str, Any]:
    """One frame's `result`; box and point coordinates rounded to 1e-4 of the frame, masks
    as run lengths (`masks.encode_mask`)."""
    result: dict[str, Any] = {
        "type": ServerMessage.RESULT.value,
        "frame_id": header.frame_id,
        "capture_us": header.capture_us,
        "detections": [
            {"model": d.model, "label": d.label, "score": _r(d.score), "box": _box(d.box)}
            for out in outputs
            for d in out.detections
        ],
        "keypoints": [
            {"model": k.model, "points": [[_r(x), _r(y), _r(s)] for x, y, s in k.points]}
            for out in outputs
            for k in out.keypoints
        ],
        "texts": [
            {"model": t.model, "text": t.text, "box": _box(t.box), "score": _r(t.score)}
            for out in outputs
            for t in out.texts
        ],
        "timing_ms": {stage: round(ms, 2) for stage, ms in timing_ms.items()},
        "dropped": dropped,
        # Extension of v1: the session's models that overran the frame budget (cancelled).
        "late": list(late),
    }
    masks = [encode_mask(m) for out in outputs for m in out.masks]
    if masks:
        # Extension of v1, sent only when there are masks: a result without them stays byte
        # for byte what it was (gpu_host/backend/masks.py has the run-length form).
        result["masks"] = masks
    if reused:
        # Extension of v1, sent only when true (the motion gate's): these are the session's
        # last inferred frame's results, this frame barely differed from it.
        result["reused"] = True
    return result


def close_reason(text: str) -> str:
    """A close frame's reason is limited to 123 bytes of UTF-8."""
    encoded = text.encode()
    if len(encoded) <= 123:
        return text
    return encoded[:120].decode(errors="ignore") + "..."


def _r(value: float) -> float:
    return round(float(value), 4)


def _box(box: tuple[float, float, float, float]) -> list[float]:
    return [_r(v) for v in box]
