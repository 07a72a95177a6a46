// Timers the test fires by hand (setTimeout/clearTimeout as the code under test calls them),
// so that backoffs and time-outs play deterministically.
export function manualTimers() {
  const pending = new Map();
  let next = 1;
  return {
    setTimeout: (fn, ms) => {
      pending.set(next, { fn, ms });
      return next++;
    },
    clearTimeout: (id) => pending.delete(id),
    pending,
    /** Runs the oldest pending timer. */
    fire() {
      const [id, { fn }] = pending.entries().next().value;
      pending.delete(id);
      fn();
    },
    /** Runs every timer pending now (not those they set). */
    fireAll() {
      for (const [id, { fn }] of [...pending]) {
        pending.delete(id);
        fn();
      }
    },
  };
}
