// Exponential backoff with jitter. Pure: the random source is injected.

export const DEFAULT_BACKOFF = Object.freeze({
  baseMs: 500,
  maxMs: 30_000,
  factor: 2,
  // Fraction of the delay that is randomized: the delay lies in [(1 - jitter) * d, d], so many
  // tabs that lost the network together do not retry in lockstep, yet none retries at once.
  jitter: 0.5,
});

/**
 * The delay before retry number `attempt` (0 for the first retry).
 * Grows as baseMs * factor^attempt, capped at maxMs, then jittered down by up to `jitter`.
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const { baseMs, maxMs, factor, jitter } = { ...DEFAULT_BACKOFF, ...options };
  if (!Number.isInteger(attempt) || attempt < 0) {
    throw new RangeError(`attempt must be a non-negative integer, got ${attempt}`);
  }
  if (!(baseMs > 0) || !(maxMs >= baseMs) || !(factor >= 1) || !(jitter >= 0 && jitter <= 1)) {
    throw new RangeError("backoff needs baseMs > 0, maxMs >= baseMs, factor >= 1, 0 <= jitter <= 1");
  }
  const r = random();
  if (!(r >= 0 && r < 1)) throw new RangeError(`random() must return a value in [0, 1), got ${r}`);
  // Math.min before the power overflows to Infinity keeps huge attempt counts finite.
  const ceiling = Math.min(maxMs, baseMs * factor ** Math.min(attempt, 64));
  return ceiling * (1 - jitter + jitter * r);
}
