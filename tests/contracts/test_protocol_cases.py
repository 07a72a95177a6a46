"""The backend's half of the socket protocol's shared cases (tests/contracts/protocol_cases.json);
tests/frontend/protocol-contract.test.mjs runs the engine's half of the same file."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from gpu_host.backend.masks import decode_mask, encode_mask
from gpu_host.backend.protocol import (
    MAX_MODELS_IN_HELLO,
    SPEC,
    BadHelloError,
    BadMessageError,
    ClientMessage,
    CloseCode,
    ErrorCode,
    FrameHeader,
    Hello,
    NoticeKind,
    ServerMessage,
    choose_models,
    error_message,
    message_fields,
    notice_message,
    parse_hello,
    parse_request,
    ready_message,
    result_message,
)
from gpu_host.vision.types import Detection, Keypoints, Mask, ModelOutput, TextRead
from tests.contracts.protocol_cases import PROTOCOL_CASES

CASES = PROTOCOL_CASES


def _named(section: str) -> list[Any]:
    return [pytest.param(case, id=case["name"]) for case in CASES[section]]


def build(case: dict[str, Any]) -> dict[str, Any]:
    """What the backend sends for the case's `input`, built by the backend's own functions."""
    given = case["input"]
    match case["build"]:
        case "ready":
            return ready_message(**given)
        case "error":
            return error_message(
                ErrorCode(given["code"]), given["message"], frame_id=given["frame_id"]
            )
        case "notice":
            return notice_message(NoticeKind(given["kind"]), given["message"])
        case "result":
            outputs = [
                *(
                    ModelOutput(detections=(Detection(d["model"], d["label"], d["score"], box(d)),))
                    for d in given["detections"]
                ),
                *(
                    ModelOutput(
                        keypoints=(Keypoints(k["model"], tuple(tuple(p) for p in k["points"])),)
                    )
                    for k in given["keypoints"]
                ),
                *(
                    ModelOutput(texts=(TextRead(t["model"], t["text"], box(t), t["score"]),))
                    for t in given["texts"]
                ),
                *(
                    ModelOutput(
                        masks=(Mask(m["model"], m["label"], m["score"], box(m), bitmap(m["rows"])),)
                    )
                    for m in given.get("masks", [])
                ),
            ]
            return result_message(
                header=FrameHeader(frame_id=given["frame_id"], capture_us=given["capture_us"]),
                outputs=outputs,
                timing_ms=given["timing_ms"],
                dropped=given["dropped"],
                late=given["late"],
            )
    raise AssertionError(f"unknown builder {case['build']!r}")


def box(item: dict[str, Any]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = item["box"]
    return (x1, y1, x2, y2)


def bitmap(rows: list[str]) -> npt.NDArray[np.bool_]:
    """A fixture's bitmap: one string per row, `#` inside the thing."""
    return np.array([[cell == "#" for cell in row] for row in rows], dtype=np.bool_)


@pytest.mark.parametrize("case", _named("server_messages"))
def test_the_backend_builds_the_wire_message(case: dict[str, Any]) -> None:
    message = build(case)
    assert message == case["wire"]
    assert json.loads(json.dumps(message)) == message  # plain JSON types only


@pytest.mark.parametrize("case", _named("server_messages"))
def test_every_field_sent_is_declared_and_every_required_one_is_sent(
    case: dict[str, Any],
) -> None:
    required, declared = message_fields(ServerMessage(case["wire"]["type"]))
    assert required <= case["wire"].keys() <= declared


def test_the_cases_send_every_error_code_and_notice_kind() -> None:
    built = [case["input"] for case in CASES["server_messages"]]
    assert {b["code"] for b in built if "code" in b} == set(ErrorCode)
    assert {b["kind"] for b in built if "kind" in b} == set(NoticeKind)
    assert {case["wire"]["type"] for case in CASES["server_messages"]} == set(ServerMessage)


@pytest.mark.parametrize("case", _named("masks"))
def test_a_mask_encodes_to_its_wire_form(case: dict[str, Any]) -> None:
    wire = case["wire"]
    mask = Mask(wire["model"], wire["label"], wire["score"], box(wire), bitmap(case["rows"]))
    assert encode_mask(mask) == wire


