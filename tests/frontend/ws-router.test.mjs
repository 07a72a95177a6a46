// The CloudFront Function on `/ws/*` (infra/edge/ws_router.js), the very file CDK deploys, run
// in a bare V8 context (no Node APIs, as at the edge) with a stand-in for the `cloudfront`
// module: a KeyValueStore (`cf.kvs()`: exists/get) and `cf.updateRequestOrigin`.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import vm from "node:vm";

const SOURCE_URL = new URL("../../infra/edge/ws_router.js", import.meta.url);
const IMPORT_LINE = "import cf from 'cloudfront';";

function routerSource() {
  const source = readFileSync(SOURCE_URL, "utf8");
  const [first, ...rest] = source.split("\n");
  assert.equal(first, IMPORT_LINE, "the function starts by importing the cloudfront module");
  return rest.join("\n");
}

const ORIGIN = "ec2-203-0-113-5.compute-1.amazonaws.com";
const HOST = "i-0123456789abcdef0";

// Values made in the function's context belong to another realm: compare them as plain data.
const plain = (value) => JSON.parse(JSON.stringify(value));

/** A fresh function instance over `routes` (host → origin); `failing` breaks one store call. */
function router(routes = { [HOST]: ORIGIN }, { failing = null } = {}) {
  const asked = [];
  const origins = [];
  const originKeys = [];
  const store = {
    async exists(key) {
      asked.push(["exists", key]);
      if (failing === "exists") throw new Error("KeyValueStore unavailable");
      return Object.hasOwn(routes, key);
    },
    async get(key) {
      asked.push(["get", key]);
      if (failing === "get") throw new Error("KeyValueStore unavailable");
      if (!Object.hasOwn(routes, key)) throw new Error(`key not found: ${key}`);
      return routes[key];
    },
  };
  const cf = {
    kvs: () => store,
    updateRequestOrigin: (...args) => {
      origins.push(plain(args));
      originKeys.push(args.map((arg) => Object.keys(arg)));
    },
  };
  const context = vm.createContext({ cf });
  vm.runInContext(routerSource(), context, { filename: "ws_router.js" });
  const handle = async (event) => plain(await context.handler(event));
  return { handle, asked, origins, originKeys };
}

function socketRequest(uri) {
  return {
    method: "GET",
    uri,
    querystring: { v: { value: "2" } },
    headers: {
      host: { value: "d111111abcdef8.cloudfront.net" },
      upgrade: { value: "websocket" },
      connection: { value: "Upgrade" },
      "sec-websocket-key": { value: "dGhlIHNhbXBsZSBub25jZQ==" },
      "sec-websocket-version": { value: "13" },
      origin: { value: "https://d111111abcdef8.cloudfront.net" },
    },
    cookies: {},
  };
}

const event = (uri) => ({
  version: "1.0",
  context: { eventType: "viewer-request" },
  request: socketRequest(uri),
});

/** A short, printable name for a test title. */
const shown = (text, room = 40) =>
  JSON.stringify(text.length > room ? `${text.slice(0, room)}…` : text);

describe("a routed path", () => {
  for (const [suffix, backendPath] of [
    ["inference", "/ws/inference"],
    ["health", "/health"],
    ["health/ready", "/health/ready"],
  ]) {
    test(`/ws/<host>/${suffix} goes to the host's origin as ${backendPath}`, async () => {
      const { handle, origins } = router();
      const forwarded = await handle(event(`/ws/${HOST}/${suffix}`));
      assert.equal(forwarded.uri, backendPath);
      assert.deepEqual(origins, [[{ domainName: ORIGIN }]]);
    });
  }

  for (const host of ["gpu-0", "a.b_c-9", "x".repeat(64), "i-0abc"]) {
    test(`host id ${shown(host, 20)} is looked up as it is`, async () => {
      const { handle, asked, origins } = router({ [host]: ORIGIN });
      const forwarded = await handle(event(`/ws/${host}/inference`));
      assert.equal(forwarded.uri, "/ws/inference");
      assert.deepEqual(asked, [["exists", host], ["get", host]]);
      assert.equal(origins.length, 1);
    });
  }

  test("only the origin's name changes: no customHeaders, so the origin secret stays", async () => {
    const { handle, originKeys } = router();
    await handle(event(`/ws/${HOST}/inference`));
    assert.deepEqual(originKeys, [[["domainName"]]]);
  });

  test("the request passes unchanged but for its path (upgrade headers, query)", async () => {
    const { handle } = router();
    const forwarded = await handle(event(`/ws/${HOST}/inference`));
    assert.deepEqual({ ...forwarded, uri: "(rewritten)" }, { ...socketRequest("(rewritten)") });
  });

  test("each host gets its own origin", async () => {
    const routes = { "i-aaa": "ec2-198-51-100-1.compute-1.amazonaws.com", "i-bbb": ORIGIN };
    const { handle, origins } = router(routes);
    await handle(event("/ws/i-aaa/inference"));
    await handle(event("/ws/i-bbb/inference"));
    assert.deepEqual(origins, [[{ domainName: routes["i-aaa"] }], [{ domainName: ORIGIN }]]);
  });
});

