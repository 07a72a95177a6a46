import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { isTrusted, parseEngineCommand, parseEngineReport, sameStart, sameStream } from "../../frontend/js/messages.js";

const parentWindow = { name: "parent" };
const otherWindow = { name: "other" };
const ORIGIN = "http://127.0.0.1:8000";

describe("isTrusted", () => {
  for (const [name, event, source, origin, trusted] of [
    ["expected window and origin", { source: parentWindow, origin: ORIGIN }, parentWindow, ORIGIN, true],
    ["another window, same origin", { source: otherWindow, origin: ORIGIN }, parentWindow, ORIGIN, false],
    ["expected window, other origin", { source: parentWindow, origin: "https://evil.example" }, parentWindow, ORIGIN, false],
    ["other port", { source: parentWindow, origin: "http://127.0.0.1:8001" }, parentWindow, ORIGIN, false],
    ["opaque origin", { source: parentWindow, origin: "null" }, parentWindow, "null", false],
    ["no expected window yet", { source: null, origin: ORIGIN }, null, ORIGIN, false],
  ]) {
    test(name, () => assert.equal(isTrusted(event, source, origin), trusted));
  }
});

describe("parseEngineCommand", () => {
  const start = { type: "start", wsUrl: "ws://127.0.0.1:8080/ws/inference", token: "t", models: ["text"] };

  test("start and stop", () => {
    assert.deepEqual(parseEngineCommand(start), start);
    assert.deepEqual(parseEngineCommand({ type: "stop", extra: 1 }), { type: "stop" });
  });

  for (const [name, data] of [
    ["not an object", "start"],
    ["null", null],
    ["unknown type", { type: "reboot" }],
    ["http URL", { ...start, wsUrl: "http://127.0.0.1/ws" }],
    ["javascript URL", { ...start, wsUrl: "javascript:alert(1)" }],
    ["relative URL", { ...start, wsUrl: "/ws/inference" }],
    ["empty token", { ...start, token: "" }],
    ["models not a list", { ...start, models: "text" }],
    ["models with a number", { ...start, models: ["text", 3] }],
  ]) {
    test(`rejects ${name}`, () => assert.equal(parseEngineCommand(data), null));
  }
});

describe("parseEngineReport", () => {
  const stats = { type: "stats", sent: 3, results: 2, rttMs: 41.5, dropped: 0, boxes: 1, timeouts: 0, errors: 0 };

  test("engine-ready, state and stats", () => {
    assert.deepEqual(parseEngineReport({ type: "engine-ready" }), { type: "engine-ready" });
    assert.deepEqual(parseEngineReport({ type: "state", state: "streaming" }), { type: "state", state: "streaming", message: "" });
    assert.deepEqual(parseEngineReport(stats), stats);
    assert.deepEqual(parseEngineReport({ ...stats, rttMs: null }), { ...stats, rttMs: null });
  });

  for (const [name, data] of [
    ["unknown state", { type: "state", state: "dancing" }],
    ["negative count", { ...stats, sent: -1 }],
    ["fractional count", { ...stats, boxes: 1.5 }],
    ["missing count", { ...stats, results: undefined }],
    ["string rtt", { ...stats, rttMs: "40" }],
    ["unknown type", { type: "start" }],
    ["array", [stats]],
  ]) {
    test(`rejects ${name}`, () => assert.equal(parseEngineReport(data), null));
  }
});

describe("sameStart", () => {
  const a = { type: "start", wsUrl: "ws://h/ws", token: "t", models: ["text", "ocr"] };
  for (const [name, b, same] of [
    ["identical", { ...a, models: ["text", "ocr"] }, true],
    ["other token", { ...a, token: "u" }, false],
    ["other URL", { ...a, wsUrl: "ws://x/ws" }, false],
    ["other models", { ...a, models: ["text"] }, false],
    ["stop", { type: "stop" }, false],
    ["null", null, false],
  ]) {
    test(name, () => assert.equal(sameStart(a, b), same));
  }
});

describe("sameStream", () => {
  const a = { type: "start", wsUrl: "ws://h/ws", token: "t", models: ["text", "ocr"] };
  for (const [name, b, same] of [
    ["a renewed token is the same stream", { ...a, token: "renewed" }, true],
    ["other URL", { ...a, wsUrl: "ws://x/ws" }, false],
    ["other models", { ...a, models: ["ocr", "text"] }, false],
    ["stop", { type: "stop" }, false],
    ["null", null, false],
  ]) {
    test(name, () => assert.equal(sameStream(a, b), same));
  }
});
