// Where the bearer token comes from. The one module to change for another sign-in flow.
//
// Sources, by /config.json:
// - `devToken`: local mode's development issuer hands the page a token (one-click demo);
// - `oidc`: the authorization code flow with PKCE against Cognito's hosted UI (or the local
//   provider): the page redirects to the provider, takes the code from the redirect, removes
//   it from the address bar at once, and redeems it with a fetch to the token endpoint. The
//   tokens are renewed before they expire with the refresh token, which the provider rotates;
//   sign-out revokes it.
// - neither: signed out, and nothing to sign in with.
//
// Where tokens live: sessionStorage, for this tab only. A reload keeps the user signed in (and
// the GPU session this tab holds), closing the tab forgets everything, and other tabs do not
// share the refresh token (with rotation, two tabs renewing one token would revoke each other).
// Memory alone would resist XSS no better: a script injected into the page can call fetch
// with the tokens wherever they are. The strict Content-Security-Policy is what keeps
// injected script out, and the short refresh validity bounds what a stolen token is worth.

import { backoffDelay } from "./backoff.js";
import {
  TokenError,
  authorizeUrl,
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
} from "./oidc.js";

export const TOKENS_KEY = "spinup.oidc.tokens";
export const PENDING_KEY = "spinup.oidc.pending";
const RETRY_BACKOFF = Object.freeze({ baseMs: 2000, maxMs: 60_000 });
// Treat a development token as expired a little early: a request sent just before exp arrives after.
const EXPIRY_SKEW_MS = 30_000;

/** The JWT's payload as an object, or null when the token is not a readable JWT. */
export function decodeJwtPayload(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    return typeof payload === "object" && payload !== null && !Array.isArray(payload) ? payload : null;
  } catch {
    return null;
  }
}

/** exp as epoch ms, or null when the token has none (or is not a JWT). */
export function tokenExpiresAtMs(token) {
  const exp = decodeJwtPayload(token)?.exp;
  return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : null;
}

/** Present and not (about to be) expired. The server still verifies; this only avoids a 401. */
export function isUsable(token, nowMs) {
  if (typeof token !== "string" || token === "") return false;
  const expiresAt = tokenExpiresAtMs(token);
  return expiresAt === null || expiresAt - EXPIRY_SKEW_MS > nowMs;
}

/**
 * The page's token source:
 *   kind            "dev" | "oidc" | "none"
 *   canSignIn/Out   whether the page offers Sign in / Sign out
 *   start()         → {signedIn, message}: handles a sign-in redirect, resumes stored tokens
 *   getToken(nowMs) the bearer token to send now, or null
 *   freshToken()    → the token, renewed first when it is due (for API calls)
 *   isSignedIn(nowMs)
 *   signIn()        leaves the page for the provider
 *   signOut()       revokes and forgets; the source reports {signedIn: false}
 *   onChange(fn)    fn({signedIn, message}) after a renewal or when the sign-in ends
 * `env` = {storage, location, history, fetchFn, crypto, timers, now, random}; tests pass fakes.
 */
export function createTokenSource(config, env) {
  if (config.devToken) return createDevSource(config.devToken, env.now);
  if (config.oidc) return createOidcSource(config.oidc, env);
  return createDevSource(null, env.now);
}

function createDevSource(devToken, now) {
  const getToken = (nowMs) => (isUsable(devToken, nowMs) ? devToken : null);
  return {
    kind: devToken ? "dev" : "none",
    canSignIn: false,
    canSignOut: false,
    start: async () => ({ signedIn: devToken !== null, message: "" }),
    getToken,
    freshToken: async () => getToken(now()),
    isSignedIn: (nowMs) => getToken(nowMs) !== null,
    signIn: async () => {},
    signOut: async () => {},
    onChange: () => {},
  };
}