function assertRefused(answer, statusCode) {
  assert.equal(answer.statusCode, statusCode);
  assert.equal(typeof answer.statusDescription, "string");
  assert.deepEqual(answer.headers, { "cache-control": { value: "no-store" } });
  assert.equal("uri" in answer, false, "a response, never the request");
}

describe("an unknown host", () => {
  test("is answered 404 at the edge, after asking the store", async () => {
    const { handle, asked, origins } = router({});
    assertRefused(await handle(event(`/ws/${HOST}/inference`)), 404);
    assert.deepEqual(asked, [["exists", HOST]]);
    assert.deepEqual(origins, []);
  });

  test("a host that left (its route deleted) is unknown", async () => {
    const routes = { [HOST]: ORIGIN };
    const { handle, origins } = router(routes);
    delete routes[HOST];
    assertRefused(await handle(event(`/ws/${HOST}/inference`)), 404);
    assert.deepEqual(origins, []);
  });
});

describe("a malformed path", () => {
  for (const uri of [
    "/ws/inference", // the backend's own path, without a host
    "/ws/",
    "/ws//inference",
    "/ws/../inference",
    "/ws/./inference",
    "/ws/.../inference",
    "/ws/%2e%2e/inference",
    `/ws/${HOST}/../../inference`,
    `/ws/${HOST}/inference/../../../admin`,
    `/ws/a/${HOST}/inference`,
    `/ws/${HOST}/inference/`,
    `/ws/${HOST}/Inference`,
    `/ws/${HOST}/metrics`,
    `/ws/${HOST}/healthz`,
    `/ws/${HOST}/health/`,
    `/ws/${HOST}`,
    `/ws/${"x".repeat(65)}/inference`,
    "/ws/i 1/inference",
    "/ws/i-1\n/inference",
    "/ws/i-1%0a/inference",
    "/ws/i-1:80/inference",
    "/ws/i-1@evil.example/inference",
    "/WS/i-1/inference",
    "/ws/i-1/inference?x=1",
    "/api/status",
  ]) {
    test(`${shown(uri)} is 404 without a lookup`, async () => {
      const { handle, asked, origins } = router({ "..": ORIGIN, ".": ORIGIN, [HOST]: ORIGIN });
      assertRefused(await handle(event(uri)), 404);
      assert.deepEqual(asked, []);
      assert.deepEqual(origins, []);
    });
  }
});

describe("a failing store", () => {
  for (const failing of ["exists", "get"]) {
    test(`${failing}() throwing is a 502 (the engine retries), never a forward`, async () => {
      const { handle, origins } = router({ [HOST]: ORIGIN }, { failing });
      assertRefused(await handle(event(`/ws/${HOST}/inference`)), 502);
      assert.deepEqual(origins, []);
    });
  }

  for (const value of [
    "",
    "http://ec2.example",
    "ec2.example/ws",
    "ec2 example",
    "ec2.example:80",
    "-ec2.example",
    "a".repeat(254),
  ]) {
    test(`a stored origin ${shown(value, 20)} is no host name: 502`, async () => {
      const { handle, origins } = router({ [HOST]: value });
      assertRefused(await handle(event(`/ws/${HOST}/inference`)), 502);
      assert.deepEqual(origins, []);
    });
  }
});
