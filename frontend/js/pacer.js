// The in-flight / pacing state machine of the frame sender. Pure: every method takes the time.
//
// At most ONE frame is in flight: a frame slot is reserved before capture and encoding, and is
// released by that frame's result or error, or given up after `timeoutMs` (the server may have
// dropped it). This keeps the server's one-slot buffer nearly always empty, so latency stays at
// one round trip instead of growing with a queue.

import { nextFrameId } from "./protocol.js";

export const DEFAULT_PACING = Object.freeze({
  timeoutMs: 3000,
  // Fastest send rate, whatever the camera does (0 = as fast as results come back).
  minIntervalMs: 0,
  // After a server error, wait before the next frame instead of hammering a failing server.
  errorHoldMs: 500,
});

export class Pacer {
  #opts;
  #nextId = 0;
  #inFlight = null; // {frameId, sinceMs, sent: boolean}
  #lastReserveMs = null;
  #holdUntilMs = null;
  #counts = { sent: 0, results: 0, errors: 0, timeouts: 0, late: 0 };
  #lastRttMs = null;

  constructor(options = {}) {
    this.#opts = { ...DEFAULT_PACING, ...options };
  }

  /** The frame id of the frame in flight, or null. */
  get inFlight() {
    return this.#inFlight?.frameId ?? null;
  }

  /**
   * Reserves the slot for a new frame and returns its id, or null when a frame is still in
   * flight, the send rate cap applies, or an error hold-off is running. A frame in flight past
   * the timeout is given up (counted in `timeouts`) and the slot reused.
   */
  reserve(nowMs) {
    if (this.#inFlight !== null) {
      if (nowMs - this.#inFlight.sinceMs < this.#opts.timeoutMs) return null;
      if (this.#inFlight.sent) this.#counts.timeouts += 1;
      this.#inFlight = null;
    }
    if (this.#holdUntilMs !== null && nowMs < this.#holdUntilMs) return null;
    if (this.#lastReserveMs !== null && nowMs - this.#lastReserveMs < this.#opts.minIntervalMs) return null;
    const frameId = this.#nextId;
    this.#nextId = nextFrameId(frameId);
    this.#inFlight = { frameId, sinceMs: nowMs, sent: false };
    this.#lastReserveMs = nowMs;
    return frameId;
  }

  /** The reserved frame went out on the socket: its round trip starts now. */
  markSent(frameId, nowMs) {
    if (this.#inFlight?.frameId !== frameId) return;
    this.#inFlight = { frameId, sinceMs: nowMs, sent: true };
    this.#counts.sent += 1;
  }

  /** The reserved frame was never sent (capture or encoding failed, or it was too large). */
  abort(frameId) {
    if (this.#inFlight?.frameId === frameId) this.#inFlight = null;
  }

  /**
   * A result arrived. Releases the slot when it answers the frame in flight and returns the
   * round trip in ms; a result for an earlier, timed-out frame still counts but releases nothing.
   */
  onResult(frameId, nowMs) {
    this.#counts.results += 1;
    if (this.#inFlight?.frameId !== frameId || !this.#inFlight.sent) {
      this.#counts.late += 1;
      return null;
    }
    this.#lastRttMs = nowMs - this.#inFlight.sinceMs;
    this.#inFlight = null;
    return this.#lastRttMs;
  }

  /**
   * A server error arrived. An error naming another frame is stale; one naming the frame in
   * flight, or no frame at all, releases the slot after a short hold-off.
   */
  onError(frameId, nowMs) {
    this.#counts.errors += 1;
    if (this.#inFlight === null || !this.#inFlight.sent) return;
    if (frameId !== null && frameId !== this.#inFlight.frameId) return;
    this.#inFlight = null;
    this.#holdUntilMs = nowMs + this.#opts.errorHoldMs;
  }

  /** A new connection: nothing is in flight on it. Counters and frame ids carry on. */
  reset() {
    this.#inFlight = null;
    this.#holdUntilMs = null;
    this.#lastReserveMs = null;
  }

  snapshot() {
    return { ...this.#counts, lastRttMs: this.#lastRttMs, inFlight: this.inFlight };
  }
}
