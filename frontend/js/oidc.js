// OAuth 2.0 authorization code flow with PKCE for a public browser client (RFC 6749, RFC 7636,
// RFC 7009, RFC 9700): URLs, request bodies, response parsing and the refresh schedule.
// Pure: randomness, hashing and the clock are parameters; auth.js does the I/O.

export class TokenError extends Error {
  /**
   * kind: "rejected" (the provider said no: signed out), "transient" (network or 5xx: try
   * again while the token lasts) or "invalid" (an answer we cannot use).
   */
  constructor(kind, message) {
    super(message);
    this.name = "TokenError";
    this.kind = kind;
  }
}

// Refresh at 80 % of a token's life, but no earlier than 5 min before it ends: a 1-hour
// Cognito token is renewed 5 min early (room for retries and throttled background timers),
// a 20-second test token after 16 s.
const REFRESH_AT = 0.8;
const MAX_REFRESH_LEAD_MS = 5 * 60_000;
// Stop sending a token a little before it ends: a request sent just before exp arrives after.
const USABLE_UNTIL = 0.95;
const MAX_USABLE_MARGIN_MS = 30_000;

/** Unpadded base64url of bytes (RFC 4648 §5), as PKCE and `state` use. */
export function base64url(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A random URL-safe string from `byteLength` bytes of `crypto.getRandomValues`. */
export function randomString(crypto, byteLength = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(byteLength)));
}

/** S256 code challenge: BASE64URL(SHA-256(ASCII(verifier))) (RFC 7636 §4.2). */
export async function pkceChallenge(verifier, subtle) {
  if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) {
    throw new RangeError("a PKCE verifier is 43-128 unreserved characters");
  }
  const digest = await subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** The provider's authorize URL for this sign-in attempt. */
export function authorizeUrl(oidc, { state, challenge }) {
  const url = new URL(oidc.authorizeUrl);
  const params = {
    response_type: "code",
    client_id: oidc.clientId,
    redirect_uri: oidc.redirectUri,
    scope: oidc.scopes.join(" "),
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  };
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return url.href;
}

const REDIRECT_PARAMS = ["code", "state", "error", "error_description", "error_uri", "iss", "session_state"];

/**
 * What the provider sent back in this page's URL: {code, state}, {error, description, state},
 * or null when the URL is not a sign-in redirect.
 */
export function redirectResult(href) {
  const params = new URL(href).searchParams;
  const state = params.get("state");
  if (params.has("error")) {
    return { error: params.get("error"), description: params.get("error_description") ?? "", state };
  }
  if (params.has("code")) return { code: params.get("code"), state };
  return null;
}

/** This page's URL without the sign-in parameters (for history.replaceState). */
export function withoutRedirectParams(href) {
  const url = new URL(href);
  for (const key of REDIRECT_PARAMS) url.searchParams.delete(key);
  return url.pathname + url.search + url.hash;
}

const form = (params) => new URLSearchParams(params);

/** Body of the token request that redeems a code (RFC 6749 §4.1.3 + RFC 7636 §4.5). */
export function codeRequest(oidc, code, verifier) {
  return form({
    grant_type: "authorization_code",
    client_id: oidc.clientId,
    code,
    redirect_uri: oidc.redirectUri,
    code_verifier: verifier,
  });
}

/** Body of the token request that renews the tokens (RFC 6749 §6). */
export function refreshRequest(oidc, refreshToken) {
  return form({ grant_type: "refresh_token", client_id: oidc.clientId, refresh_token: refreshToken });
}

/** Body of the revocation request (RFC 7009 §2.1). */
export function revokeRequest(oidc, refreshToken) {
  return form({ token: refreshToken, client_id: oidc.clientId, token_type_hint: "refresh_token" });
}

const nonEmpty = (v) => typeof v === "string" && v !== "";

/**
 * The tokens in a token endpoint answer, received at `nowMs`:
 * {idToken, accessToken, refreshToken, receivedAtMs, expiresAtMs}. With rotation the answer
 * carries a new refresh token, which replaces `previousRefreshToken`; without, the old one
 * stays. Throws TokenError.
 */
export function parseTokenResponse(status, json, nowMs, previousRefreshToken = null) {
  const body = typeof json === "object" && json !== null ? json : {};
  if (status >= 500 || status === 429) {
    throw new TokenError("transient", `the sign-in service answered HTTP ${status}`);
  }
  if (status !== 200) {
    const why = nonEmpty(body.error) ? body.error : `HTTP ${status}`;
    const detail = nonEmpty(body.error_description) ? `: ${body.error_description}` : "";
    throw new TokenError("rejected", `${why}${detail}`);
  }
  const expiresIn = body.expires_in;
  if (!nonEmpty(body.id_token) || !(typeof expiresIn === "number" && expiresIn > 0)) {
    throw new TokenError("invalid", "the token response lacks id_token or expires_in");
  }
  return {
    idToken: body.id_token,
    accessToken: nonEmpty(body.access_token) ? body.access_token : null,
    refreshToken: nonEmpty(body.refresh_token) ? body.refresh_token : previousRefreshToken,
    receivedAtMs: nowMs,
    expiresAtMs: nowMs + expiresIn * 1000,
  };
}

const lifetimeMs = (tokens) => Math.max(0, tokens.expiresAtMs - tokens.receivedAtMs);

/** When to renew: 80 % into the token's life, at most 5 min before it ends. */
export function refreshAtMs(tokens) {
  const lead = Math.min(lifetimeMs(tokens) * (1 - REFRESH_AT), MAX_REFRESH_LEAD_MS);
  return tokens.expiresAtMs - lead;
}

/** Until when the token may be sent: 95 % into its life, at most 30 s before it ends. */
export function usableUntilMs(tokens) {
  const margin = Math.min(lifetimeMs(tokens) * (1 - USABLE_UNTIL), MAX_USABLE_MARGIN_MS);
  return tokens.expiresAtMs - margin;
}

/** Stored tokens read back (sessionStorage holds strings), or null when not a token set. */
export function parseStoredTokens(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const ok =
    typeof value === "object" &&
    value !== null &&
    nonEmpty(value.idToken) &&
    (value.refreshToken === null || nonEmpty(value.refreshToken)) &&
    Number.isFinite(value.receivedAtMs) &&
    Number.isFinite(value.expiresAtMs);
  return ok ? value : null;
}
