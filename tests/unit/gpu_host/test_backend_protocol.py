"""WebSocket protocol v1: frame headers, hello parsing, message shapes."""

from __future__ import annotations

import copy
import json
import struct
from collections.abc import Callable
from typing import Any

import pytest

from gpu_host.backend.protocol import (
    HEADER,
    SPEC,
    WS_PATH,
    BadFrameError,
    BadHelloError,
    BadMessageError,
    CloseCode,
    ErrorCode,
    FrameHeader,
    NoticeKind,
    ProtocolDriftError,
    check_spec,
    choose_models,
    close_reason,
    error_message,
    notice_message,
    pack_frame,
    parse_frame_header,
    parse_hello,
    parse_request,
    ready_message,
    result_message,
)
from gpu_host.vision.types import Detection, Keypoints, ModelOutput, TextRead


def test_header_is_16_bytes_little_endian() -> None:
    assert HEADER.size == 16
    assert pack_frame(1, 2, b"x")[:16] == b"SPF1" + (1).to_bytes(4, "little") + (2).to_bytes(
        8, "little"
    )


@pytest.mark.parametrize(
    ("frame_id", "capture_us"),
    [(0, 0), (1, 1_700_000_000_000_000), (2**32 - 1, 2**64 - 1)],
)
def test_good_header_round_trips(frame_id: int, capture_us: int) -> None:
    header, payload = parse_frame_header(pack_frame(frame_id, capture_us, b"\xff\xd8jpeg"))
    assert header == FrameHeader(frame_id=frame_id, capture_us=capture_us)
    assert payload == b"\xff\xd8jpeg"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter than the 16-byte header"),
        (b"SPF1", "shorter than the 16-byte header"),
        (b"SPF1" + bytes(11), "shorter than the 16-byte header"),
        (struct.pack("<4sIQ", b"SPF2", 1, 2) + b"jpeg", "bad magic"),
        (struct.pack("<4sIQ", b"spf1", 1, 2) + b"jpeg", "bad magic"),
        (b"\xff\xd8\xff\xe0" + bytes(20), "bad magic"),
        (struct.pack("<4sIQ", b"SPF1", 7, 2), "no JPEG after the header"),
    ],
)
def test_bad_header_is_a_bad_frame(data: bytes, message: str) -> None:
    with pytest.raises(BadFrameError, match=message) as caught:
        parse_frame_header(data)
    assert caught.value.code is ErrorCode.BAD_FRAME


def test_empty_payload_error_names_the_frame() -> None:
    with pytest.raises(BadFrameError) as caught:
        parse_frame_header(struct.pack("<4sIQ", b"SPF1", 7, 2))
    assert caught.value.frame_id == 7


@pytest.mark.parametrize(
    ("text", "token", "models"),
    [
        ('{"type":"hello","token":"t","models":["text"]}', "t", ("text",)),
        ('{"type":"hello","token":"t"}', "t", None),
        ('{"type":"hello","token":"t","models":null}', "t", None),
        ('{"type":"hello","token":"t","models":["a","b","a"]}', "t", ("a", "b")),
        ('{"type":"hello","models":["text"]}', None, ("text",)),
        ('{"type":"hello","token":42}', None, None),
        ('{"type":"hello","token":""}', None, None),
    ],
)
def test_good_hello(text: str, token: str | None, models: tuple[str, ...] | None) -> None:
    hello = parse_hello(text)
    assert hello.token == token
    assert hello.models == models


@pytest.mark.parametrize(
    ("text", "ticket", "token"),
    [
        ('{"type":"hello","ticket":"k","models":["text"]}', "k", None),
        ('{"type":"hello","ticket":"k","token":"t"}', "k", "t"),
        ('{"type":"hello","ticket":7}', None, None),
        ('{"type":"hello","ticket":""}', None, None),
    ],
)
def test_hello_carries_a_ticket(text: str, ticket: str | None, token: str | None) -> None:
    hello = parse_hello(text)
    assert (hello.ticket, hello.token) == (ticket, token)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("", "not JSON"),
        ('["hello"]', "JSON object"),
        ('"hello"', "JSON object"),
        ('{"token":"t"}', "type 'hello'"),
        ('{"type":"frame","token":"t"}', "type 'hello'"),
        ('{"type":"hello","token":"t","models":"text"}', "list of model names"),
        ('{"type":"hello","token":"t","models":[1]}', "list of model names"),
        ('{"type":"hello","token":"t","models":[]}', "must not be empty"),
        ('{"type":"hello","token":"t","models":' + json.dumps(["m"] * 17) + "}", "at most 16"),
    ],
)
def test_bad_hello(text: str, message: str) -> None:
    with pytest.raises(BadHelloError, match=message):
        parse_hello(text)


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        (["detect", "pose", "face", "text", "ocr"], ("detect", "pose")),
        (["pose", "text"], ("pose",)),
        (["text", "ocr"], ("text", "ocr")),  # no default served: every served model
    ],
)
def test_a_hello_without_models_gets_the_served_defaults(
    served: list[str], expected: tuple[str, ...]
) -> None:
    assert choose_models(None, served, ("detect", "pose")) == expected


def test_a_hello_with_models_gets_exactly_those() -> None:
    assert choose_models(("ocr", "detect"), ["text", "detect", "ocr"], ("detect",)) == (
        "ocr",
        "detect",
    )


def test_choose_models_rejects_unknown() -> None:
    with pytest.raises(BadHelloError, match=r"unknown models \['pose'\]; served: \['text'\]"):
        choose_models(("text", "pose"), ["text"])


