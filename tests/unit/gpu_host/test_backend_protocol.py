"""WebSocket protocol v1: frame headers, hello parsing, message shapes."""

from __future__ import annotations

import json
import struct

import pytest

from gpu_host.backend.protocol import (
    HEADER,
    BadFrameError,
    BadHelloError,
    BadMessageError,
    ErrorCode,
    FrameHeader,
    choose_models,
    close_reason,
    error_message,
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
