// The control API client (DESIGN.md §3). Every failure is an ApiError with the text to show.

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
 * {status(), createSession(models), keepalive(id), releaseSession(id)}; each resolves to the
 * answer's JSON body or rejects with ApiError. `getToken()` returns (or resolves to) the bearer
 * token or null.
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
    createSession: (models) => call("POST", "/sessions", { models }),
    keepalive: (id) => call("POST", `${sessionPath(id)}/keepalive`),
    releaseSession: (id) => call("DELETE", sessionPath(id)),
  };
}