def test_result_message_has_the_v1_shape() -> None:
    outputs = [
        ModelOutput(detections=(Detection("text", "text", 0.912345, (0.1, 0.2, 0.30001, 0.4)),)),
        ModelOutput(keypoints=(Keypoints("pose", ((0.5, 0.25, 0.9),)),)),
        ModelOutput(texts=(TextRead("ocr", "HELLO", (0.0, 0.0, 1.0, 1.0), 0.8),)),
    ]
    message = result_message(
        header=FrameHeader(frame_id=5, capture_us=77),
        outputs=outputs,
        timing_ms={"total": 12.3456},
        dropped=3,
    )
    assert message == {
        "type": "result",
        "frame_id": 5,
        "capture_us": 77,
        "detections": [
            {"model": "text", "label": "text", "score": 0.9123, "box": [0.1, 0.2, 0.3, 0.4]}
        ],
        "keypoints": [{"model": "pose", "points": [[0.5, 0.25, 0.9]]}],
        "texts": [{"model": "ocr", "text": "HELLO", "box": [0.0, 0.0, 1.0, 1.0], "score": 0.8}],
        "timing_ms": {"total": 12.35},
        "dropped": 3,
        "late": [],
    }
    json.dumps(message)  # plain JSON types only


def test_result_message_names_the_late_models() -> None:
    message = result_message(
        header=FrameHeader(frame_id=1, capture_us=0),
        outputs=[],
        timing_ms={},
        dropped=0,
        late=("ocr", "detect"),
    )
    assert message["late"] == ["ocr", "detect"]


def test_ready_message_tells_the_limits_and_the_budget() -> None:
    assert ready_message(
        session="s", models=("detect",), max_frame_bytes=10, max_frame_pixels=20, frame_budget_ms=5
    ) == {
        "type": "ready",
        "session": "s",
        "models": ["detect"],
        "max_frame_bytes": 10,
        "max_frame_pixels": 20,
        "frame_budget_ms": 5,
    }


def test_read_text_is_the_one_request() -> None:
    assert parse_request('{"type":"read_text"}') == "read_text"


@pytest.mark.parametrize(
    "text", ['{"type":"hello"}', "not json", "[1]", '{"kind":"read_text"}', ""]
)
def test_other_text_messages_are_bad_messages(text: str) -> None:
    with pytest.raises(BadMessageError, match=r"only binary frames and \['read_text'\]") as caught:
        parse_request(text)
    assert caught.value.code is ErrorCode.BAD_MESSAGE


def test_error_message_carries_the_frame_id_when_known() -> None:
    assert error_message(ErrorCode.BAD_FRAME, "x") == {
        "type": "error",
        "code": "bad_frame",
        "message": "x",
    }
    assert error_message(ErrorCode.UNAVAILABLE, "y", frame_id=3)["frame_id"] == 3


@pytest.mark.parametrize("text", ["short", "é" * 100, "x" * 500])
def test_close_reason_fits_a_close_frame(text: str) -> None:
    assert len(close_reason(text).encode()) <= 123


def test_the_protocol_file_names_the_path_and_the_codes_the_backend_uses() -> None:
    assert WS_PATH == "/ws/inference"
    assert CloseCode.FORBIDDEN_ORIGIN.value == 4403
    assert CloseCode.HELLO_TIMEOUT.value == 4408
    assert "shutting_down" not in {code.value for code in ErrorCode}  # a notice now


def test_the_shutdown_notice() -> None:
    assert notice_message(NoticeKind.SHUTDOWN, "bye") == {
        "type": "notice",
        "kind": "shutdown",
        "message": "bye",
    }


def _add_close_code(spec: dict[str, Any]) -> None:
    spec["close_codes"]["try_later"] = {"code": 4503, "retry": True, "message": "m"}


def _drop_error_code(spec: dict[str, Any]) -> None:
    del spec["error_codes"]["unavailable"]


def _renumber_close_code(spec: dict[str, Any]) -> None:
    spec["close_codes"]["bad_hello"]["code"] = 4000


def _add_notice_kind(spec: dict[str, Any]) -> None:
    spec["notice_kinds"]["maintenance"] = {"description": "d"}


def _add_request(spec: dict[str, Any]) -> None:
    spec["client_messages"]["pause"] = {"fields": {}}


def _bad_header_size(spec: dict[str, Any]) -> None:
    spec["frame"]["header_bytes"] = 12


@pytest.mark.parametrize(
    ("drift", "names"),
    [
        (_add_close_code, "CloseCode.*try_later"),
        (_drop_error_code, "ErrorCode.*unavailable"),
        (_renumber_close_code, "CloseCode.*4000"),
        (_add_notice_kind, "NoticeKind.*maintenance"),
        (_add_request, "ClientMessage.*pause"),
        (_bad_header_size, "packs 16 bytes, not header_bytes 12"),
    ],
)
def test_drift_between_the_enums_and_the_json_fails_loudly(
    drift: Callable[[dict[str, Any]], None], names: str
) -> None:
    """Given protocol.json with a name or code the enums lack (or the reverse), then loading it
    raises, naming what differs (at import, for the real file)."""
    spec = copy.deepcopy(SPEC)
    drift(spec)
    with pytest.raises(ProtocolDriftError, match=names):
        check_spec(spec)


def test_the_real_protocol_file_matches() -> None:
    check_spec(SPEC)
