// Where the bearer token comes from. The one module to change for another sign-in flow.
//
// Sources, first one with a usable token wins:
// 1. config.devToken — local mode's development issuer puts a token in /config.json;
// 2. a token handed back in the URL fragment by a hosted sign-in page (OAuth implicit flow:
//    "#id_token=…" or "#access_token=…"), kept in sessionStorage for this tab.
// With neither, the UI shows "Sign in required" and, when config.loginUrl is set, a link to it.

const STORAGE_KEY = "spinup.token";
// Treat a token as expired a little early: a request sent just before exp arrives after it.
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
 * The token in a sign-in redirect's fragment. The ID token is preferred: it carries `aud`,
 * which the inference backend checks; Cognito access tokens carry only `client_id`.
 */
export function tokenFromFragment(hash) {
  const params = new URLSearchParams((hash ?? "").replace(/^#/, ""));
  return params.get("id_token") || params.get("access_token") || null;
}

/**
 * The page's token source: {kind, signInUrl, getToken(nowMs), forget()}.
 * kind is "dev" or "session"; getToken returns null when the user must sign in.
 * `env` = {storage, location, history} so that tests can pass fakes.
 */
export function createTokenSource(config, env) {
  const signInUrl = config.loginUrl ?? null;
  if (config.devToken) {
    return {
      kind: "dev",
      signInUrl,
      getToken: (nowMs) => (isUsable(config.devToken, nowMs) ? config.devToken : null),
      forget: () => {},
    };
  }
  const fromFragment = tokenFromFragment(env.location.hash);
  if (fromFragment !== null) {
    env.storage.setItem(STORAGE_KEY, fromFragment);
    // Keep the token out of the address bar, the history and any copied link.
    env.history.replaceState(null, "", env.location.pathname + env.location.search);
  }
  return {
    kind: "session",
    signInUrl,
    getToken: (nowMs) => {
      const token = env.storage.getItem(STORAGE_KEY);
      return isUsable(token, nowMs) ? token : null;
    },
    forget: () => env.storage.removeItem(STORAGE_KEY),
  };
}
