// /config.json: where the control API and the inference socket are, and the deployment's own
// models. Parsing is pure.

import { MODELS, MODEL_ID } from "./models.js";

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

const BUILT_IN = new Set(MODELS.map((m) => m.id));

/**
 * The models the deployment serves beyond the built-in ones (config.json "models", written
 * from gpu_host/models/user/user_models.json): [{id, label, hint}], in the file's order.
 * `label` defaults to the id and `hint` to "".
 */
export function parseModels(json) {
  const models = json.models;
  if (models === undefined || models === null) return [];
  if (!Array.isArray(models)) throw new ConfigError('config.json: "models" must be a list');
  const seen = new Set();
  return models.map((model, i) => {
    const where = `config.json: "models"[${i}]`;
    if (!isObject(model)) throw new ConfigError(`${where} must be an object`);
    const { id } = model;
    if (typeof id !== "string" || !MODEL_ID.test(id)) {
      throw new ConfigError(`${where}.id must be a model name matching ${MODEL_ID.source}, got ${JSON.stringify(id)}`);
    }
    if (BUILT_IN.has(id)) throw new ConfigError(`${where}.id "${id}" is a built-in model's`);
    if (seen.has(id)) throw new ConfigError(`${where}.id "${id}" is listed twice`);
    seen.add(id);
    for (const key of ["label", "hint"]) {
      if (model[key] !== undefined && model[key] !== null && typeof model[key] !== "string") {
        throw new ConfigError(`${where}.${key} must be a string`);
      }
    }
    return { id, label: model.label || id, hint: model.hint ?? "" };
  });
}

/** Validated config: {apiBase, wsUrl, devToken, oidc, models}; throws ConfigError. */
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
    models: parseModels(json),
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
