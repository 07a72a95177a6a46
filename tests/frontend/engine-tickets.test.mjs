// The engine's ticket requests (frontend/js/engine/tickets.js): one outstanding at a time,
// answered by id, timed out, and each failure mapped to retry or not.
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { TicketError, createTicketRequests, describeTicketFailure } from "../../frontend/js/engine/tickets.js";
import { manualTimers } from "./manual-timers.mjs";

let posted;
let timers;
let requests;

beforeEach(() => {
  posted = [];
  timers = manualTimers();
  requests = createTicketRequests({ post: (m) => posted.push(m), timers, timeoutMs: 5000 });
});

const WS = "wss://d1.example/ws/inference";

describe("createTicketRequests", () => {
  test("asks the page for a ticket and resolves with its answer", async () => {
    const asked = requests.request("s1");
    assert.deepEqual(posted, [{ type: "ticket-request", id: 1, sessionId: "s1" }]);
    requests.answer({ type: "ticket", id: 1, ticket: "tkt", wsUrl: WS });
    assert.deepEqual(await asked, { ticket: "tkt", wsUrl: WS });
    assert.equal(timers.pending.size, 0, "the timeout is cleared");
  });

  test("every request has its own id", () => {
    requests.request("s1").catch(() => {});
    requests.request("s1").catch(() => {});
    assert.deepEqual(posted.map((m) => m.id), [1, 2]);
  });

  test("a newer request supersedes the one still waiting; a stale answer is ignored", async () => {
    const older = requests.request("s1");
    const newer = requests.request("s1");
    await assert.rejects(older, (err) => err instanceof TicketError && err.retry);
    requests.answer({ type: "ticket", id: 1, ticket: "old", wsUrl: WS });
    requests.answer({ type: "ticket", id: 2, ticket: "new", wsUrl: WS });
    assert.equal((await newer).ticket, "new");
    assert.equal(timers.pending.size, 0, "one timeout at most, and it is cleared");
  });

  test("no answer in time is a retryable failure", async () => {
    const asked = requests.request("s1");
    assert.equal([...timers.pending.values()][0].ms, 5000);
    timers.fireAll();
    await assert.rejects(asked, (err) => err.retry === true && /did not answer/.test(err.message));
    requests.answer({ type: "ticket", id: 1, ticket: "late", wsUrl: WS }); // ignored, no throw
  });

  test("a refusal rejects with what it means", async () => {
    const asked = requests.request("s1");
    requests.answer({ type: "ticket-error", id: 1, status: 409, message: "Session s1 was released" });
    await assert.rejects(asked, (err) => err.retry === false && /Session s1 was released/.test(err.message));
  });
});

describe("describeTicketFailure", () => {
  for (const [status, retry, words] of [
    [401, false, /sign in/i],
    [403, false, /ended/],
    [404, false, /ended/],
    [409, false, /press Start/],
    [0, true, /No socket ticket/],
    [429, true, /No socket ticket/],
    [500, true, /No socket ticket/],
    [503, true, /No socket ticket/],
  ]) {
    test(`${status}: ${retry ? "retry" : "give up"}`, () => {
      const error = describeTicketFailure(status, "detail");
      assert.equal(error.retry, retry);
      assert.match(error.message, words);
      assert.match(error.message, /detail/);
    });
  }
});
