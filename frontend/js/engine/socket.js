// The inference WebSocket: hello/ready handshake, message parsing, and reconnection with
// backoff after an unexpected close. Frames are sent by the streamer through send().

import { backoffDelay } from "../backoff.js";
import { describeClose, helloMessage, parseServerMessage } from "../protocol.js";

export const RECONNECT_BACKOFF = Object.freeze({ baseMs: 1000, maxMs: 30_000 });
const OPEN = 1;

/**
 * hooks: {onState(state, message), onReady(readyMessage), onMessage(parsedMessage)}.
 * States reported: "connecting", "streaming", "reconnecting", "failed".
 */
export function createInferenceSocket(hooks, { WebSocketImpl = WebSocket, timers = globalThis, random = Math.random } = {}) {
  let target = null; // {wsUrl, token, models}
  let ws = null;
  let ready = false;
  let attempts = 0;
  let retryTimer = null;

  function connect() {
    retryTimer = null;
    const socket = new WebSocketImpl(target.wsUrl);
    socket.binaryType = "arraybuffer";
    ws = socket;
    ready = false;
    hooks.onState("connecting", "");

    socket.onopen = () => socket.send(helloMessage(target.token, target.models));
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
      const delay = backoffDelay(attempts, RECONNECT_BACKOFF, random);
      attempts += 1;
      hooks.onState("reconnecting", `${why.message} Retrying in ${Math.ceil(delay / 1000)} s.`);
      retryTimer = timers.setTimeout(connect, delay);
    };
  }

  function close() {
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

  return {
    open(next) {
      close();
      target = next;
      attempts = 0;
      connect();
    },
    close,
    /** The token for the next hello (a reconnection); the open socket is left as it is. */
    updateToken(token) {
      if (target !== null) target = { ...target, token };
    },
    /** Sends when the handshake is done; false otherwise (the caller releases its frame). */
    send(data) {
      if (!ready || ws === null || ws.readyState !== OPEN) return false;
      ws.send(data);
      return true;
    },
    get ready() {
      return ready;
    },
  };
}
