import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { PENDING_KEY, TOKENS_KEY, createTokenSource, decodeJwtPayload, isUsable, tokenExpiresAtMs } from "../../frontend/js/auth.js";
import { pkceChallenge } from "../../frontend/js/oidc.js";

const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
const jwt = (payload) => `${b64url({ alg: "RS256" })}.${b64url(payload)}.c2ln`;

const APP = "https://app.example/";
const OIDC = {
  authorizeUrl: "https://auth.example/oauth2/authorize",
  tokenUrl: "https://auth.example/oauth2/token",
  revokeUrl: "https://auth.example/oauth2/revoke",
  endSessionUrl: null,
  clientId: "client-1",
  redirectUri: APP,
  scopes: ["openid"],
};
const LIFETIME_S = 20;

const memoryStorage = () => {
  const data = new Map();
  return {
    data,
    getItem: (k) => (data.has(k) ? data.get(k) : null),
    setItem: (k, v) => data.set(k, String(v)),
    removeItem: (k) => data.delete(k),
  };
};

/**
 * A browser stand-in: a clock and timers moved by hand, an address bar, sessionStorage, and a
 * token endpoint whose answers the test queues (`answers`), recording every request.
 */
function fakeBrowser({ href = APP, storage = memoryStorage() } = {}) {
  const env = {
    nowMs: 1_000_000,
    timers: [],
    requests: [],
    answers: [],
    assigned: [],
    storage,
    location: { href },
    history: {
      replaceState: (_state, _title, url) => {
        env.location.href = new URL(url, env.location.href).href;
      },
    },
    crypto: globalThis.crypto,
    random: () => 0.5,
  };
  env.location.assign = (url) => env.assigned.push(url);
  env.now = () => env.nowMs;
  env.timers.setTimeout = (fn, ms) => {
    const timer = { fn, at: env.nowMs + ms, cleared: false };
    env.timers.push(timer);
    return timer;
  };
  env.timers.clearTimeout = (timer) => {
    if (timer) timer.cleared = true;
  };
  env.fetchFn = async (url, init) => {
    env.requests.push({ url: String(url), fields: Object.fromEntries(init.body), init, hrefThen: env.location.href });
    const answer = env.answers.shift();
    if (answer === undefined) throw new Error(`no answer queued for ${url}`);
    if (answer instanceof Error) throw answer;
    return { status: answer.status, json: async () => answer.json };
  };
  /** Moves the clock to `ms` later, firing due timers in order; waits for their promises. */
  env.advance = async (ms) => {
    const until = env.nowMs + ms;
    for (;;) {
      const due = env.timers.filter((t) => !t.cleared && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.cleared = true;
      env.nowMs = Math.max(env.nowMs, due.at);
      await due.fn();
      await settle();
    }
    env.nowMs = until;
  };
  return env;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

let issued = 0;
const tokenAnswer = (extra = {}) => {
  issued += 1;
  return {
    status: 200,
    json: { id_token: `id-${issued}`, access_token: `ac-${issued}`, refresh_token: `rt-${issued}`, token_type: "Bearer", expires_in: LIFETIME_S, ...extra },
  };
};

/** A source signed in through the code flow: sign-in, the redirect back, the exchange. */
async function signedIn(env = fakeBrowser()) {
  const first = createTokenSource({ oidc: OIDC }, env);
  await first.signIn();
  const sent = new URL(env.assigned.pop());
  env.location.href = `${APP}?code=code-1&state=${sent.searchParams.get("state")}`;
  env.answers.push(tokenAnswer());
  const source = createTokenSource({ oidc: OIDC }, env);
  const changes = [];
  source.onChange((c) => changes.push(c));
  const result = await source.start();
  assert.deepEqual(result, { signedIn: true, message: "" });
  return { env, source, changes, idToken: `id-${issued}`, refreshToken: `rt-${issued}` };
}

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

describe("expiry of a development token", () => {
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

describe("the development token source", () => {
  test("the token from config; nothing to sign in or out of", async () => {
    const source = createTokenSource({ devToken: "dev", oidc: null }, fakeBrowser());
    assert.equal(source.kind, "dev");
    assert.deepEqual(await source.start(), { signedIn: true, message: "" });
    assert.equal(source.getToken(0), "dev");
    assert.equal(await source.freshToken(), "dev");
    assert.deepEqual([source.canSignIn, source.canSignOut], [false, false]);
  });

  test("an expired development token means signed out", () => {
    const source = createTokenSource({ devToken: jwt({ exp: 1 }) }, fakeBrowser());
    assert.equal(source.getToken(10_000_000), null);
    assert.equal(source.isSignedIn(10_000_000), false);
  });

  test("no token and no provider: signed out, with no way to sign in", async () => {
    const source = createTokenSource({ devToken: null, oidc: null }, fakeBrowser());
    assert.deepEqual(await source.start(), { signedIn: false, message: "" });
    assert.equal(source.getToken(0), null);
    assert.equal(source.canSignIn, false);
  });
});

describe("the code flow: sign-in", () => {
  test("Sign in keeps the verifier for the round trip and sends its S256 challenge", async () => {
    const env = fakeBrowser();
    const source = createTokenSource({ oidc: OIDC }, env);
    assert.deepEqual(await source.start(), { signedIn: false, message: "" });
    await source.signIn();
    const pending = JSON.parse(env.storage.getItem(PENDING_KEY));
    const sent = new URL(env.assigned[0]);
    assert.equal(sent.origin + sent.pathname, OIDC.authorizeUrl);
    assert.equal(sent.searchParams.get("state"), pending.state);
    assert.equal(sent.searchParams.get("code_challenge"), await pkceChallenge(pending.verifier, globalThis.crypto.subtle));
    assert.equal(sent.searchParams.get("code_challenge_method"), "S256");
    assert.equal(sent.searchParams.get("response_type"), "code");
    assert.doesNotMatch(env.assigned[0], new RegExp(pending.verifier));
  });

  test("the redirect: code out of the address bar first, then exchanged with the verifier", async () => {
    const { env, source, idToken } = await signedIn();
    const [exchange] = env.requests;
    assert.equal(exchange.url, OIDC.tokenUrl);
    assert.equal(exchange.fields.grant_type, "authorization_code");
    assert.equal(exchange.fields.code, "code-1");
    assert.match(exchange.fields.code_verifier, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(exchange.init.method, "POST");
    assert.equal(exchange.init.credentials, "omit");
    assert.equal(exchange.hrefThen, APP, "the code was still in the URL during the exchange");
    assert.equal(env.location.href, APP);
    assert.equal(env.storage.getItem(PENDING_KEY), null, "the verifier outlived the round trip");
    assert.equal(source.getToken(env.nowMs), idToken);
    assert.equal(await source.freshToken(), idToken);
  });

  test("a reload resumes the tab's sign-in from sessionStorage without a new sign-in", async () => {
    const { env, idToken } = await signedIn();
    const reloaded = createTokenSource({ oidc: OIDC }, env);
    assert.deepEqual(await reloaded.start(), { signedIn: true, message: "" });
    assert.equal(reloaded.getToken(env.nowMs), idToken);
    assert.equal(env.requests.length, 1);
  });

  for (const [name, query, message] of [
    ["another tab's (or a forged) state", "code=c&state=forged", /did not match this tab's request/],
    ["no state at all", "code=c", /did not match/],
    ["the provider's refusal", "error=access_denied&error_description=User+cancelled&state=s", /Sign-in failed: User cancelled/],
  ]) {
    test(`${name} is refused without a token request`, async () => {
      const env = fakeBrowser({ href: `${APP}?${query}` });
      env.storage.setItem(PENDING_KEY, JSON.stringify({ state: "s", verifier: "v".repeat(43) }));
      const result = await createTokenSource({ oidc: OIDC }, env).start();
      assert.equal(result.signedIn, false);
      assert.match(result.message, message);
      assert.deepEqual(env.requests, []);
      assert.equal(env.location.href, APP);
      assert.equal(env.storage.getItem(PENDING_KEY), null);
    });
  }

  test("a code the provider refuses: signed out, saying why", async () => {
    const env = fakeBrowser({ href: `${APP}?code=c&state=s` });
    env.storage.setItem(PENDING_KEY, JSON.stringify({ state: "s", verifier: "v".repeat(43) }));
    env.answers.push({ status: 400, json: { error: "invalid_grant", error_description: "code used" } });
    const result = await createTokenSource({ oidc: OIDC }, env).start();
    assert.deepEqual(result, { signedIn: false, message: "Sign-in failed: invalid_grant: code used." });
    assert.equal(env.storage.getItem(TOKENS_KEY), null);
  });
});

describe("the code flow: renewal", () => {
  test("renewed at 80 % of the token's life with the rotated refresh token each time", async () => {
    const { env, source, changes, refreshToken } = await signedIn();
    env.answers.push(tokenAnswer());
    await env.advance(15_999);
    assert.equal(env.requests.length, 1, "renewed too early");
    await env.advance(1);
    const renewal = env.requests[1];
    assert.deepEqual(renewal.fields, { grant_type: "refresh_token", client_id: "client-1", refresh_token: refreshToken });
    assert.equal(source.getToken(env.nowMs), `id-${issued}`);
    assert.deepEqual(changes, [{ signedIn: true, message: "" }]);

    const rotated = `rt-${issued}`;
    env.answers.push(tokenAnswer());
    await env.advance(16_000);
    assert.equal(env.requests[2].fields.refresh_token, rotated);
    assert.equal(JSON.parse(env.storage.getItem(TOKENS_KEY)).refreshToken, `rt-${issued}`);
  });

  test("a refused renewal signs out with a clear message and forgets the tokens", async () => {
    const { env, source, changes } = await signedIn();
    env.answers.push({ status: 400, json: { error: "invalid_grant", error_description: "Refresh Token has been revoked" } });
    await env.advance(16_000);
    assert.deepEqual(changes, [
      { signedIn: false, message: "Your sign-in could not be renewed (invalid_grant: Refresh Token has been revoked). Sign in again." },
    ]);
    assert.equal(source.getToken(env.nowMs), null);
    assert.equal(source.isSignedIn(env.nowMs), false);
    assert.equal(env.storage.getItem(TOKENS_KEY), null);
  });

  test("a network failure is retried while the token lasts; the token keeps being sent", async () => {
    const { env, source, changes, idToken } = await signedIn();
    env.answers.push(new TypeError("Failed to fetch"), tokenAnswer());
    await env.advance(16_000);
    assert.equal(source.getToken(env.nowMs), idToken);
    assert.deepEqual(changes, []);
    await env.advance(2_000);
    assert.equal(env.requests.length, 3);
    assert.equal(source.getToken(env.nowMs), `id-${issued}`);
    assert.deepEqual(changes, [{ signedIn: true, message: "" }]);
  });

  test("renewal failing until the token ends: signed out", async () => {
    const { env, changes } = await signedIn();
    for (let i = 0; i < 10; i += 1) env.answers.push({ status: 503, json: null });
    await env.advance(LIFETIME_S * 1000);
    assert.equal(changes.length, 1);
    assert.equal(changes[0].signedIn, false);
    assert.match(changes[0].message, /could not be renewed \(the sign-in service answered HTTP 503\)/);
  });

  test("a token due for renewal whose timer did not fire (a sleeping tab) is renewed on use", async () => {
    const { env, source } = await signedIn();
    env.nowMs += 25_000; // past the end: no timer ran
    env.answers.push(tokenAnswer());
    assert.equal(await source.freshToken(), `id-${issued}`);
    assert.equal(env.requests.at(-1).fields.grant_type, "refresh_token");
  });

  test("concurrent uses share one renewal (a second would be reuse of a rotated token)", async () => {
    const { env, source } = await signedIn();
    env.nowMs += 25_000;
    env.answers.push(tokenAnswer());
    const tokens = await Promise.all([source.freshToken(), source.freshToken(), source.freshToken()]);
    assert.deepEqual(new Set(tokens), new Set([`id-${issued}`]));
    assert.equal(env.requests.length, 2);
  });
});

describe("the code flow: sign-out", () => {
  test("revokes the refresh token and forgets everything", async () => {
    const { env, source, changes, refreshToken } = await signedIn();
    env.answers.push({ status: 200, json: null });
    await source.signOut();
    const revoke = env.requests.at(-1);
    assert.equal(revoke.url, OIDC.revokeUrl);
    assert.deepEqual(revoke.fields, { token: refreshToken, client_id: "client-1", token_type_hint: "refresh_token" });
    assert.deepEqual(changes, [{ signedIn: false, message: "Signed out." }]);
    assert.equal(source.getToken(env.nowMs), null);
    assert.deepEqual([...env.storage.data.keys()], []);
    await env.advance(60_000);
    assert.equal(env.requests.length, 2, "a renewal was still scheduled");
    assert.deepEqual(env.assigned, []);
  });

  test("a failed revocation still signs out, and says so", async () => {
    const { env, source, changes } = await signedIn();
    env.answers.push(new TypeError("Failed to fetch"));
    await source.signOut();
    assert.equal(source.isSignedIn(env.nowMs), false);
    assert.match(changes[0].message, /could not be revoked/);
  });

  test("ends the provider's session when it has an end-session URL", async () => {
    const env = fakeBrowser();
    const withLogout = { ...OIDC, endSessionUrl: "https://auth.example/logout?client_id=client-1" };
    env.storage.setItem(TOKENS_KEY, JSON.stringify({ idToken: "i", accessToken: null, refreshToken: "r", receivedAtMs: env.nowMs, expiresAtMs: env.nowMs + 20_000 }));
    env.answers.push({ status: 200, json: null });
    const source = createTokenSource({ oidc: withLogout }, env);
    await source.start();
    await source.signOut();
    assert.deepEqual(env.assigned, [withLogout.endSessionUrl]);
  });

  test("a renewal answered after sign-out does not sign the tab back in", async () => {
    const { env, source, changes } = await signedIn();
    const answers = []; // resolvers of the requests in flight, in the order they were sent
    env.fetchFn = (url, init) => {
      env.requests.push({ url, fields: Object.fromEntries(init.body) });
      return new Promise((resolve) => answers.push(resolve));
    };
    env.nowMs += 25_000;
    const pending = source.freshToken();
    await settle();
    const signingOut = source.signOut();
    const [renewal, revocation] = answers;
    renewal({ status: 200, json: async () => tokenAnswer().json });
    revocation({ status: 200, json: async () => null });
    await signingOut;
    assert.equal(await pending, null);
    assert.equal(source.isSignedIn(env.nowMs), false);
    assert.equal(env.storage.getItem(TOKENS_KEY), null);
    assert.deepEqual(changes.at(-1), { signedIn: false, message: "Signed out." });
  });
});
