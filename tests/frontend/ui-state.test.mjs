import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  StatusError,
  deriveView,
  engineCommand,
  initialState,
  parseStatus,
  pollDelayMs,
  reduce,
  retryEngine,
} from "../../frontend/js/ui/state.js";

const PAGE = "http://127.0.0.1:8000/";
const WS = "ws://127.0.0.1:8080/ws/inference";

const status = (phase, extra = {}) =>
  parseStatus({ phase, instance_state: "running", ws_url: WS, eta_s: null, stop_at: null, message: "", sessions: 1, ...extra }, PAGE);

/** Applies events in order at the given times: [[event, nowMs], ...]. */
const run = (state, steps) => steps.reduce((s, [event, now]) => reduce(s, event, now), state);

const fresh = (extra = {}) => initialState({ models: ["text"], ...extra });

describe("parseStatus", () => {
  test("reads every field", () => {
    assert.deepEqual(
      parseStatus(
        { phase: "booting", instance_state: "running", ws_url: "/ws/inference", eta_s: 90, stop_at: 1_700_000_000, message: "Loading models", sessions: 2 },
        "https://cdn.example/",
      ),
      {
        phase: "booting",
        instanceState: "running",
        wsUrl: "wss://cdn.example/ws/inference",
        etaS: 90,
        stopAtMs: 1_700_000_000_000,
        message: "Loading models",
        sessions: 2,
      },
    );
  });

  test("missing optional fields become null or empty", () => {
    assert.deepEqual(parseStatus({ phase: "stopped" }, PAGE), {
      phase: "stopped",
      instanceState: null,
      wsUrl: null,
      etaS: null,
      stopAtMs: null,
      message: "",
      sessions: null,
    });
  });

  test("an unusable ws_url falls back to null (the config's URL is used)", () => {
    assert.equal(parseStatus({ phase: "ready", ws_url: "ftp://x" }, PAGE).wsUrl, null);
  });

  for (const [name, json] of [
    ["null", null],
    ["no phase", { message: "x" }],
    ["phase not a string", { phase: 3 }],
  ]) {
    test(`rejects ${name}`, () => assert.throws(() => parseStatus(json, PAGE), StatusError));
  }
});

describe("Start and Stop availability", () => {
  for (const [phase, hasSession, startDisabled, stopDisabled] of [
    ["stopped", false, false, true],
    ["stopped", true, false, false],
    ["starting", false, false, true],
    ["starting", true, true, false],
    ["booting", true, true, false],
    ["ready", true, true, false],
    ["ready", false, false, true], // someone else started it: joining is a Start
    ["stopping", true, false, false], // start while stopping is recorded and honoured
    ["error", true, false, false],
  ]) {
    test(`${phase}, ${hasSession ? "with" : "without"} a session: start ${startDisabled ? "off" : "on"}, stop ${stopDisabled ? "off" : "on"}`, () => {
      const state = reduce(fresh({ sessionId: hasSession ? "s1" : null }), { type: "status", status: status(phase) }, 0);
      const view = deriveView(state, 0);
      assert.equal(view.startDisabled, startDisabled);
      assert.equal(view.stopDisabled, stopDisabled);
      assert.equal(view.phase, phase);
    });
  }

  test("both disabled before the first status, while a request is out, and when signed out", () => {
    assert.equal(deriveView(fresh(), 0).startDisabled, true);
    const known = reduce(fresh({ sessionId: "s1" }), { type: "status", status: status("stopped") }, 0);
    const busy = reduce(known, { type: "busy", action: "start" }, 0);
    assert.deepEqual([deriveView(busy, 0).startDisabled, deriveView(busy, 0).stopDisabled], [true, true]);
    const out = reduce(known, { type: "signed-out" }, 0);
    assert.deepEqual([deriveView(out, 0).startDisabled, deriveView(out, 0).stopDisabled], [true, true]);
  });

  test("after an engine failure, Start is on again and means retry, not a new session", () => {
    const ready = reduce(fresh({ sessionId: "s1" }), { type: "status", status: status("ready") }, 0);
    const failed = reduce(ready, { type: "engine-state", state: "failed", message: "Camera access was denied." }, 0);
    assert.equal(deriveView(failed, 0).startDisabled, false);
    assert.equal(retryEngine(failed), true);
    const retried = reduce(failed, { type: "engine-retry" }, 0);
    assert.equal(retryEngine(retried), false);
    assert.equal(deriveView(retried, 0).startDisabled, true);
    assert.equal(deriveView(retried, 0).error, null);
  });

  test("no model selected: nothing to start", () => {
    const s = run(fresh(), [[{ type: "status", status: status("stopped") }, 0], [{ type: "models", models: [] }, 0]]);
    assert.equal(deriveView(s, 0).startDisabled, true);
  });
});

