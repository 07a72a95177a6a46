import assert from "node:assert/strict";
import { test } from "node:test";

import { createSessionStore } from "../../frontend/js/ui/session-store.js";

const memory = () => {
  const data = new Map();
  return { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => data.set(k, v), removeItem: (k) => data.delete(k) };
};

test("saves, reloads and forgets the session id", () => {
  const storage = memory();
  createSessionStore(storage).save("s1");
  assert.equal(createSessionStore(storage).load(), "s1", "a reload finds the session");
  createSessionStore(storage).save(null);
  assert.equal(createSessionStore(storage).load(), null);
});

test("disabled storage neither throws nor remembers", () => {
  const broken = {
    getItem: () => {
      throw new Error("SecurityError");
    },
    setItem: () => {
      throw new Error("QuotaExceededError");
    },
    removeItem: () => {
      throw new Error("SecurityError");
    },
  };
  const store = createSessionStore(broken);
  store.save("s1");
  store.save(null);
  assert.equal(store.load(), null);
});
