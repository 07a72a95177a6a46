import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Pacer } from "../../frontend/js/pacer.js";

const sendOne = (pacer, now) => {
  const id = pacer.reserve(now);
  assert.notEqual(id, null);
  pacer.markSent(id, now);
  return id;
};

describe("Pacer", () => {
  test("one frame in flight: no second reservation until the result", () => {
    const p = new Pacer();
    const id = sendOne(p, 0);
    assert.equal(p.inFlight, id);
    assert.equal(p.reserve(10), null);
    assert.equal(p.onResult(id, 40), 40);
    assert.equal(p.inFlight, null);
    assert.equal(p.reserve(41), id + 1);
  });

  test("frame ids count up and wrap at 2^32", () => {
    const p = new Pacer();
    const ids = [];
    for (let t = 0; t < 3; t += 1) {
      const id = sendOne(p, t);
      ids.push(id);
      p.onResult(id, t);
    }
    assert.deepEqual(ids, [0, 1, 2]);
  });

  test("the frame id after 2^32 - 1 is 0", async () => {
    const { nextFrameId } = await import("../../frontend/js/protocol.js");
    assert.equal(nextFrameId(2 ** 32 - 1), 0);
  });

  test("a frame past the timeout is given up and counted", () => {
    const p = new Pacer({ timeoutMs: 1000 });
    const first = sendOne(p, 0);
    assert.equal(p.reserve(999), null);
    const second = p.reserve(1000);
    assert.equal(second, first + 1);
    assert.equal(p.snapshot().timeouts, 1);
  });

  test("a late result (after its timeout) counts but does not release the new frame", () => {
    const p = new Pacer({ timeoutMs: 100 });
    const first = sendOne(p, 0);
    const second = sendOne(p, 150);
    assert.equal(p.onResult(first, 160), null);
    assert.equal(p.inFlight, second);
    assert.deepEqual([p.snapshot().results, p.snapshot().late], [1, 1]);
    assert.equal(p.onResult(second, 200), 50);
  });

  test("an error for the frame in flight releases it after a hold-off", () => {
    const p = new Pacer({ errorHoldMs: 500 });
    const id = sendOne(p, 0);
    p.onError(id, 10);
    assert.equal(p.inFlight, null);
    assert.equal(p.reserve(100), null);
    assert.notEqual(p.reserve(510), null);
    assert.equal(p.snapshot().errors, 1);
  });

  test("an error without a frame id releases the frame in flight", () => {
    const p = new Pacer({ errorHoldMs: 0 });
    sendOne(p, 0);
    p.onError(null, 5);
    assert.equal(p.inFlight, null);
  });

  test("an error naming another frame is stale and releases nothing", () => {
    const p = new Pacer();
    const id = sendOne(p, 0);
    p.onError(id + 7, 5);
    assert.equal(p.inFlight, id);
  });

  test("abort releases a reserved frame without counting it as sent", () => {
    const p = new Pacer();
    const id = p.reserve(0);
    p.abort(id);
    assert.equal(p.inFlight, null);
    assert.equal(p.snapshot().sent, 0);
    assert.notEqual(p.reserve(1), null);
  });

  test("a reserved but unsent frame that hangs is dropped at the timeout without counting", () => {
    const p = new Pacer({ timeoutMs: 100 });
    p.reserve(0);
    assert.notEqual(p.reserve(100), null);
    assert.equal(p.snapshot().timeouts, 0);
  });

  test("a result for a reserved but not yet sent frame does not release it", () => {
    const p = new Pacer();
    const id = p.reserve(0);
    assert.equal(p.onResult(id, 1), null);
    assert.equal(p.inFlight, id);
  });

  test("minIntervalMs caps the send rate", () => {
    const p = new Pacer({ minIntervalMs: 100 });
    const id = sendOne(p, 0);
    p.onResult(id, 10);
    assert.equal(p.reserve(50), null);
    assert.notEqual(p.reserve(100), null);
  });

  test("markSent of an aborted frame changes nothing", () => {
    const p = new Pacer();
    const id = p.reserve(0);
    p.abort(id);
    p.markSent(id, 1);
    assert.deepEqual([p.inFlight, p.snapshot().sent], [null, 0]);
  });

  test("reset (new connection) frees the slot and keeps the counters and ids", () => {
    const p = new Pacer({ errorHoldMs: 10_000 });
    const id = sendOne(p, 0);
    p.onError(id, 1);
    p.reset();
    assert.equal(p.reserve(2), id + 1);
    assert.deepEqual([p.snapshot().sent, p.snapshot().errors], [1, 1]);
  });

  test("snapshot reports the last round trip", () => {
    const p = new Pacer();
    assert.equal(p.snapshot().lastRttMs, null);
    const id = sendOne(p, 100);
    p.onResult(id, 137);
    assert.deepEqual(p.snapshot(), { sent: 1, results: 1, errors: 0, timeouts: 0, late: 0, lastRttMs: 37, inFlight: null });
  });
});