describe("status line, ETA and elapsed time", () => {
  test("starting → booting keeps counting from the first start phase", () => {
    const s = run(fresh({ sessionId: "s" }), [
      [{ type: "status", status: status("starting", { eta_s: 180 }) }, 1_000],
      [{ type: "status", status: status("booting", { eta_s: 120 }) }, 31_000],
    ]);
    assert.equal(deriveView(s, 46_000).statusText, "GPU booting… ~2 min · 0:45 elapsed");
  });

  test("the session-created answer moves the phase before the next poll", () => {
    const s = run(fresh(), [
      [{ type: "status", status: status("stopped") }, 0],
      [{ type: "busy", action: "start" }, 0],
      [{ type: "session-created", sessionId: "s9", phase: "starting" }, 100],
    ]);
    assert.equal(s.sessionId, "s9");
    assert.equal(deriveView(s, 2100).statusText, "Starting GPU… · 0:02 elapsed");
  });
});

describe("idle countdown", () => {
  test("shown with a Keep running button when stop_at is set", () => {
    const s = reduce(fresh({ sessionId: "s" }), { type: "status", status: status("ready", { stop_at: 100 }) }, 0);
    assert.deepEqual(deriveView(s, 40_000).idle, { text: "Idle: the GPU stops in 1:00 unless it is used.", canKeepAlive: true });
  });
  test("without a session the button is off", () => {
    const s = reduce(fresh(), { type: "status", status: status("ready", { stop_at: 100 }) }, 0);
    assert.equal(deriveView(s, 0).idle.canKeepAlive, false);
  });
  test("hidden when no stop is scheduled, or once the GPU is stopping", () => {
    assert.equal(deriveView(reduce(fresh(), { type: "status", status: status("ready") }, 0), 0).idle, null);
    assert.equal(deriveView(reduce(fresh(), { type: "status", status: status("stopping", { stop_at: 100 }) }, 0), 0).idle, null);
  });
});

describe("messages and errors", () => {
  test("the server's message is shown", () => {
    const s = reduce(fresh(), { type: "status", status: status("error", { message: "No capacity for g5.xlarge" }) }, 0);
    assert.equal(deriveView(s, 0).message, "No capacity for g5.xlarge");
  });

  test("a failed poll says so and clears on the next success", () => {
    let s = reduce(fresh(), { type: "status-failed", status: 0, message: "Cannot reach the control API." }, 0);
    assert.equal(deriveView(s, 0).message, "Cannot reach the control API. Retrying…");
    s = reduce(s, { type: "status", status: status("stopped") }, 1);
    assert.deepEqual([s.pollFailures, deriveView(s, 1).message], [0, ""]);
  });

  test("a 401 poll means signed out", () => {
    const s = reduce(fresh(), { type: "status-failed", status: 401, message: "Sign in required" }, 0);
    assert.equal(deriveView(s, 0).message, "Sign in required.");
  });

  test("Sign in shows only when signed out and the source can sign in; Sign out the reverse", () => {
    const codeFlow = reduce(fresh(), { type: "sign-in-options", canSignIn: true, canSignOut: true }, 0);
    const view = (s) => [deriveView(s, 0).signIn, deriveView(s, 0).signOut];
    assert.deepEqual(view(codeFlow), [false, true]);
    assert.deepEqual(view(reduce(codeFlow, { type: "signed-out" }, 0)), [true, false]);
    const dev = reduce(fresh(), { type: "sign-in-options", canSignIn: false, canSignOut: false }, 0);
    assert.deepEqual(view(dev), [false, false]);
    assert.deepEqual(view(reduce(dev, { type: "signed-out" }, 0)), [false, false]);
  });

  test("why the user was signed out is the message, until signed in again", () => {
    const out = reduce(fresh(), { type: "signed-out", message: "Your sign-in could not be renewed (x). Sign in again." }, 0);
    assert.equal(deriveView(out, 0).message, "Your sign-in could not be renewed (x). Sign in again.");
    assert.equal(deriveView(reduce(out, { type: "signed-in" }, 0), 0).message, "");
    assert.equal(deriveView(reduce(out, { type: "status", status: status("stopped") }, 0), 0).message, "");
    assert.equal(deriveView(reduce(fresh(), { type: "signed-out", message: "" }, 0), 0).message, "Sign in required.");
  });

  test("an engine failure is shown as an error; an action error comes first", () => {
    const failed = reduce(fresh(), { type: "engine-state", state: "failed", message: "Camera access was denied." }, 0);
    assert.equal(deriveView(failed, 0).error, "Camera access was denied.");
    const both = reduce(failed, { type: "action-failed", action: "stop", status: 500, message: "Boom" }, 0);
    assert.equal(deriveView(both, 0).error, "Boom");
    const recovered = reduce(failed, { type: "engine-state", state: "streaming", message: "" }, 0);
    assert.equal(deriveView(recovered, 0).error, null);
  });

  test("an action's 4xx detail is the error shown", () => {
    const s = run(fresh(), [
      [{ type: "busy", action: "start" }, 0],
      [{ type: "action-failed", action: "start", status: 429, message: "Daily GPU budget used up" }, 0],
    ]);
    assert.equal(deriveView(s, 0).error, "Daily GPU budget used up");
    assert.equal(s.busy, null);
  });

  test("a 404 on Stop or Keep running forgets the session", () => {
    for (const action of ["stop", "keepalive"]) {
      const s = reduce(fresh({ sessionId: "gone" }), { type: "action-failed", action, status: 404, message: "Not found" }, 0);
      assert.equal(s.sessionId, null);
      assert.equal(s.error, null);
    }
  });

  test("a 404 on Start is an error, and keeps nothing", () => {
    const s = reduce(fresh(), { type: "action-failed", action: "start", status: 404, message: "Not found" }, 0);
    assert.equal(s.error, "Not found");
  });
});

