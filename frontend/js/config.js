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

/** Validated config: {apiBase, wsUrl, devToken, loginUrl}; throws ConfigError. */
export function parseConfig(json, pageHref) {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError("config.json must be a JSON object");
  }
  const apiBase = optionalString(json, "apiBase");
  if (apiBase === null) throw new ConfigError('config.json: "apiBase" is required');
  const wsUrl = optionalString(json, "wsUrl");
  const loginUrl = optionalString(json, "loginUrl");
  return {
    // Resolved against the page so a CloudFront path prefix keeps working.
    apiBase: new URL(apiBase, pageHref).href.replace(/\/+$/, ""),
    wsUrl: wsUrl === null ? null : resolveWsUrl(wsUrl, pageHref),
    devToken: optionalString(json, "devToken"),
    loginUrl: loginUrl === null ? null : new URL(loginUrl, pageHref).href,
  };
}

export async function loadConfig(fetchFn, pageHref, path = "config.json") {
  let response;
  try {
    response = await fetchFn(new URL(path, pageHref), { cache: "no-store" });
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