@pytest.mark.parametrize("case", _named("masks"))
def test_a_wire_mask_decodes_to_its_bitmap(case: dict[str, Any]) -> None:
    mask = decode_mask(case["wire"])
    assert mask.bitmap.shape == (len(case["rows"]), len(case["rows"][0]))
    assert np.array_equal(mask.bitmap, bitmap(case["rows"]))
    assert (mask.model, mask.label, mask.score, list(mask.box)) == (
        case["wire"]["model"],
        case["wire"]["label"],
        case["wire"]["score"],
        case["wire"]["box"],
    )


@pytest.mark.parametrize("case", _named("bad_masks"))
def test_a_bad_wire_mask_is_refused_saying_what_is_wrong(case: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=case["reason"]):
        decode_mask(case["wire"])


@pytest.mark.parametrize("case", _named("requests"))
def test_the_engine_s_requests_are_understood(case: dict[str, Any]) -> None:
    assert parse_request(json.dumps(case["wire"])) == case["request"]
    required, declared = message_fields(ClientMessage(case["request"]))
    assert required <= case["wire"].keys() <= declared


@pytest.mark.parametrize("case", _named("bad_requests"))
def test_other_text_after_the_hello_is_a_bad_message(case: dict[str, Any]) -> None:
    with pytest.raises(BadMessageError) as caught:
        parse_request(case["text"])
    assert caught.value.code is ErrorCode.BAD_MESSAGE


def hello_text(case: dict[str, Any]) -> str:
    return str(case["text"]) if "text" in case else json.dumps(case["wire"])


def parse_and_choose(text: str) -> tuple[Hello, tuple[str, ...]]:
    """The hello checks the server makes before it asks who the user is."""
    hello = parse_hello(text)
    return hello, choose_models(hello.models, CASES["served_models"], CASES["default_models"])


@pytest.mark.parametrize(
    "case", [c for c in _named("hellos") if c.values[0]["close"] == CloseCode.BAD_HELLO]
)
def test_a_bad_hello_is_refused_by_the_parser(case: dict[str, Any]) -> None:
    """4400 is the parser's verdict (the socket maps `BadHelloError` to it)."""
    with pytest.raises(BadHelloError):
        parse_and_choose(hello_text(case))


@pytest.mark.parametrize(
    "case", [c for c in _named("hellos") if c.values[0]["close"] != CloseCode.BAD_HELLO]
)
def test_a_well_formed_hello_reaches_the_auth_step(case: dict[str, Any]) -> None:
    """Ready (close null) or 4401 is decided by the ticket or token, not by the parser; the
    models are chosen the same either way."""
    hello, chosen = parse_and_choose(hello_text(case))
    if case["close"] is None:
        assert (hello.ticket, hello.token) in (("<ticket>", None), (None, "<token>"))
        assert list(chosen) == case["models"]
    else:
        assert case["close"] == CloseCode.UNAUTHORIZED
        assert hello.ticket is None
        assert hello.token in (None, case["wire"].get("token"))


def test_the_hello_cases_fill_and_pass_max_models() -> None:
    longest = max(len(c["wire"].get("models") or []) for c in CASES["hellos"] if "wire" in c)
    assert longest == MAX_MODELS_IN_HELLO + 1


def test_every_close_code_has_a_case_and_a_reaction() -> None:
    listed = {case["code"] for case in CASES["closes"] if case.get("listed", True)}
    assert listed == set(CloseCode)
    assert {c["code"] for c in SPEC["close_codes"].values()} == set(CloseCode)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=str(c["code"])) for c in CASES["closes"] if c.get("listed", True)],
)
def test_the_protocol_says_what_each_close_code_means(case: dict[str, Any]) -> None:
    (entry,) = [e for e in SPEC["close_codes"].values() if e["code"] == case["code"]]
    assert entry["retry"] is case["retry"]
    assert re.search(case["words"], entry["message"], re.IGNORECASE)
