import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { createTokenSource, decodeJwtPayload, isUsable, tokenExpiresAtMs, tokenFromFragment } from "../../frontend/js/auth.js";

const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
const jwt = (payload) => `${b64url({ alg: "RS256" })}.${b64url(payload)}.c2ln`;

const memoryStorage = () => {
  const data = new Map();
  return {
    getItem: (k) => (data.has(k) ? data.get(k) : null),
    setItem: (k, v) => data.set(k, String(v)),
    removeItem: (k) => data.delete(k),
  };
};

describe("decodeJwtPayload", () => {
  test("reads a base64url payload, unicode included", () => {
    assert.deepEqual(decodeJwtPayload(jwt({ sub: "dév-user", exp: 5 })), { sub: "dév-user", exp: 5 });
  });
  for (const [name, token] of [
    ["not a string", 5],
    ["two parts", "a.b"],
    ["payload not base64", "a.!!!.c"],
    ["payload not JSON", `a.${Buffer.from("nope").toString("base64url")}.c`],
    ["payload a JSON array", `a.${b64url([1])}.c`],
  ]) {
    test(`null for ${name}`, () => assert.equal(decodeJwtPayload(token), null));
  }
});

describe("expiry", () => {
  test("exp in ms", () => assert.equal(tokenExpiresAtMs(jwt({ exp: 1000 })), 1_000_000));
  test("no exp", () => assert.equal(tokenExpiresAtMs(jwt({ sub: "x" })), null));
  for (const [name, token, now, usable] of [
    ["valid", jwt({ exp: 1000 }), 900_000, true],
    ["within the 30 s skew", jwt({ exp: 1000 }), 980_000, false],
    ["expired", jwt({ exp: 1000 }), 2_000_000, false],
    ["no exp (opaque token)", "opaque-token", 0, true],
    ["empty", "", 0, false],
    ["null", null, 0, false],
  ]) {
    test(`isUsable: ${name}`, () => assert.equal(isUsable(token, now), usable));
  }
});

describe("tokenFromFragment", () => {
  for (const [hash, token] of [
    ["#id_token=abc&access_token=def&expires_in=3600", "abc"],
    ["#access_token=def&token_type=Bearer", "def"],
    ["#state=x", null],
    ["", null],
    [undefined, null],
  ]) {
    test(`${hash}`, () => assert.equal(tokenFromFragment(hash), token));
  }
});

describe("createTokenSource", () => {
  const env = (hash = "") => {
    const replaced = [];
    return {
      storage: memoryStorage(),
      location: { hash, pathname: "/", search: "?x=1" },
      history: { replaceState: (_s, _t, url) => replaced.push(url) },
      replaced,
    };
  };

  test("dev token from config", () => {
    const source = createTokenSource({ devToken: "dev", loginUrl: null }, env());
    assert.equal(source.kind, "dev");
    assert.equal(source.getToken(0), "dev");
    assert.equal(source.signInUrl, null);
  });

  test("an expired dev token means signed out", () => {
    const source = createTokenSource({ devToken: jwt({ exp: 1 }) }, env());
    assert.equal(source.getToken(10_000_000), null);
  });

  test("no token anywhere: signed out, with the sign-in URL", () => {
    const source = createTokenSource({ devToken: null, loginUrl: "https://auth/login" }, env());
    assert.equal(source.getToken(0), null);
    assert.equal(source.signInUrl, "https://auth/login");
  });

  test("a token in the fragment is kept for the tab and removed from the address bar", () => {
    const e = env("#id_token=tok");
    const source = createTokenSource({ devToken: null, loginUrl: null }, e);
    assert.equal(source.getToken(0), "tok");
    assert.deepEqual(e.replaced, ["/?x=1"]);
    source.forget();
    assert.equal(source.getToken(0), null);
  });
});