function createOidcSource(oidc, env) {
  const { storage, timers } = env;
  const random = env.random ?? Math.random;
  let tokens = parseStoredTokens(storage.getItem(TOKENS_KEY));
  let refreshing = null;
  let failures = 0;
  let timer = null;
  // Bumped by sign-out, so that a renewal answered after it cannot sign the tab back in.
  let generation = 0;
  const listeners = [];
  const emit = (change) => listeners.forEach((fn) => fn(change));

  function schedule(delayMs) {
    timers.clearTimeout(timer);
    timer = null;
    if (tokens?.refreshToken) {
      timer = timers.setTimeout(() => renew(), Math.max(0, delayMs ?? refreshAtMs(tokens) - env.now()));
    }
  }

  function keep(next) {
    tokens = next;
    if (next === null) storage.removeItem(TOKENS_KEY);
    else storage.setItem(TOKENS_KEY, JSON.stringify(next));
    schedule();
  }

  function end(message) {
    generation += 1;
    keep(null);
    emit({ signedIn: false, message });
  }

  async function post(url, body) {
    let response;
    try {
      // No cookies: a public client's requests carry nothing but the form.
      response = await env.fetchFn(url, { method: "POST", body, cache: "no-store", credentials: "omit" });
    } catch (err) {
      throw new TokenError("transient", `the sign-in service cannot be reached (${err.message})`);
    }
    let json = null;
    try {
      json = await response.json();
    } catch {
      json = null;
    }
    return { status: response.status, json };
  }

  /** One renewal at a time; resolves to whether the tokens are fresh afterwards. */
  function renew() {
    if (tokens?.refreshToken == null) return Promise.resolve(false);
    refreshing ??= (async () => {
      const gen = generation;
      const spent = tokens.refreshToken;
      try {
        const { status, json } = await post(oidc.tokenUrl, refreshRequest(oidc, spent));
        const next = parseTokenResponse(status, json, env.now(), spent);
        if (gen !== generation) return false;
        failures = 0;
        keep(next);
        emit({ signedIn: true, message: "" });
        return true;
      } catch (err) {
        if (gen !== generation) return false;
        const stillValid = tokens !== null && env.now() < usableUntilMs(tokens);
        if (err instanceof TokenError && err.kind === "transient" && stillValid) {
          const retryAt = env.now() + backoffDelay(failures, RETRY_BACKOFF, random);
          failures += 1;
          schedule(Math.min(retryAt, usableUntilMs(tokens)) - env.now());
          return false;
        }
        end(`Your sign-in could not be renewed (${err.message}). Sign in again.`);
        return false;
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  const getToken = (nowMs) => (tokens !== null && nowMs < usableUntilMs(tokens) ? tokens.idToken : null);
  const isSignedIn = (nowMs) => tokens !== null && (getToken(nowMs) !== null || tokens.refreshToken !== null);

  async function redeem(result) {
    // The code leaves the address bar (and the history) before anything else happens.
    env.history.replaceState(null, "", withoutRedirectParams(env.location.href));
    const pendingText = storage.getItem(PENDING_KEY);
    storage.removeItem(PENDING_KEY);
    let pending = null;
    try {
      pending = JSON.parse(pendingText);
    } catch {
      pending = null;
    }
    if (result.error) {
      return `Sign-in failed: ${result.description || result.error}.`;
    }
    if (pending === null || typeof pending.verifier !== "string" || pending.state !== result.state) {
      // Not the answer to this tab's request (a forged link, or an old tab): ignore the code.
      return "The sign-in answer did not match this tab's request. Sign in again.";
    }
    try {
      const { status, json } = await post(oidc.tokenUrl, codeRequest(oidc, result.code, pending.verifier));
      failures = 0;
      keep(parseTokenResponse(status, json, env.now()));
      return "";
    } catch (err) {
      return `Sign-in failed: ${err.message}.`;
    }
  }

  return {
    kind: "oidc",
    canSignIn: true,
    canSignOut: true,
    async start() {
      const result = redirectResult(env.location.href);
      if (result !== null) {
        const message = await redeem(result);
        if (message !== "") return { signedIn: false, message };
      }
      if (tokens !== null && env.now() >= refreshAtMs(tokens)) await renew();
      else schedule();
      return { signedIn: isSignedIn(env.now()), message: "" };
    },
    getToken,
    async freshToken() {
      const nowMs = env.now();
      if (tokens !== null && nowMs >= refreshAtMs(tokens)) {
        // The timer may not have fired (a background tab's timers are throttled).
        const renewal = renew();
        if (getToken(nowMs) === null) await renewal;
      }
      return getToken(env.now());
    },
    isSignedIn,
    async signIn() {
      const verifier = randomString(env.crypto);
      const state = randomString(env.crypto);
      const challenge = await pkceChallenge(verifier, env.crypto.subtle);
      // Only for the round trip to the provider; redeem() removes it.
      storage.setItem(PENDING_KEY, JSON.stringify({ state, verifier }));
      env.location.assign(authorizeUrl(oidc, { state, challenge }));
    },
    async signOut() {
      const refreshToken = tokens?.refreshToken ?? null;
      generation += 1;
      keep(null);
      storage.removeItem(PENDING_KEY);
      let message = "Signed out.";
      if (refreshToken !== null && oidc.revokeUrl) {
        try {
          const { status } = await post(oidc.revokeUrl, revokeRequest(oidc, refreshToken));
          if (status !== 200) throw new TokenError("rejected", `HTTP ${status}`);
        } catch (err) {
          message = `Signed out here, but the sign-in could not be revoked (${err.message}); it ends by itself.`;
        }
      }
      emit({ signedIn: false, message });
      // Ends the provider's own session too (Cognito's hosted UI cookie), when configured.
      if (oidc.endSessionUrl) env.location.assign(oidc.endSessionUrl);
    },
    onChange(fn) {
      listeners.push(fn);
    },
  };
}