describe("engineCommand", () => {
  const ready = (extra = {}) => reduce(fresh({ sessionId: "s", ...extra }), { type: "status", status: status("ready") }, 0);

  test("streams while this tab holds a session on a ready GPU; no token goes to the engine", () => {
    assert.deepEqual(engineCommand(ready()), { type: "start", sessionId: "s", models: ["text"] });
  });

  test("the socket URL comes with each ticket, not with the command", () => {
    const s = reduce(fresh({ sessionId: "s" }), { type: "status", status: parseStatus({ phase: "ready" }, PAGE) }, 0);
    assert.deepEqual(engineCommand(s), { type: "start", sessionId: "s", models: ["text"] });
  });

  for (const [name, state] of [
    ["no session", reduce(fresh(), { type: "status", status: status("ready") }, 0)],
    ["booting", reduce(fresh({ sessionId: "s" }), { type: "status", status: status("booting") }, 0)],
    ["no models", reduce(ready(), { type: "models", models: [] }, 0)],
    ["signed out", reduce(ready(), { type: "signed-out" }, 0)],
    ["released", reduce(ready(), { type: "session-released" }, 0)],
  ]) {
    test(`stops: ${name}`, () => assert.deepEqual(engineCommand(state), { type: "stop" }));
  }
});

describe("pollDelayMs", () => {
  const withPhase = (phase) => reduce(fresh(), { type: "status", status: status(phase) }, 0);
  const failing = (n) => Array.from({ length: n }).reduce((s) => reduce(s, { type: "status-failed", status: 0, message: "x" }, 0), withPhase("ready"));

  for (const [name, state, hidden, expected] of [
    ["ready", withPhase("ready"), false, 2000],
    ["booting polls faster", withPhase("booting"), false, 1000],
    ["hidden tab polls slowly", withPhase("booting"), true, 10_000],
    ["before any status", fresh(), false, 2000],
  ]) {
    test(name, () => assert.equal(pollDelayMs(state, { hidden, random: () => 0.5 }), expected));
  }

  test("backs off exponentially with jitter after failures, capped at 30 s", () => {
    const lo = (n) => pollDelayMs(failing(n), { random: () => 0 });
    const hi = (n) => pollDelayMs(failing(n), { random: () => 0.999999 });
    assert.deepEqual([lo(1), lo(2), lo(3)], [1000, 2000, 4000]);
    assert.ok(hi(1) < 2000 && hi(1) > 1999);
    assert.ok(hi(20) <= 30_000 && lo(20) === 15_000);
  });
});

test("engine reports are kept for the view", () => {
  const stats = { type: "stats", sent: 5, results: 4, rttMs: 33, dropped: 0, boxes: 2, timeouts: 0, errors: 0 };
  const s = run(fresh(), [
    [{ type: "engine-ready" }, 0],
    [{ type: "engine-state", state: "streaming", message: "" }, 0],
    [{ type: "engine-stats", stats }, 0],
  ]);
  const view = deriveView(s, 0);
  assert.deepEqual(view.engine, { state: "streaming", message: "" });
  assert.equal(view.stats.boxes, 2);
  assert.equal(s.engineReady, true);
});

test("an unknown event leaves the state unchanged", () => {
  const s = fresh();
  assert.equal(reduce(s, { type: "nonsense" }, 0), s);
});

describe("Read text", () => {
  const streaming = (models) =>
    run(fresh({ models }), [[{ type: "engine-state", state: "streaming", message: "" }, 0]]);

  for (const [name, models, engine, expected] of [
    ["hidden without a text-reading model", ["detect", "text"], "streaming", null],
    ["shown with ocr, usable while streaming", ["detect", "ocr"], "streaming", { enabled: true }],
    ["shown with ocr, not usable before the stream", ["ocr"], "connecting", { enabled: false }],
    ["shown with ocr, not usable while reconnecting", ["ocr"], "reconnecting", { enabled: false }],
  ]) {
    test(name, () => {
      const s = reduce(streaming(models), { type: "engine-state", state: engine, message: "" }, 0);
      assert.deepEqual(deriveView(s, 0).readText, expected);
    });
  }

  test("follows the chosen models", () => {
    const s = reduce(streaming(["detect"]), { type: "models", models: ["detect", "ocr"] }, 0);
    assert.deepEqual(deriveView(s, 0).readText, { enabled: true });
  });
});
