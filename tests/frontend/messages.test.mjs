import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { isTrusted, parseEngineCommand, parseEngineReport, sameStart } from "../../frontend/js/messages.js";

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
  const start = { type: "start", sessionId: "s1", models: ["text"] };
  const ticket = { type: "ticket", id: 3, ticket: "t.k.t", wsUrl: "wss://d1.example/ws/inference" };
  const ticketError = { type: "ticket-error", id: 3, status: 409, message: "ended" };

  test("start, stop, read-text, ticket and ticket-error", () => {
    assert.deepEqual(parseEngineCommand(start), start);
    assert.deepEqual(parseEngineCommand({ type: "stop", extra: 1 }), { type: "stop" });
    assert.deepEqual(parseEngineCommand({ type: "read-text", extra: 1 }), { type: "read-text" });
    assert.deepEqual(parseEngineCommand(ticket), ticket);
    assert.deepEqual(parseEngineCommand(ticketError), ticketError);
    assert.deepEqual(parseEngineCommand({ ...ticketError, message: 7 }), { ...ticketError, message: "" });
  });

  test("a start carries no sign-in token to the engine", () => {
    assert.deepEqual(parseEngineCommand({ ...start, token: "jwt" }), start);
  });

  for (const [name, data] of [
    ["not an object", "start"],
    ["null", null],
    ["unknown type", { type: "reboot" }],
    ["the protocol's spelling of read-text", { type: "read_text" }],
    ["empty session", { ...start, sessionId: "" }],
    ["no session", { type: "start", models: ["text"] }],
    ["models not a list", { ...start, models: "text" }],
    ["models with a number", { ...start, models: ["text", 3] }],
    ["ticket over http", { ...ticket, wsUrl: "http://127.0.0.1/ws" }],
    ["ticket to javascript", { ...ticket, wsUrl: "javascript:alert(1)" }],
    ["ticket to a relative URL", { ...ticket, wsUrl: "/ws/inference" }],
    ["empty ticket", { ...ticket, ticket: "" }],
    ["ticket without id", { ...ticket, id: undefined }],
    ["ticket with id 0", { ...ticket, id: 0 }],
    ["ticket-error without status", { ...ticketError, status: undefined }],
    ["ticket-error with a fractional status", { ...ticketError, status: 4.5 }],
  ]) {
    test(`rejects ${name}`, () => assert.equal(parseEngineCommand(data), null));
  }
});

describe("parseEngineReport", () => {
  const stats = { type: "stats", sent: 3, results: 2, rttMs: 41.5, dropped: 0, boxes: 1, masks: 2, timeouts: 0, errors: 0 };

  test("engine-ready, state, stats and ticket-request", () => {
    assert.deepEqual(parseEngineReport({ type: "engine-ready" }), { type: "engine-ready" });
    assert.deepEqual(parseEngineReport({ type: "ticket-request", id: 1, sessionId: "s1", x: 1 }), {
      type: "ticket-request",
      id: 1,
      sessionId: "s1",
    });
    assert.deepEqual(parseEngineReport({ type: "state", state: "streaming" }), { type: "state", state: "streaming", message: "" });
    assert.deepEqual(parseEngineReport(stats), stats);
    assert.deepEqual(parseEngineReport({ ...stats, rttMs: null }), { ...stats, rttMs: null });
  });

  test("stats from an engine that does not count masks drew none", () => {
    assert.deepEqual(parseEngineReport({ ...stats, masks: undefined }), { ...stats, masks: 0 });
  });

  for (const [name, data] of [
    ["unknown state", { type: "state", state: "dancing" }],
    ["negative count", { ...stats, sent: -1 }],
    ["fractional count", { ...stats, boxes: 1.5 }],
    ["negative masks", { ...stats, masks: -1 }],
    ["string masks", { ...stats, masks: "1" }],
    ["missing count", { ...stats, results: undefined }],
    ["string rtt", { ...stats, rttMs: "40" }],
    ["unknown type", { type: "start" }],
    ["array", [stats]],
    ["ticket-request without session", { type: "ticket-request", id: 1 }],
    ["ticket-request with a string id", { type: "ticket-request", id: "1", sessionId: "s1" }],
  ]) {
    test(`rejects ${name}`, () => assert.equal(parseEngineReport(data), null));
  }
});

describe("sameStart", () => {
  const a = { type: "start", sessionId: "s1", models: ["text", "ocr"] };
  for (const [name, b, same] of [
    ["identical", { ...a, models: ["text", "ocr"] }, true],
    ["other session", { ...a, sessionId: "s2" }, false],
    ["other models", { ...a, models: ["text"] }, false],
    ["stop", { type: "stop" }, false],
    ["null", null, false],
  ]) {
    test(name, () => assert.equal(sameStart(a, b), same));
  }
});
