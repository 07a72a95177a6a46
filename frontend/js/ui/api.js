// The control API client (docs/architecture.md, "Control API"). Every failure is an ApiError
// with the text to show.

import { resolveWsUrl } from "../config.js";

export class ApiError extends Error {
  /** status 0 means the request never got an HTTP answer (network, CORS, DNS). */
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/**
 * The message in an error body: FastAPI's {"detail": "..."}, or its validation list
 * {"detail": [{"loc": [...], "msg": "..."}]}; falls back to the HTTP status.
 */
export function errorDetail(status, body) {
  const detail = body && typeof body === "object" ? body.detail : undefined;
  if (typeof detail === "string" && detail.trim() !== "") return detail;
  if (Array.isArray(detail) && detail.length > 0) {
    return detail
      .map((d) => {
        if (typeof d === "string") return d;
        const where = Array.isArray(d?.loc) ? d.loc.filter((x) => x !== "body").join(".") : "";
        return where ? `${where}: ${d?.msg ?? "invalid"}` : String(d?.msg ?? "invalid");
      })
      .join("; ");
  }
  const reasons = { 401: "Sign in required", 403: "Not allowed", 404: "Not found", 429: "Too many requests" };
  return reasons[status] ?? `The control API answered HTTP ${status}`;
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/**
 * POST /api/sessions/{id}/ticket's body → {ticket, wsUrl, expiresAt}, the socket URL resolved
 * against the page; throws ApiError (status 0) when the body is not a ticket.
 */
export function parseTicket(json, pageHref) {
  const ticket = json?.ticket;
  if (typeof ticket !== "string" || ticket === "" || typeof json.ws_url !== "string") {
    throw new ApiError(0, "The control API sent no socket ticket");
  }
  let wsUrl;
  try {
    wsUrl = resolveWsUrl(json.ws_url, pageHref);
  } catch {
    throw new ApiError(0, `The control API sent an unusable socket URL: ${json.ws_url}`);
  }
  const expiresAt = typeof json.expires_at === "number" ? json.expires_at : null;
  return { ticket, wsUrl, expiresAt };
}

/**
 * {status(), createSession(), ticket(id), keepalive(id), releaseSession(id)}; each
 * resolves to the answer's JSON body or rejects with ApiError. `getToken()` returns (or
 * resolves to) the bearer token or null.
 */
export function createControlApi({ apiBase, getToken, fetchFn }) {
  async function call(method, path, body) {
    const token = await getToken();
    if (token === null) throw new ApiError(401, "Sign in required");
    const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetchFn(`${apiBase}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (err) {
      throw new ApiError(0, `Cannot reach the control API (${err.message})`);
    }
    const json = await readJson(response);
    if (!response.ok) throw new ApiError(response.status, errorDetail(response.status, json));
    return json ?? {};
  }

  const sessionPath = (id) => `/sessions/${encodeURIComponent(id)}`;
  return {
    status: () => call("GET", "/status"),
    createSession: () => call("POST", "/sessions"),
    ticket: (id) => call("POST", `${sessionPath(id)}/ticket`),
    keepalive: (id) => call("POST", `${sessionPath(id)}/keepalive`),
    releaseSession: (id) => call("DELETE", sessionPath(id)),
  };
}
