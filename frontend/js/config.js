// /config.json: where the control API and the inference socket are. Parsing is pure.

export class ConfigError extends Error {}

const optionalString = (json, key) => {
  const v = json[key];
  if (v === undefined || v === null || v === "") return null;
  if (typeof v !== "string") throw new ConfigError(`config.json: "${key}" must be a string`);
  return v;
};

/**
 * A socket URL the browser can open: relative URLs resolve against the page, and http(s)
 * becomes ws(s), so a deployment may write "/ws/inference" and let the page's host decide.
 */
export function resolveWsUrl(url, pageHref) {
  const resolved = new URL(url, pageHref);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  else if (resolved.protocol === "https:") resolved.protocol = "wss:";
  if (resolved.protocol !== "ws:" && resolved.protocol !== "wss:") {
    throw new ConfigError(`not a WebSocket URL: ${url}`);
  }
  return resolved.href;
}

const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);

/** An absolute http(s) URL; http only for a loopback host (the local mode's provider). */
function endpointUrl(oidc, key, { required = true } = {}) {
  const value = optionalString(oidc, key);
  if (value === null) {
    if (required) throw new ConfigError(`config.json: "oidc.${key}" is required`);
    return null;
  }
  let url;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`config.json: "oidc.${key}" must be an absolute URL`);
  }
  const loopback = url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]";
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new ConfigError(`config.json: "oidc.${key}" must use https`);
  }
  return url.href;
}

/**
 * The sign-in provider for the code flow: {authorizeUrl, tokenUrl, revokeUrl, endSessionUrl,
 * clientId, redirectUri, scopes}; null when config.json has no "oidc".
 */
export function parseOidc(json) {
  const oidc = json.oidc;
  if (oidc === undefined || oidc === null) return null;
  if (!isObject(oidc)) throw new ConfigError('config.json: "oidc" must be an object');
  const clientId = optionalString(oidc, "clientId");
  if (clientId === null) throw new ConfigError('config.json: "oidc.clientId" is required');
  const scopes = oidc.scopes ?? ["openid"];
  if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === "string" && /^[\x21-\x7e]+$/.test(s))) {
    throw new ConfigError('config.json: "oidc.scopes" must be a list of scope names');
  }
  return {
    authorizeUrl: endpointUrl(oidc, "authorizeUrl"),
    tokenUrl: endpointUrl(oidc, "tokenUrl"),
    revokeUrl: endpointUrl(oidc, "revokeUrl"),
    endSessionUrl: endpointUrl(oidc, "endSessionUrl", { required: false }),
    clientId,
    redirectUri: endpointUrl(oidc, "redirectUri"),
    scopes: [...scopes],
  };
}

/** Validated config: {apiBase, wsUrl, devToken, oidc}; throws ConfigError. */
export function parseConfig(json, pageHref) {
  if (!isObject(json)) {
    throw new ConfigError("config.json must be a JSON object");
  }
  const apiBase = optionalString(json, "apiBase");
  if (apiBase === null) throw new ConfigError('config.json: "apiBase" is required');
  const wsUrl = optionalString(json, "wsUrl");
  return {
    // Resolved against the page so a CloudFront path prefix keeps working.
    apiBase: new URL(apiBase, pageHref).href.replace(/\/+$/, ""),
    wsUrl: wsUrl === null ? null : resolveWsUrl(wsUrl, pageHref),
    devToken: optionalString(json, "devToken"),
    oidc: parseOidc(json),
  };
}

/**
 * config.json next to the page. The page's own `?user=` is passed on: the local mode then
 * hands out a development token for that user, so that two tabs can be two users (a
 * deployment ignores it).
 */
export function configUrl(pageHref, path = "config.json") {
  const url = new URL(path, pageHref);
  const user = new URL(pageHref).searchParams.get("user");
  if (user !== null) url.searchParams.set("user", user);
  return url;
}

export async function loadConfig(fetchFn, pageHref, path = "config.json") {
  let response;
  try {
    response = await fetchFn(configUrl(pageHref, path), { cache: "no-store" });
  } catch (err) {
    throw new ConfigError(`Could not load ${path}: ${err.message}`);
  }
  if (!response.ok) throw new ConfigError(`Could not load ${path}: HTTP ${response.status}`);
  let json;
  try {
    json = await response.json();
  } catch {
    throw new ConfigError(`${path} is not valid JSON`);
  }
  return parseConfig(json, pageHref);
}
