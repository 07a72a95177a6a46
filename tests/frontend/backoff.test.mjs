import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { DEFAULT_BACKOFF, backoffDelay } from "../../frontend/js/backoff.js";

const fixed = (value) => () => value;

describe("backoffDelay", () => {
  for (const [attempt, ceiling] of [
    [0, 500],
    [1, 1000],
    [2, 2000],
    [5, 16000],
    [6, 30000], // 32 s capped at 30 s
    [50, 30000],
    [10_000, 30000], // no overflow to Infinity or NaN
  ]) {
    test(`attempt ${attempt}: between half of ${ceiling} ms and ${ceiling} ms`, () => {
      assert.equal(backoffDelay(attempt, {}, fixed(0)), ceiling * (1 - DEFAULT_BACKOFF.jitter));
      const top = backoffDelay(attempt, {}, fixed(0.999999));
      assert.ok(top < ceiling && top > ceiling * 0.999);
    });
  }

  test("jitter 0 gives the exact exponential delay", () => {
    assert.equal(backoffDelay(3, { baseMs: 100, jitter: 0 }, fixed(0.7)), 800);
  });

  test("jitter 1 spans the whole range from 0", () => {
    assert.equal(backoffDelay(0, { baseMs: 100, jitter: 1 }, fixed(0)), 0);
    assert.equal(backoffDelay(0, { baseMs: 100, jitter: 1 }, fixed(0.5)), 50);
  });

  test("a custom factor and cap", () => {
    assert.equal(backoffDelay(2, { baseMs: 10, factor: 3, maxMs: 1000, jitter: 0 }, fixed(0)), 90);
    assert.equal(backoffDelay(9, { baseMs: 10, factor: 3, maxMs: 1000, jitter: 0 }, fixed(0)), 1000);
  });

  test("every delay lies within the jitter bounds for many random draws", () => {
    let seed = 42;
    const lcg = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let attempt = 0; attempt < 12; attempt += 1) {
      const ceiling = Math.min(30000, 500 * 2 ** attempt);
      for (let i = 0; i < 200; i += 1) {
        const d = backoffDelay(attempt, {}, lcg);
        assert.ok(d >= ceiling / 2 && d <= ceiling, `${d} outside [${ceiling / 2}, ${ceiling}]`);
      }
    }
  });

  for (const [name, attempt, options, random] of [
    ["negative attempt", -1, {}, fixed(0)],
    ["fractional attempt", 1.5, {}, fixed(0)],
    ["zero base", 0, { baseMs: 0 }, fixed(0)],
    ["cap below base", 0, { baseMs: 100, maxMs: 50 }, fixed(0)],
    ["shrinking factor", 0, { factor: 0.5 }, fixed(0)],
    ["jitter above 1", 0, { jitter: 2 }, fixed(0)],
    ["random() returning 1", 0, {}, fixed(1)],
    ["random() returning NaN", 0, {}, fixed(Number.NaN)],
  ]) {
    test(`rejects ${name}`, () => {
      assert.throws(() => backoffDelay(attempt, options, random), RangeError);
    });
  }
});
