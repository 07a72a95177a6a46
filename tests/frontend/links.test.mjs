// Both ends of the postMessage channel, with minimal window stand-ins: who may talk to whom,
// and to which targetOrigin replies go.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { connectToParent } from "../../frontend/js/engine/parent-link.js";
import { createEngineLink } from "../../frontend/js/ui/engine-link.js";

const ORIGIN = "http://127.0.0.1:8000";

function fakeWindow(name) {
  const listeners = [];
  const win = {
    name,
    location: { origin: ORIGIN },
    posted: [],
    addEventListener: (type, fn) => type === "message" && listeners.push(fn),
    postMessage: (data, targetOrigin) => win.posted.push({ data, targetOrigin }),
    deliver: (event) => listeners.forEach((fn) => fn(event)),
  };
  win.parent = win;
  return win;
}

const START = { type: "start", sessionId: "s1", models: ["text"] };

describe("engine side: connectToParent", () => {
  const setup = () => {
    const top = fakeWindow("top");
    const engine = fakeWindow("engine");
    engine.parent = top;
    const commands = [];
    const link = connectToParent(engine, (c) => commands.push(c));
    return { top, engine, commands, link };
  };

  test("a command from the parent on our origin is accepted", () => {
    const { top, engine, commands } = setup();
    engine.deliver({ source: top, origin: ORIGIN, data: START });
    assert.deepEqual(commands, [START]);
  });

  for (const [name, event] of [
    ["another origin", (top) => ({ source: top, origin: "https://evil.example", data: START })],
    ["another window", () => ({ source: fakeWindow("popup"), origin: ORIGIN, data: START })],
    ["an invalid command", (top) => ({ source: top, origin: ORIGIN, data: { type: "start", sessionId: 1 } })],
    [
      "a ticket from another origin",
      (top) => ({ source: top, origin: "https://evil.example", data: { type: "ticket", id: 1, ticket: "t", wsUrl: "wss://e/ws" } }),
    ],
  ]) {
    test(`ignores ${name}`, () => {
      const { top, engine, commands } = setup();
      engine.deliver(event(top));
      assert.deepEqual(commands, []);
    });
  }

  test("reports go to the parent with our origin as targetOrigin, never '*'", () => {
    const { top, link } = setup();
    link.post({ type: "engine-ready" });
    assert.deepEqual(top.posted, [{ data: { type: "engine-ready" }, targetOrigin: ORIGIN }]);
  });

  test("not embedded: no link", () => {
    assert.equal(connectToParent(fakeWindow("alone"), () => {}), null);
  });
});

describe("UI side: createEngineLink", () => {
  const setup = () => {
    const top = fakeWindow("top");
    const frameWin = fakeWindow("engine");
    const iframe = { dataset: { src: "engine.html" }, src: "", contentWindow: frameWin };
    const reports = [];
    const link = createEngineLink(top, iframe, (r) => reports.push(r));
    const fromEngine = (data, origin = ORIGIN, source = frameWin) => top.deliver({ source, origin, data });
    return { top, frameWin, iframe, reports, link, fromEngine };
  };

  test("loads the engine only once it listens", () => {
    assert.equal(setup().iframe.src, "engine.html");
  });

  test("holds the newest command until the engine is ready, then sends it once", () => {
    const { frameWin, link, fromEngine } = setup();
    link.command({ type: "stop" });
    link.command(START);
    assert.deepEqual(frameWin.posted, []);
    fromEngine({ type: "engine-ready" });
    assert.deepEqual(frameWin.posted, [{ data: START, targetOrigin: ORIGIN }]);
    link.command({ ...START, models: ["text"] });
    assert.equal(frameWin.posted.length, 1, "an unchanged command is not repeated");
    link.command({ type: "stop" });
    link.command({ type: "stop" });
    assert.deepEqual(frameWin.posted.map((p) => p.data.type), ["start", "stop"]);
  });

  test("a reloaded engine gets the current command again", () => {
    const { frameWin, link, fromEngine } = setup();
    fromEngine({ type: "engine-ready" });
    link.command(START);
    fromEngine({ type: "engine-ready" });
    assert.deepEqual(frameWin.posted.map((p) => p.data.type), ["stop", "start", "start"]);
  });

  test("retry re-sends an unchanged command", () => {
    const { frameWin, link, fromEngine } = setup();
    fromEngine({ type: "engine-ready" });
    link.command(START);
    link.retry();
    assert.deepEqual(frameWin.posted.map((p) => p.data.type), ["stop", "start", "start"]);
  });

  test("a request goes at once to a ready engine, and is dropped before", () => {
    const { frameWin, link, fromEngine } = setup();
    assert.equal(link.post({ type: "read-text" }), false);
    assert.deepEqual(frameWin.posted, []);
    fromEngine({ type: "engine-ready" });
    link.command(START);
    assert.equal(link.post({ type: "read-text" }), true);
    assert.deepEqual(frameWin.posted.at(-1), { data: { type: "read-text" }, targetOrigin: ORIGIN });
    link.command(START);
    assert.deepEqual(frameWin.posted.map((p) => p.data.type), ["stop", "start", "read-text"], "the command is still the one delivered");
  });

  test("answers go to the engine at once, with our origin, not held like commands", () => {
    const { frameWin, link, fromEngine, reports } = setup();
    link.post({ type: "ticket", id: 1, ticket: "t", wsUrl: "wss://h/ws" });
    assert.deepEqual(frameWin.posted, [], "no engine yet, nobody asked");
    fromEngine({ type: "engine-ready" });
    fromEngine({ type: "ticket-request", id: 2, sessionId: "s1" });
    assert.deepEqual(reports.at(-1), { type: "ticket-request", id: 2, sessionId: "s1" });
    link.post({ type: "ticket", id: 2, ticket: "t", wsUrl: "wss://h/ws" });
    link.post({ type: "ticket", id: 3, ticket: "u", wsUrl: "wss://h/ws" });
    assert.deepEqual(
      frameWin.posted.map((p) => [p.data.type, p.data.id, p.targetOrigin]),
      [["stop", undefined, ORIGIN], ["ticket", 2, ORIGIN], ["ticket", 3, ORIGIN]],
    );
  });

  test("relays valid reports from the iframe only", () => {
    const { reports, fromEngine } = setup();
    const stats = { type: "stats", sent: 1, results: 1, rttMs: 20, dropped: 0, boxes: 3, masks: 1, timeouts: 0, errors: 0 };
    fromEngine(stats);
    fromEngine(stats, "https://evil.example");
    fromEngine(stats, ORIGIN, fakeWindow("other"));
    fromEngine({ type: "stats", sent: "many" });
    assert.deepEqual(reports, [stats]);
  });
});
