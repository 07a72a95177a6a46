import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ConfigError, loadConfig, parseConfig, resolveWsUrl } from "../../frontend/js/config.js";

const PAGE = "http://127.0.0.1:8000/";

describe("parseConfig", () => {
  test("local mode", () => {
    assert.deepEqual(
      parseConfig({ apiBase: "/api", wsUrl: "ws://127.0.0.1:8080/ws/inference", devToken: "jwt" }, PAGE),
      { apiBase: "http://127.0.0.1:8000/api", wsUrl: "ws://127.0.0.1:8080/ws/inference", devToken: "jwt", loginUrl: null },
    );
  });

  test("AWS: relative socket URL, no dev token, a sign-in URL", () => {
    const page = "https://d111.cloudfront.net/";
    assert.deepEqual(parseConfig({ apiBase: "/api/", wsUrl: "/ws/inference", loginUrl: "https://auth.example/login" }, page), {
      apiBase: "https://d111.cloudfront.net/api",
      wsUrl: "wss://d111.cloudfront.net/ws/inference",
      devToken: null,
      loginUrl: "https://auth.example/login",
    });
  });

  for (const [name, json, message] of [
    ["not an object", [], /object/],
    ["null", null, /object/],
    ["no apiBase", { wsUrl: "ws://x" }, /apiBase/],
    ["apiBase not a string", { apiBase: 5 }, /apiBase/],
    ["devToken not a string", { apiBase: "/api", devToken: {} }, /devToken/],
    ["ftp socket URL", { apiBase: "/api", wsUrl: "ftp://x/ws" }, /WebSocket/],
  ]) {
    test(`rejects ${name}`, () => assert.throws(() => parseConfig(json, PAGE), (err) => err instanceof ConfigError && message.test(err.message)));
  }
});

describe("resolveWsUrl", () => {
  for (const [url, page, expected] of [
    ["ws://a:1/ws", "http://p/", "ws://a:1/ws"],
    ["wss://a/ws", "http://p/", "wss://a/ws"],
    ["/ws/inference", "http://p:8000/x/", "ws://p:8000/ws/inference"],
    ["/ws/inference", "https://p/", "wss://p/ws/inference"],
    ["https://a/ws", "http://p/", "wss://a/ws"],
  ]) {
    test(`${url} on ${page}`, () => assert.equal(resolveWsUrl(url, page), expected));
  }
});

describe("loadConfig", () => {
  const respond = (status, body) => async () => ({
    ok: status < 400,
    status,
    json: async () => (typeof body === "string" ? JSON.parse(body) : body),
  });

  test("fetches config.json next to the page", async () => {
    let asked = null;
    const fetchFn = async (url) => {
      asked = String(url);
      return respond(200, { apiBase: "/api" })();
    };
    const config = await loadConfig(fetchFn, "http://h/app/index.html");
    assert.equal(asked, "http://h/app/config.json");
    assert.equal(config.apiBase, "http://h/api");
  });

  for (const [name, fetchFn, message] of [
    ["HTTP 404", respond(404, {}), /HTTP 404/],
    ["bad JSON", respond(200, "{nope"), /not valid JSON/],
    ["network error", async () => { throw new TypeError("Failed to fetch"); }, /Failed to fetch/],
  ]) {
    test(`fails clearly on ${name}`, async () => {
      await assert.rejects(loadConfig(fetchFn, PAGE), (err) => err instanceof ConfigError && message.test(err.message));
    });
  }
});
