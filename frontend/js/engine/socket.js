// The inference WebSocket: a fresh socket ticket per connection, hello/ready handshake, message
// parsing, and reconnection with backoff after a close that protocol.json says may heal (its
// `retry`); any other close stops with the user-facing message. Frames are sent by the
// streamer through send().

import { backoffDelay } from "../backoff.js";
import { describeClose, helloMessage, parseServerMessage, readTextMessage } from "../protocol.js";

export const RECONNECT_BACKOFF = Object.freeze({ baseMs: 1000, maxMs: 30_000 });
const OPEN = 1;

/**
 * hooks: {onState(state, message), onReady(readyMessage), onMessage(parsedMessage),
 *         getTicket(target) → Promise<{ticket, wsUrl}> (rejects with {message, retry})}.
 * States reported: "connecting", "streaming", "reconnecting", "failed".
 */
export function createInferenceSocket(hooks, { WebSocketImpl = WebSocket, timers = globalThis, random = Math.random } = {}) {
  let target = null; // {sessionId, models}
  let ws = null;
  let ready = false;
  let attempts = 0;
  let retryTimer = null;
  let connection = 0; // bumped by every connect and close: a late ticket knows it is stale

  function connect() {
    retryTimer = null;
    connection += 1;
    const mine = connection;
    ready = false;
    hooks.onState("connecting", "");
    // A ticket is single-use and lives seconds: ask for one per connection, never reuse it.
    new Promise((resolve) => resolve(hooks.getTicket(target))).then(
      (granted) => {
        if (mine === connection) openSocket(granted);
      },
      (err) => {
        if (mine !== connection) return;
        if (err?.retry === false) hooks.onState("failed", err.message);
        else retryLater(err?.message ?? "No socket ticket.");
      },
    );
  }

  function retryLater(message) {
    const delay = backoffDelay(attempts, RECONNECT_BACKOFF, random);
    attempts += 1;
    hooks.onState("reconnecting", `${message} Retrying in ${Math.ceil(delay / 1000)} s.`);
    retryTimer = timers.setTimeout(connect, delay);
  }

  function openSocket({ ticket, wsUrl }) {
    const socket = new WebSocketImpl(wsUrl);
    socket.binaryType = "arraybuffer";
    ws = socket;
    const { models } = target;

    socket.onopen = () => socket.send(helloMessage(ticket, models));
    socket.onmessage = (event) => {
      // Messages of a socket we already replaced are history.
      if (socket !== ws || typeof event.data !== "string") return;
      const message = parseServerMessage(event.data);
      if (!ready && message.type === "ready") {
        ready = true;
        attempts = 0;
        hooks.onReady(message);
        hooks.onState("streaming", "");
        return;
      }
      hooks.onMessage(message);
    };
    // An error event is always followed by a close event, which carries the code.
    socket.onerror = () => {};
    socket.onclose = (event) => {
      if (socket !== ws) return; // closed on purpose by close() or open()
      ws = null;
      ready = false;
      const why = describeClose(event.code, event.reason);
      if (!why.retry) {
        hooks.onState("failed", why.message);
        return;
      }
      retryLater(why.message);
    };
  }

  function close() {
    connection += 1;
    timers.clearTimeout(retryTimer);
    retryTimer = null;
    target = null;
    ready = false;
    if (ws !== null) {
      const socket = ws;
      ws = null;
      socket.close(1000, "client stopped");
    }
  }

  function send(data) {
    if (!ready || ws === null || ws.readyState !== OPEN) return false;
    ws.send(data);
    return true;
  }

  return {
    open(next) {
      close();
      target = next;
      attempts = 0;
      connect();
    },
    close,
    /** Sends when the handshake is done; false otherwise (the caller releases its frame). */
    send,
    /** Asks the server to read every text region afresh on the next frame; false before ready. */
    readText: () => send(readTextMessage()),
    get ready() {
      return ready;
    },
  };
}
