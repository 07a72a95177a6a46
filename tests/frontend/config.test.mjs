import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ConfigError, configUrl, loadConfig, parseConfig, parseModels, parseOidc, resolveWsUrl } from "../../frontend/js/config.js";

const PAGE = "http://127.0.0.1:8000/";
const AUTH = "https://spinup-123.auth.us-east-1.amazoncognito.com";
const COGNITO = {
  authorizeUrl: `${AUTH}/oauth2/authorize`,
  tokenUrl: `${AUTH}/oauth2/token`,
  revokeUrl: `${AUTH}/oauth2/revoke`,
  endSessionUrl: `${AUTH}/logout?client_id=abc&logout_uri=https%3A%2F%2Fd111.cloudfront.net%2F`,
  clientId: "abc",
  redirectUri: "https://d111.cloudfront.net/",
  scopes: ["openid", "email", "profile"],
};

describe("parseConfig", () => {
  test("local mode", () => {
    assert.deepEqual(
      parseConfig({ apiBase: "/api", wsUrl: "ws://127.0.0.1:8080/ws/inference", devToken: "jwt" }, PAGE),
      { apiBase: "http://127.0.0.1:8000/api", wsUrl: "ws://127.0.0.1:8080/ws/inference", devToken: "jwt", oidc: null, models: [] },
    );
  });

  test("AWS: relative socket URL, no dev token, the code flow's provider", () => {
    const page = "https://d111.cloudfront.net/";
    assert.deepEqual(parseConfig({ apiBase: "/api/", wsUrl: "/ws/inference", oidc: COGNITO }, page), {
      apiBase: "https://d111.cloudfront.net/api",
      wsUrl: "wss://d111.cloudfront.net/ws/inference",
      devToken: null,
      oidc: { ...COGNITO, scopes: ["openid", "email", "profile"] },
      models: [],
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

describe("parseModels: the deployment's own models", () => {
  test("none, or null: no models", () => {
    assert.deepEqual(parseModels({}), []);
    assert.deepEqual(parseModels({ models: null }), []);
  });

  test("in the file's order; label defaults to the id, hint to nothing", () => {
    const models = [
      { id: "nails", label: "Nails", hint: "Your segment model" },
      { id: "my_pose-2" },
      { id: "9", label: "", hint: null },
    ];
    assert.deepEqual(parseModels({ models }), [
      { id: "nails", label: "Nails", hint: "Your segment model" },
      { id: "my_pose-2", label: "my_pose-2", hint: "" },
      { id: "9", label: "9", hint: "" },
    ]);
  });

  test("parseConfig carries them", () => {
    const config = parseConfig({ apiBase: "/api", models: [{ id: "nails", label: "nails", hint: "h" }] }, PAGE);
    assert.deepEqual(config.models, [{ id: "nails", label: "nails", hint: "h" }]);
  });

  for (const [name, models, message] of [
    ["not a list", { id: "nails" }, /"models" must be a list/],
    ["an item that is not an object", ["nails"], /"models"\[0\] must be an object/],
    ["no id", [{ label: "Nails" }], /"models"\[0\]\.id must be a model name/],
    ["an id with capitals", [{ id: "Nails" }], /id must be a model name/],
    ["an id with a slash", [{ id: "../detect" }], /id must be a model name/],
    ["an id starting with a dash", [{ id: "-x" }], /id must be a model name/],
    ["an id of 65 characters", [{ id: "a".repeat(65) }], /id must be a model name/],
    ["an id that is a number", [{ id: 7 }], /id must be a model name/],
    ["a built-in model's id", [{ id: "segment" }], /"segment" is a built-in model's/],
    ["an id listed twice", [{ id: "nails" }, { id: "nails" }], /"models"\[1\]\.id "nails" is listed twice/],
    ["a label that is not a string", [{ id: "nails", label: 5 }], /"models"\[0\]\.label must be a string/],
    ["a hint that is not a string", [{ id: "nails", hint: ["x"] }], /"models"\[0\]\.hint must be a string/],
  ]) {
    test(`rejects ${name}`, () =>
      assert.throws(() => parseConfig({ apiBase: "/api", models }, PAGE), (err) => err instanceof ConfigError && message.test(err.message)));
  }

  test("an id of 64 characters is fine", () => assert.equal(parseModels({ models: [{ id: "a".repeat(64) }] })[0].id, "a".repeat(64)));
});

describe("parseOidc", () => {
  test("none", () => assert.equal(parseOidc({}), null));

  test("the local provider over http on the loopback; scopes default to openid", () => {
    const local = { ...COGNITO, scopes: undefined, endSessionUrl: undefined };
    for (const key of ["authorizeUrl", "tokenUrl", "revokeUrl", "redirectUri"]) {
      local[key] = `http://127.0.0.1:8000/local-oidc/${key}`;
    }
    const oidc = parseOidc({ oidc: local });
    assert.deepEqual(oidc.scopes, ["openid"]);
    assert.equal(oidc.endSessionUrl, null);
    assert.equal(oidc.tokenUrl, "http://127.0.0.1:8000/local-oidc/tokenUrl");
  });

  for (const [name, change, message] of [
    ["not an object", "x", /must be an object/],
    ["no client id", { clientId: "" }, /clientId" is required/],
    ["no token URL", { tokenUrl: undefined }, /tokenUrl" is required/],
    ["no revocation URL", { revokeUrl: undefined }, /revokeUrl" is required/],
    ["a relative URL", { tokenUrl: "/oauth2/token" }, /absolute URL/],
    ["plain http off the loopback", { tokenUrl: "http://auth.example/oauth2/token" }, /must use https/],
    ["a javascript: redirect", { redirectUri: "javascript:alert(1)" }, /must use https/],
    ["scopes as a string", { scopes: "openid email" }, /list of scope names/],
    ["a scope with a space", { scopes: ["openid email"] }, /list of scope names/],
  ]) {
    test(`rejects ${name}`, () => {
      const oidc = typeof change === "string" ? change : { ...COGNITO, ...change };
      assert.throws(() => parseOidc({ oidc }), (err) => err instanceof ConfigError && message.test(err.message));
    });
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

  for (const [page, expected] of [
    ["http://h/app/index.html", "http://h/app/config.json"],
    ["http://h/?user=bob", "http://h/config.json?user=bob"],
    ["http://h/?user=a%20b&x=1", "http://h/config.json?user=a+b"],
    ["http://h/?x=1", "http://h/config.json"],
  ]) {
    test(`asks for ${expected} from ${page}`, () => {
      assert.equal(String(configUrl(page)), expected);
    });
  }

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
