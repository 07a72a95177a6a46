import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  TokenError,
  authorizeUrl,
  base64url,
  codeRequest,
  parseStoredTokens,
  parseTokenResponse,
  pkceChallenge,
  randomString,
  redirectResult,
  refreshAtMs,
  refreshRequest,
  revokeRequest,
  usableUntilMs,
  withoutRedirectParams,
} from "../../frontend/js/oidc.js";

const OIDC = {
  authorizeUrl: "https://auth.example/oauth2/authorize",
  tokenUrl: "https://auth.example/oauth2/token",
  revokeUrl: "https://auth.example/oauth2/revoke",
  clientId: "client-1",
  redirectUri: "https://app.example/",
  scopes: ["openid", "email"],
};

describe("PKCE", () => {
  test("base64url has no padding and uses - and _", () => {
    assert.equal(base64url(new Uint8Array([0xfb, 0xff])), "-_8");
    assert.equal(base64url(new Uint8Array([])), "");
  });

  test("the S256 challenge of RFC 7636 Appendix B", async () => {
    const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    assert.equal(await pkceChallenge(verifier, globalThis.crypto.subtle), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  });

  for (const [name, verifier] of [
    ["too short", "a".repeat(42)],
    ["too long", "a".repeat(129)],
    ["not unreserved", `${"a".repeat(42)}+`],
  ]) {
    test(`a verifier ${name} is refused`, async () => {
      await assert.rejects(pkceChallenge(verifier, globalThis.crypto.subtle), RangeError);
    });
  }

  test("random strings: 32 bytes give a 43-character verifier from getRandomValues", () => {
    const fake = { getRandomValues: (bytes) => bytes.map((_, i) => i) };
    const value = randomString(fake);
    assert.equal(value.length, 43);
    assert.match(value, /^[A-Za-z0-9_-]+$/);
    assert.notEqual(randomString(globalThis.crypto), randomString(globalThis.crypto));
  });
});

describe("authorizeUrl", () => {
  test("asks for a code with an S256 challenge, the state and the scopes", () => {
    const url = new URL(authorizeUrl(OIDC, { state: "st", challenge: "ch" }));
    assert.equal(url.origin + url.pathname, OIDC.authorizeUrl);
    assert.deepEqual(Object.fromEntries(url.searchParams), {
      response_type: "code",
      client_id: "client-1",
      redirect_uri: "https://app.example/",
      scope: "openid email",
      state: "st",
      code_challenge: "ch",
      code_challenge_method: "S256",
    });
  });
});

describe("the redirect back", () => {
  for (const [href, expected] of [
    ["https://app.example/?code=c1&state=s1", { code: "c1", state: "s1" }],
    ["https://app.example/?code=c1", { code: "c1", state: null }],
    ["https://app.example/?error=access_denied&error_description=no&state=s1", { error: "access_denied", description: "no", state: "s1" }],
    ["https://app.example/?error=server_error", { error: "server_error", description: "", state: null }],
    ["https://app.example/", null],
    ["https://app.example/?x=1#code=c1", null],
  ]) {
    test(href, () => assert.deepEqual(redirectResult(href), expected));
  }

  for (const [href, clean] of [
    ["https://app.example/?code=c1&state=s1", "/"],
    ["https://app.example/app/?x=1&code=c1&state=s1&iss=https%3A%2F%2Fauth#top", "/app/?x=1#top"],
    ["https://app.example/?error=e&error_description=d&state=s", "/"],
  ]) {
    test(`the address bar keeps ${clean}`, () => assert.equal(withoutRedirectParams(href), clean));
  }
});

describe("request bodies", () => {
  const fields = (body) => Object.fromEntries(body);

  test("code exchange", () => {
    assert.deepEqual(fields(codeRequest(OIDC, "c1", "v1")), {
      grant_type: "authorization_code",
      client_id: "client-1",
      code: "c1",
      redirect_uri: "https://app.example/",
      code_verifier: "v1",
    });
  });

  test("refresh", () => {
    assert.deepEqual(fields(refreshRequest(OIDC, "r1")), { grant_type: "refresh_token", client_id: "client-1", refresh_token: "r1" });
  });

  test("revocation", () => {
    assert.deepEqual(fields(revokeRequest(OIDC, "r1")), { token: "r1", client_id: "client-1", token_type_hint: "refresh_token" });
  });
});

describe("parseTokenResponse", () => {
  const ok = { id_token: "id1", access_token: "ac1", refresh_token: "r2", token_type: "Bearer", expires_in: 3600 };

  test("a full answer", () => {
    assert.deepEqual(parseTokenResponse(200, ok, 1000, "r1"), {
      idToken: "id1",
      accessToken: "ac1",
      refreshToken: "r2",
      receivedAtMs: 1000,
      expiresAtMs: 3_601_000,
    });
  });

  test("without rotation the old refresh token stays", () => {
    const { refresh_token: _, ...noRefresh } = ok;
    assert.equal(parseTokenResponse(200, noRefresh, 0, "r1").refreshToken, "r1");
    assert.equal(parseTokenResponse(200, noRefresh, 0).refreshToken, null);
  });

  for (const [name, status, json, kind, message] of [
    ["invalid_grant", 400, { error: "invalid_grant", error_description: "reused" }, "rejected", "invalid_grant: reused"],
    ["invalid_client", 401, { error: "invalid_client" }, "rejected", "invalid_client"],
    ["a 400 without a body", 400, null, "rejected", "HTTP 400"],
    ["a server error", 503, null, "transient", "the sign-in service answered HTTP 503"],
    ["throttling", 429, {}, "transient", "the sign-in service answered HTTP 429"],
    ["no id_token", 200, { ...ok, id_token: "" }, "invalid", "the token response lacks id_token or expires_in"],
    ["no lifetime", 200, { ...ok, expires_in: 0 }, "invalid", "the token response lacks id_token or expires_in"],
    ["not an object", 200, "nope", "invalid", "the token response lacks id_token or expires_in"],
  ]) {
    test(`${name} → ${kind}`, () => {
      assert.throws(
        () => parseTokenResponse(status, json, 0),
        (err) => err instanceof TokenError && err.kind === kind && err.message === message,
      );
    });
  }
});

describe("refresh schedule", () => {
  const tokens = (lifetimeS) => ({ receivedAtMs: 1_000_000, expiresAtMs: 1_000_000 + lifetimeS * 1000 });

  for (const [lifetimeS, refreshAfterS, usableForS] of [
    [3600, 3300, 3570], // 1 h: renew 5 min early, send until 30 s before the end
    [20, 16, 19], // a test's 20 s token: renew at 80 %, send until 95 %
    [300, 240, 285],
  ]) {
    test(`a ${lifetimeS} s token is renewed after ${refreshAfterS} s and sent for ${usableForS} s`, () => {
      assert.equal(refreshAtMs(tokens(lifetimeS)), 1_000_000 + refreshAfterS * 1000);
      assert.equal(usableUntilMs(tokens(lifetimeS)), 1_000_000 + usableForS * 1000);
    });
  }

  test("renewal comes before the token stops being sent", () => {
    for (const lifetimeS of [1, 10, 60, 600, 3600, 86_400]) {
      assert.ok(refreshAtMs(tokens(lifetimeS)) < usableUntilMs(tokens(lifetimeS)), `${lifetimeS} s`);
    }
  });
});

describe("parseStoredTokens", () => {
  const stored = { idToken: "i", accessToken: null, refreshToken: "r", receivedAtMs: 1, expiresAtMs: 2 };

  test("reads what auth.js writes", () => assert.deepEqual(parseStoredTokens(JSON.stringify(stored)), stored));

  for (const [name, text] of [
    ["nothing stored", null],
    ["not JSON", "{"],
    ["no id token", JSON.stringify({ ...stored, idToken: "" })],
    ["a bad refresh token", JSON.stringify({ ...stored, refreshToken: 5 })],
    ["no expiry", JSON.stringify({ ...stored, expiresAtMs: "later" })],
  ]) {
    test(`null for ${name}`, () => assert.equal(parseStoredTokens(text), null));
  }
});
