// The socket's tickets, handshake and reconnection logic, with an in-memory WebSocket (the
// browser's is not in Node 20), a ticket source and manual timers, so every close code and
// ticket answer can be played deterministically.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { beforeEach, describe, test } from "node:test";

import { createInferenceSocket } from "../../frontend/js/engine/socket.js";
import { manualTimers } from "./manual-timers.mjs";

// Every close code of the protocol with the reaction it must get (shared with the backend's tests).
const { closes: CLOSES } = JSON.parse(readFileSync(new URL("../contracts/protocol_cases.json", import.meta.url), "utf8"));

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

const TARGET = { sessionId: "s1", models: ["text"] };
const WS_URL = "ws://h/ws/inference";

/** Ticket requests the socket made; each is answered by grant() or refuse(), or left waiting. */
const tickets = () => {
  const asked = [];
  let issued = 0;
  return {
    asked,
    get: (target) =>
      new Promise((resolve, reject) => {
        asked.push({ target, resolve, reject });
      }),
    grant(index = asked.length - 1) {
      issued += 1;
      asked[index].resolve({ ticket: `tkt-${issued}`, wsUrl: WS_URL });
    },
    refuse(error, index = asked.length - 1) {
      asked[index].reject(error);
    },
  };
};

/** Lets promise callbacks (the ticket's) run. */
const settled = () => new Promise((resolve) => setImmediate(resolve));

let log;
let clock;
let ticketSource;
let socket;

beforeEach(() => {
  FakeSocket.all = [];
  log = [];
  clock = manualTimers();
  ticketSource = tickets();
  socket = createInferenceSocket(
    {
      onState: (state, message) => log.push(["state", state, message]),
      onReady: (ready) => log.push(["ready", ready.session]),
      onMessage: (m) => log.push(["message", m.type]),
      getTicket: ticketSource.get,
    },
    { WebSocketImpl: FakeSocket, timers: clock, random: () => 0 },
  );
});

const last = () => FakeSocket.all.at(-1);

/** open(), or a retry timer, then the ticket granted: the new socket exists. */
async function connectWithTicket(start = () => socket.open(TARGET)) {
  start();
  await settled();
  ticketSource.grant();
  await settled();
  return last();
}

describe("handshake", () => {
  test("asks for a ticket, then sends it in the hello, and is ready only after the server's ready", async () => {
    socket.open(TARGET);
    assert.deepEqual(log, [["state", "connecting", ""]]);
    assert.equal(FakeSocket.all.length, 0, "no socket before the ticket");
    await settled();
    assert.deepEqual(ticketSource.asked.map((a) => a.target), [TARGET]);
    ticketSource.grant();
    await settled();
    assert.equal(last().url, WS_URL, "the socket the ticket names");
    assert.equal(last().binaryType, "arraybuffer");
    last().accept();
    assert.deepEqual(JSON.parse(last().sent[0]), { type: "hello", ticket: "tkt-1", models: ["text"] });
    assert.equal(socket.ready, false);
    assert.equal(socket.send(new ArrayBuffer(1)), false);
    last().say({ type: "ready", session: "s1", models: ["text"], max_frame_bytes: 1000 });
    assert.equal(socket.ready, true);
    assert.equal(socket.send(new ArrayBuffer(1)), true);
    assert.deepEqual(log, [["state", "connecting", ""], ["ready", "s1"], ["state", "streaming", ""]]);
  });

  test("results, errors and bad JSON reach the streamer; the socket stays open", async () => {
    const ws = await connectWithTicket();
    ws.accept();
    ws.say({ type: "ready", session: "s1", models: [] });
    ws.say({ type: "result", frame_id: 0 });
    ws.say({ type: "error", code: "bad_frame", message: "x" });
    ws.say("{not json");
    assert.deepEqual(log.slice(3).map((e) => e[1]), ["result", "error", "invalid"]);
    assert.equal(ws.closedWith, null);
  });
});

describe("tickets", () => {
  test("every reconnection asks for a fresh ticket and never reuses one", async () => {
    const first = await connectWithTicket();
    first.accept();
    first.drop(1006);
    const second = await connectWithTicket(() => clock.fire());
    second.accept();
    assert.equal(ticketSource.asked.length, 2);
    assert.deepEqual(
      [first, second].map((ws) => JSON.parse(ws.sent[0]).ticket),
      ["tkt-1", "tkt-2"],
    );
  });

  test("a ticket refused for good (session ended, signed out) fails without a socket or a retry", async () => {
    socket.open(TARGET);
    await settled();
    ticketSource.refuse({ message: "This session has ended: press Start again.", retry: false });
    await settled();
    assert.deepEqual(log.at(-1), ["state", "failed", "This session has ended: press Start again."]);
    assert.equal(FakeSocket.all.length, 0);
    assert.equal(clock.pending.size, 0);
  });

  test("a ticket that did not come (network, 5xx) is asked for again after a backoff", async () => {
    socket.open(TARGET);
    await settled();
    ticketSource.refuse({ message: "No socket ticket from the control API.", retry: true });
    await settled();
    assert.equal(log.at(-1)[1], "reconnecting");
    assert.match(log.at(-1)[2], /No socket ticket.*Retrying in 1 s/);
    const ws = await connectWithTicket(() => clock.fire());
    assert.equal(ticketSource.asked.length, 2);
    assert.equal(ws.url, WS_URL);
  });

  test("a ticket granted after close() opens nothing", async () => {
    socket.open(TARGET);
    await settled();
    socket.close();
    ticketSource.grant();
    await settled();
    assert.equal(FakeSocket.all.length, 0);
    assert.deepEqual(log, [["state", "connecting", ""]]);
  });

  test("a ticket granted for a replaced target opens nothing; the new one's does", async () => {
    socket.open(TARGET);
    await settled();
    socket.open({ ...TARGET, models: ["ocr"] });
    await settled();
    ticketSource.grant(0);
    await settled();
    assert.equal(FakeSocket.all.length, 0);
    ticketSource.grant(1);
    await settled();
    last().accept();
    assert.deepEqual(JSON.parse(last().sent[0]), { type: "hello", ticket: "tkt-2", models: ["ocr"] });
  });

  test("a getTicket that throws is a retryable failure, not a crash", async () => {
    const throwing = createInferenceSocket(
      {
        onState: (state, message) => log.push(["state", state, message]),
        onReady: () => {},
        onMessage: () => {},
        getTicket: () => {
          throw new Error("no page");
        },
      },
      { WebSocketImpl: FakeSocket, timers: clock, random: () => 0 },
    );
    throwing.open(TARGET);
    await settled();
    assert.equal(log.at(-1)[1], "reconnecting");
    assert.match(log.at(-1)[2], /no page/);
  });
});

