import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  HEADER_BYTES,
  decodeFrame,
  describeClose,
  encodeFrame,
  epochMicros,
  helloMessage,
  nextFrameId,
  parseServerMessage,
} from "../../frontend/js/protocol.js";

const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);

describe("encodeFrame", () => {
  test("writes the <4sIQ little-endian header then the JPEG bytes", () => {
    const buf = encodeFrame(0x01020304, 0x1122334455667788n, jpeg);
    const bytes = new Uint8Array(buf);
    assert.ok(buf instanceof ArrayBuffer);
    assert.equal(buf.byteLength, HEADER_BYTES + jpeg.length);
    assert.deepEqual([...bytes.subarray(0, 4)], [...Buffer.from("SPF1")]);
    assert.deepEqual([...bytes.subarray(4, 8)], [0x04, 0x03, 0x02, 0x01]);
    assert.deepEqual([...bytes.subarray(8, 16)], [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    assert.deepEqual([...bytes.subarray(16)], [...jpeg]);
  });

  test("matches Python's struct.pack('<4sIQ', b'SPF1', 7, 1700000000123456)", () => {
    // Bytes taken from CPython: struct.pack("<4sIQ", b"SPF1", 7, 1700000000123456).hex()
    const expected = "535046310700000040222018240a0600";
    const header = Buffer.from(encodeFrame(7, 1700000000123456n, new Uint8Array())).toString("hex");
    assert.equal(header, expected);
  });

  for (const [name, frameId, captureUs] of [
    ["zero", 0, 0n],
    ["largest uint32 frame id", 2 ** 32 - 1, 1n],
    ["capture time beyond 2^53", 5, 2n ** 53n + 1n],
    ["largest uint64 capture time", 9, 2n ** 64n - 1n],
    ["safe-integer Number capture time", 3, 1_700_000_000_000_000],
  ]) {
    test(`round-trips: ${name}`, () => {
      const decoded = decodeFrame(encodeFrame(frameId, captureUs, jpeg));
      assert.equal(decoded.frameId, frameId);
      assert.equal(decoded.captureUs, BigInt(captureUs));
      assert.deepEqual([...decoded.jpeg], [...jpeg]);
    });
  }

  test("accepts an ArrayBuffer and a typed-array view of a larger buffer", () => {
    const big = new Uint8Array([9, 9, ...jpeg, 9]);
    const view = big.subarray(2, 2 + jpeg.length);
    assert.deepEqual([...decodeFrame(encodeFrame(1, 1n, view)).jpeg], [...jpeg]);
    assert.deepEqual([...decodeFrame(encodeFrame(1, 1n, jpeg.slice().buffer)).jpeg], [...jpeg]);
  });

  for (const [name, frameId, captureUs, error] of [
    ["negative frame id", -1, 0n, RangeError],
    ["frame id of 2^32", 2 ** 32, 0n, RangeError],
    ["fractional frame id", 1.5, 0n, RangeError],
    ["negative capture time", 0, -1n, RangeError],
    ["capture time of 2^64", 0, 2n ** 64n, RangeError],
    ["unsafe Number capture time", 0, 2 ** 53 + 2, RangeError],
    ["fractional capture time", 0, 1.5, RangeError],
  ]) {
    test(`rejects ${name}`, () => {
      assert.throws(() => encodeFrame(frameId, captureUs, jpeg), error);
    });
  }

  test("rejects a JPEG that is not bytes", () => {
    assert.throws(() => encodeFrame(0, 0n, "not bytes"), TypeError);
  });
});

describe("decodeFrame", () => {
  test("rejects a short buffer and a wrong magic", () => {
    assert.throws(() => decodeFrame(new Uint8Array(15)), /header/);
    const bad = new Uint8Array(encodeFrame(1, 1n, jpeg));
    bad[0] = "X".charCodeAt(0);
    assert.throws(() => decodeFrame(bad), /magic/);
  });
});

describe("nextFrameId", () => {
  for (const [id, next] of [
    [0, 1],
    [41, 42],
    [2 ** 32 - 2, 2 ** 32 - 1],
    [2 ** 32 - 1, 0],
  ]) {
    test(`${id} → ${next}`, () => assert.equal(nextFrameId(id), next));
  }
});

test("epochMicros adds the time origin and keeps microseconds", () => {
  assert.equal(epochMicros(1_700_000_000_000, 1.234), 1_700_000_000_001_234n);
});

test("helloMessage carries a socket ticket", () => {
  assert.deepEqual(JSON.parse(helloMessage("tkt", ["text", "ocr"])), {
    type: "hello",
    ticket: "tkt",
    models: ["text", "ocr"],
  });
});

describe("parseServerMessage", () => {
  test("parses a full result", () => {
    const msg = parseServerMessage(
      JSON.stringify({
        type: "result",
        frame_id: 12,
        capture_us: 1700000000123456,
        detections: [{ model: "detect", label: "person", score: 0.9, box: [0.1, 0.2, 0.3, 0.4] }],
        keypoints: [{ model: "pose", points: [[0.5, 0.5, 0.9], [0.6, 0.6]] }],
        texts: [{ model: "ocr", text: "EXIT", box: [0, 0, 0.1, 0.1], score: 0.8 }],
        timing_ms: { infer: 12.5 },
        dropped: 3,
      }),
    );
    assert.equal(msg.type, "result");
    assert.equal(msg.frameId, 12);
    assert.equal(msg.captureUs, 1700000000123456);
    assert.deepEqual(msg.detections, [{ model: "detect", label: "person", score: 0.9, box: [0.1, 0.2, 0.3, 0.4] }]);
    assert.deepEqual(msg.keypoints, [{ model: "pose", points: [[0.5, 0.5, 0.9], [0.6, 0.6, 1]] }]);
    assert.deepEqual(msg.texts, [{ model: "ocr", text: "EXIT", score: 0.8, box: [0, 0, 0.1, 0.1] }]);
    assert.deepEqual(msg.timingMs, { infer: 12.5 });
    assert.equal(msg.dropped, 3);
  });

  test("a result without optional lists has empty lists", () => {
    const msg = parseServerMessage('{"type":"result","frame_id":1}');
    assert.deepEqual([msg.detections, msg.keypoints, msg.texts, msg.dropped], [[], [], [], 0]);
  });

  test("parses ready, error and notice", () => {
    assert.deepEqual(parseServerMessage('{"type":"ready","session":"s1","models":["text"],"max_frame_bytes":65536}'), {
      type: "ready",
      session: "s1",
      models: ["text"],
      maxFrameBytes: 65536,
    });
    assert.deepEqual(parseServerMessage('{"type":"error","code":"bad_frame","message":"not a JPEG"}'), {
      type: "error",
      code: "bad_frame",
      message: "not a JPEG",
      frameId: null,
    });
    assert.deepEqual(parseServerMessage('{"type":"notice","kind":"shutdown","message":"shutting down"}'), {
      type: "notice",
      kind: "shutdown",
      message: "shutting down",
    });
  });

  test("an unknown type is reported, not an error (the protocol may grow)", () => {
    assert.deepEqual(parseServerMessage('{"type":"metrics","x":1}'), { type: "unknown", serverType: "metrics" });
  });

  for (const [name, text, reason] of [
    ["not JSON", "{nope", /not JSON/],
    ["empty text", "", /not JSON/],
    ["a JSON array", "[1,2]", /type/],
    ["a JSON string", '"result"', /type/],
    ["no type", '{"frame_id":1}', /type/],
    ["result without frame_id", '{"type":"result"}', /frame_id/],
    ["box with 3 numbers", '{"type":"result","frame_id":1,"detections":[{"model":"d","label":"l","score":1,"box":[0,0,1]}]}', /detections\[0\]\.box/],
    ["box with a string", '{"type":"result","frame_id":1,"texts":[{"model":"o","text":"t","box":[0,0,1,"1"]}]}', /texts\[0\]\.box/],
    ["detections not a list", '{"type":"result","frame_id":1,"detections":{}}', /detections: expected a list/],
    ["detection without label", '{"type":"result","frame_id":1,"detections":[{"model":"d","score":1,"box":[0,0,1,1]}]}', /label/],
    ["keypoint not a triple", '{"type":"result","frame_id":1,"keypoints":[{"model":"pose","points":[[0.1]]}]}', /points\[0\]/],
  ]) {
    test(`bad message → invalid, not a throw: ${name}`, () => {
      const msg = parseServerMessage(text);
      assert.equal(msg.type, "invalid");
      assert.match(msg.reason, reason);
    });
  }

  test("an invalid result keeps its frame id so the sender can release the frame", () => {
    const msg = parseServerMessage('{"type":"result","frame_id":77,"detections":[null]}');
    assert.equal(msg.type, "invalid");
    assert.equal(msg.frameId, 77);
  });
});

describe("describeClose", () => {
  // Every listed code's reaction is a shared case: tests/frontend/protocol-contract.test.mjs.
  test("names the close code as protocol.json does", () => {
    assert.equal(describeClose(4403).name, "forbidden_origin");
    assert.equal(describeClose(4999).name, "unknown");
  });

  test("appends the server's reason", () => {
    assert.match(describeClose(4401, "token expired").message, /\(token expired\)$/);
  });
});
