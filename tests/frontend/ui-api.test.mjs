// The control API client against a real HTTP server (node:http) through the real fetch.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";

import { ApiError, createControlApi, errorDetail, parseTicket } from "../../frontend/js/ui/api.js";

let server;
let base;
const seen = [];

before(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, type: req.headers["content-type"], body });
      const reply = (status, json) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(typeof json === "string" ? json : JSON.stringify(json));
      };
      if (req.headers.authorization === "Bearer broken") return reply(500, "<html>oops</html>");
      if (req.headers.authorization !== "Bearer good") return reply(401, { detail: "Invalid token" });
      if (req.method === "GET" && req.url === "/api/status") return reply(200, { phase: "stopped" });
      if (req.method === "POST" && req.url === "/api/sessions") {
        return reply(202, { session_id: "s1", phase: "starting", status_url: "/api/status" });
      }
      if (req.method === "POST" && req.url === "/api/sessions/bogus/keepalive") {
        return reply(422, { detail: [{ loc: ["path", "session_id"], msg: "String should match pattern" }] });
      }
      if (req.method === "POST" && req.url === "/api/sessions/a%2Fb/keepalive") return reply(200, {});
      if (req.method === "POST" && req.url === "/api/sessions/s1/ticket") {
        return reply(200, { ticket: "h.p.s", ws_url: "wss://d1.example/ws/inference", expires_at: 1_800_000_030 });
      }
      if (req.method === "POST" && req.url === "/api/sessions/ended/ticket") return reply(409, { detail: "Session ended was released" });
      if (req.method === "DELETE" && req.url === "/api/sessions/s1") return reply(200, { session_id: "s1", released: true, phase: "ready" });
      if (req.method === "DELETE") return reply(404, { detail: "No such session" });
      return reply(429, { detail: "Daily GPU budget used up" });
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}/api`;
});

after(() => new Promise((resolve) => server.close(resolve)));

const api = (token = "good") => createControlApi({ apiBase: base, getToken: () => token, fetchFn: fetch });

describe("createControlApi", () => {
  test("status sends the bearer token", async () => {
    assert.deepEqual(await api().status(), { phase: "stopped" });
    assert.equal(seen.at(-1).auth, "Bearer good");
  });

  test("createSession posts without a body (the hello names the models)", async () => {
    const body = await api().createSession();
    assert.equal(body.session_id, "s1");
    assert.equal(seen.at(-1).body, "");
    assert.equal(seen.at(-1).type, undefined);
  });

  test("session ids are URL-encoded", async () => {
    await api().keepalive("a/b");
    assert.equal(seen.at(-1).url, "/api/sessions/a%2Fb/keepalive");
  });

  test("ticket posts for the session's socket ticket", async () => {
    const body = await api().ticket("s1");
    assert.equal(seen.at(-1).method, "POST");
    assert.equal(seen.at(-1).url, "/api/sessions/s1/ticket");
    assert.equal(seen.at(-1).auth, "Bearer good");
    assert.deepEqual(body, { ticket: "h.p.s", ws_url: "wss://d1.example/ws/inference", expires_at: 1_800_000_030 });
  });

  test("an ended session's ticket is refused with the server's words", async () => {
    await assert.rejects(api().ticket("ended"), (err) => err.status === 409 && err.message === "Session ended was released");
  });

  test("releaseSession", async () => {
    assert.equal((await api().releaseSession("s1")).released, true);
  });

  for (const [name, call, status, message] of [
    ["401 with detail", (a) => a.status(), 401, "Invalid token"],
    ["404 detail", (a) => a.releaseSession("nope"), 404, "No such session"],
    ["422 validation list", (a) => a.keepalive("bogus"), 422, "path.session_id: String should match pattern"],
  ]) {
    test(`rejects with the server's words: ${name}`, async () => {
      const client = name.startsWith("401") ? api("bad") : api();
      await assert.rejects(call(client), (err) => err instanceof ApiError && err.status === status && err.message === message);
    });
  }

  test("a non-JSON error body falls back to the HTTP status", async () => {
    await assert.rejects(api("broken").status(), (err) => err.status === 500 && err.message === "The control API answered HTTP 500");
  });

  test("no token: 401 without a request", async () => {
    const before = seen.length;
    await assert.rejects(createControlApi({ apiBase: base, getToken: () => null, fetchFn: fetch }).status(), (err) => err.status === 401);
    assert.equal(seen.length, before);
  });

  test("an unreachable API is status 0 with a clear message", async () => {
    const dead = createControlApi({ apiBase: "http://127.0.0.1:1/api", getToken: () => "good", fetchFn: fetch });
    await assert.rejects(dead.status(), (err) => err.status === 0 && /Cannot reach the control API/.test(err.message));
  });
});

describe("errorDetail", () => {
  for (const [status, body, text] of [
    [400, { detail: "models must be a list" }, "models must be a list"],
    [422, { detail: [{ loc: ["body", "models"], msg: "field required" }, { msg: "second" }] }, "models: field required; second"],
    [422, { detail: ["plain"] }, "plain"],
    [401, null, "Sign in required"],
    [429, {}, "Too many requests"],
    [418, { detail: "" }, "The control API answered HTTP 418"],
    [503, "not an object", "The control API answered HTTP 503"],
  ]) {
    test(`${status} ${JSON.stringify(body)}`, () => assert.equal(errorDetail(status, body), text));
  }
});

describe("parseTicket", () => {
  const PAGE = "https://d1.example/index.html";

  test("reads the ticket and resolves its socket URL against the page", () => {
    assert.deepEqual(parseTicket({ ticket: "h.p.s", ws_url: "/ws/inference", expires_at: 5 }, PAGE), {
      ticket: "h.p.s",
      wsUrl: "wss://d1.example/ws/inference",
      expiresAt: 5,
    });
  });

  for (const [name, body, words] of [
    ["no body", null, /no socket ticket/],
    ["no ticket", { ws_url: "/ws/inference" }, /no socket ticket/],
    ["empty ticket", { ticket: "", ws_url: "/ws/inference" }, /no socket ticket/],
    ["no socket URL", { ticket: "t" }, /no socket ticket/],
    ["not a socket URL", { ticket: "t", ws_url: "javascript:alert(1)" }, /unusable socket URL/],
  ]) {
    test(`refuses ${name}`, () => {
      assert.throws(() => parseTicket(body, PAGE), (err) => err instanceof ApiError && err.status === 0 && words.test(err.message));
    });
  }
});
