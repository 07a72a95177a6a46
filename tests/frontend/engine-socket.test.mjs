// The socket's handshake and reconnection logic, with an in-memory WebSocket (the browser's
// is not in Node 20) and manual timers, so every close code can be played deterministically.
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { createInferenceSocket } from "../../frontend/js/engine/socket.js";

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    FakeSocket.all.push(this);
  }
  send(data) {
    this.sent.push(data);
  }
  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  // server side
  accept() {
    this.readyState = 1;
    this.onopen?.();
  }
  say(obj) {
    this.onmessage?.({ data: typeof obj === "string" ? obj : JSON.stringify(obj) });
  }
  drop(code, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const timers = () => {
  const pending = new Map();
  let next = 1;
  return {
    setTimeout: (fn, ms) => {
      pending.set(next, { fn, ms });
      return next++;
    },
    clearTimeout: (id) => pending.delete(id),
    pending,
    fire() {
      const [id, { fn }] = pending.entries().next().value;
      pending.delete(id);
      fn();
    },
  };
};

const TARGET = { wsUrl: "ws://h/ws/inference", token: "tok", models: ["text"] };

let log;
let clock;
let socket;

beforeEach(() => {
  FakeSocket.all = [];
  log = [];
  clock = timers();
  socket = createInferenceSocket(
    {
      onState: (state, message) => log.push(["state", state, message]),
      onReady: (ready) => log.push(["ready", ready.session]),
      onMessage: (m) => log.push(["message", m.type]),
    },
    { WebSocketImpl: FakeSocket, timers: clock, random: () => 0 },
  );
});

const last = () => FakeSocket.all.at(-1);

describe("handshake", () => {
  test("sends hello first, and is ready only after the server's ready", () => {
    socket.open(TARGET);
    assert.equal(last().url, TARGET.wsUrl);
    assert.equal(last().binaryType, "arraybuffer");
    last().accept();
    assert.deepEqual(JSON.parse(last().sent[0]), { type: "hello", token: "tok", models: ["text"] });
    assert.equal(socket.ready, false);
    assert.equal(socket.send(new ArrayBuffer(1)), false);
    last().say({ type: "ready", session: "s1", models: ["text"], max_frame_bytes: 1000 });
    assert.equal(socket.ready, true);
    assert.equal(socket.send(new ArrayBuffer(1)), true);
    assert.deepEqual(log, [["state", "connecting", ""], ["ready", "s1"], ["state", "streaming", ""]]);
  });

  test("results, errors and bad JSON reach the streamer; the socket stays open", () => {
    socket.open(TARGET);
    last().accept();
    last().say({ type: "ready", session: "s1", models: [] });
    last().say({ type: "result", frame_id: 0 });
    last().say({ type: "error", code: "bad_frame", message: "x" });
    last().say("{not json");
    assert.deepEqual(log.slice(3).map((e) => e[1]), ["result", "error", "invalid"]);
    assert.equal(last().closedWith, null);
  });
});

describe("a renewed token", () => {
  test("is kept for the next hello; the open socket is not touched", () => {
    socket.open(TARGET);
    last().accept();
    last().say({ type: "ready", session: "s1" });
    socket.updateToken("renewed");
    assert.equal(FakeSocket.all.length, 1);
    assert.equal(last().closedWith, null);
    assert.equal(socket.ready, true);
    last().drop(1006);
    clock.fire();
    last().accept();
    assert.equal(JSON.parse(last().sent[0]).token, "renewed");
  });

  test("is ignored when the socket is closed", () => {
    socket.updateToken("renewed");
    assert.equal(FakeSocket.all.length, 0);
  });
});

describe("closes", () => {
  for (const [code, words] of [
    [4401, /sign in/i],
    [4400, /hello/],
    [4429, /too many/i],
  ]) {
    test(`${code} fails without retrying`, () => {
      socket.open(TARGET);
      last().drop(code);
      assert.equal(log.at(-1)[1], "failed");
      assert.match(log.at(-1)[2], words);
      assert.equal(clock.pending.size, 0);
    });
  }

  for (const code of [1001, 1006, 1011]) {
    test(`${code} reconnects after a backoff that grows`, () => {
      socket.open(TARGET);
      last().drop(code);
      assert.equal(log.at(-1)[1], "reconnecting");
      const first = [...clock.pending.values()][0].ms;
      clock.fire();
      assert.equal(FakeSocket.all.length, 2);
      last().drop(1006);
      const second = [...clock.pending.values()][0].ms;
      assert.ok(second > first, `${second} should exceed ${first}`);
    });
  }

  test("a successful handshake resets the backoff", () => {
    socket.open(TARGET);
    last().drop(1006);
    clock.fire();
    last().drop(1006);
    clock.fire();
    last().accept();
    last().say({ type: "ready" });
    last().drop(1006);
    assert.equal([...clock.pending.values()][0].ms, 500); // attempt 0 of {baseMs 1000, jitter 0.5} with random 0
  });

  test("close() is quiet: no reconnect, no state change, pending retry cancelled", () => {
    socket.open(TARGET);
    last().drop(1006);
    assert.equal(clock.pending.size, 1);
    socket.close();
    assert.equal(clock.pending.size, 0);
    const before = log.length;
    socket.open(TARGET);
    const ws = last();
    socket.close();
    assert.deepEqual(ws.closedWith, { code: 1000, reason: "client stopped" });
    ws.drop(1000);
    assert.equal(log.length, before + 1); // only the "connecting" of the second open
  });

  test("open() while connected replaces the socket and ignores the old one's messages", () => {
    socket.open(TARGET);
    const old = last();
    socket.open({ ...TARGET, models: ["ocr"] });
    assert.equal(old.closedWith.code, 1000);
    old.say({ type: "ready" });
    assert.equal(socket.ready, false);
    last().accept();
    assert.deepEqual(JSON.parse(last().sent[0]).models, ["ocr"]);
  });
});