describe("closes", () => {
  for (const { code, words } of CLOSES.filter((c) => !c.retry)) {
    test(`${code} stops without retrying and shows why`, async () => {
      const ws = await connectWithTicket();
      ws.accept();
      ws.say({ type: "ready", session: "s1" });
      ws.drop(code, "the server's words");
      assert.equal(log.at(-1)[1], "failed");
      assert.match(log.at(-1)[2], new RegExp(words, "i"));
      assert.match(log.at(-1)[2], /the server's words/);
      assert.equal(clock.pending.size, 0);
      assert.equal(FakeSocket.all.length, 1);
      assert.equal(socket.ready, false);
    });
  }

  for (const { code, words } of CLOSES.filter((c) => c.retry)) {
    test(`${code} reconnects after a backoff that grows`, async () => {
      (await connectWithTicket()).drop(code);
      assert.equal(log.at(-1)[1], "reconnecting");
      assert.match(log.at(-1)[2], new RegExp(`${words}.* Retrying in 1 s\\.$`, "i"));
      const first = [...clock.pending.values()][0].ms;
      (await connectWithTicket(() => clock.fire())).drop(code);
      assert.equal(FakeSocket.all.length, 2);
      const second = [...clock.pending.values()][0].ms;
      assert.ok(second > first, `${second} should exceed ${first}`);
    });
  }

  test("a forbidden origin (4403) is not retried, however long one waits", async () => {
    (await connectWithTicket()).drop(4403);
    assert.equal(clock.pending.size, 0);
    assert.equal(FakeSocket.all.length, 1);
    assert.equal(log.at(-1)[1], "failed");
  });

  test("a successful handshake resets the backoff", async () => {
    (await connectWithTicket()).drop(1006);
    (await connectWithTicket(() => clock.fire())).drop(1006);
    const ws = await connectWithTicket(() => clock.fire());
    ws.accept();
    ws.say({ type: "ready" });
    ws.drop(1006);
    assert.equal([...clock.pending.values()][0].ms, 500); // attempt 0 of {baseMs 1000, jitter 0.5} with random 0
  });

  test("close() is quiet: no reconnect, no state change, pending retry cancelled", async () => {
    (await connectWithTicket()).drop(1006);
    assert.equal(clock.pending.size, 1);
    socket.close();
    assert.equal(clock.pending.size, 0);
    const before = log.length;
    const ws = await connectWithTicket();
    socket.close();
    assert.deepEqual(ws.closedWith, { code: 1000, reason: "client stopped" });
    ws.drop(1000);
    assert.equal(log.length, before + 1); // only the "connecting" of the second open
  });

  test("open() while connected replaces the socket and ignores the old one's messages", async () => {
    const old = await connectWithTicket();
    const next = await connectWithTicket(() => socket.open({ ...TARGET, models: ["ocr"] }));
    assert.equal(old.closedWith.code, 1000);
    old.say({ type: "ready" });
    assert.equal(socket.ready, false);
    next.accept();
    assert.deepEqual(JSON.parse(next.sent[0]).models, ["ocr"]);
  });
});

describe("read_text", () => {
  test("is sent only after the handshake, as the protocol's request", async () => {
    socket.open(TARGET);
    assert.equal(socket.readText(), false, "no socket yet");
    await settled();
    ticketSource.grant();
    await settled();
    last().accept();
    assert.equal(socket.readText(), false);
    last().say({ type: "ready", session: "s1" });
    assert.equal(socket.readText(), true);
    assert.deepEqual(JSON.parse(last().sent.at(-1)), { type: "read_text" });
  });

  test("is not sent while reconnecting", async () => {
    const ws = await connectWithTicket();
    ws.accept();
    ws.say({ type: "ready", session: "s1" });
    ws.drop(1006);
    assert.equal(socket.readText(), false);
  });
});

test("a notice reaches the streamer with its kind", async () => {
  const seen = [];
  const s = createInferenceSocket(
    { onState: () => {}, onReady: () => {}, onMessage: (m) => seen.push(m), getTicket: ticketSource.get },
    { WebSocketImpl: FakeSocket, timers: clock, random: () => 0 },
  );
  const ws = await connectWithTicket(() => s.open(TARGET));
  ws.accept();
  ws.say({ type: "ready", session: "s1" });
  ws.say({ type: "notice", kind: "shutdown", message: "The inference server is shutting down." });
  assert.deepEqual(seen, [{ type: "notice", kind: "shutdown", message: "The inference server is shutting down." }]);
});
