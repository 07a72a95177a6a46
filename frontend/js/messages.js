// The postMessage contract between the UI page and the engine iframe. Pure validation.
//
// UI → engine:  {type: "start", sessionId, models} | {type: "stop"}
//               {type: "read-text"}   one-shot: send the protocol's read_text request now
//               {type: "ticket", id, ticket, wsUrl}          the answer to a ticket-request
//               {type: "ticket-error", id, status, message}  status: the control API's HTTP
//                                                            status, 0 when it was not reached
// engine → UI:  {type: "engine-ready"}
//               {type: "state", state, message}       state ∈ ENGINE_STATES
//               {type: "stats", sent, results, rttMs, dropped, boxes, masks, timeouts, errors}
//               {type: "ticket-request", id, sessionId}  a socket ticket for the next
//                                                        connection (one per connection)
//
// The engine never holds the sign-in token: it asks the UI for a single-use socket ticket
// (POST /api/sessions/{id}/ticket) each time it (re)connects.
//
// Anything else, or anything from the wrong window or origin, is ignored.

export const ENGINE_STATES = Object.freeze([
  "idle", // loaded, not asked to stream
  "camera", // asking for / opening the camera
  "connecting", // socket opening, hello sent
  "streaming", // ready received, frames flowing
  "reconnecting", // unexpected close, waiting to retry
  "failed", // cannot go on without the user (camera denied, 4401, 4429, ...)
]);

const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
const isStringList = (v) => Array.isArray(v) && v.every((x) => typeof x === "string");
const isCount = (v) => Number.isInteger(v) && v >= 0;
const isNumberOrNull = (v) => v === null || (typeof v === "number" && Number.isFinite(v));

/**
 * A message may be handled only when it comes from the expected window AND origin: a page that
 * frames ours, or a window we opened, must not be able to drive the camera or read a ticket.
 */
export function isTrusted(event, expectedSource, expectedOrigin) {
  return (
    expectedSource !== null &&
    expectedSource !== undefined &&
    event.source === expectedSource &&
    typeof expectedOrigin === "string" &&
    expectedOrigin !== "null" &&
    event.origin === expectedOrigin
  );
}

function isWsUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "ws:" || url.protocol === "wss:";
  } catch {
    return false;
  }
}

const isText = (v) => typeof v === "string" && v !== "";
const isRequestId = (v) => Number.isSafeInteger(v) && v > 0;

/** A UI → engine command, or null. */
export function parseEngineCommand(data) {
  if (!isObject(data)) return null;
  switch (data.type) {
    case "stop":
      return { type: "stop" };
    case "read-text":
      return { type: "read-text" };
    case "start": {
      const { sessionId, models } = data;
      if (!isText(sessionId) || !isStringList(models)) return null;
      return { type: "start", sessionId, models: [...models] };
    }
    case "ticket": {
      const { id, ticket, wsUrl } = data;
      if (!isRequestId(id) || !isText(ticket) || !isWsUrl(wsUrl)) return null;
      return { type: "ticket", id, ticket, wsUrl };
    }
    case "ticket-error": {
      const { id, status, message } = data;
      if (!isRequestId(id) || !isCount(status)) return null;
      return { type: "ticket-error", id, status, message: typeof message === "string" ? message : "" };
    }
    default:
      return null;
  }
}

/** An engine → UI report, or null. */
export function parseEngineReport(data) {
  if (!isObject(data)) return null;
  switch (data.type) {
    case "engine-ready":
      return { type: "engine-ready" };
    case "ticket-request":
      if (!isRequestId(data.id) || !isText(data.sessionId)) return null;
      return { type: "ticket-request", id: data.id, sessionId: data.sessionId };
    case "state":
      if (!ENGINE_STATES.includes(data.state)) return null;
      return { type: "state", state: data.state, message: typeof data.message === "string" ? data.message : "" };
    case "stats": {
      const counts = ["sent", "results", "dropped", "boxes", "timeouts", "errors"];
      if (!counts.every((k) => isCount(data[k])) || !isNumberOrNull(data.rttMs)) return null;
      // `masks` came later than the others: an engine that does not send it drew none.
      if (data.masks !== undefined && !isCount(data.masks)) return null;
      const stats = { type: "stats", rttMs: data.rttMs, masks: data.masks ?? 0 };
      for (const k of counts) stats[k] = data[k];
      return stats;
    }
    default:
      return null;
  }
}

/** Two start commands that would open the same stream (used to skip needless reconnects).
 * A new sign-in token is not a new stream: the socket's ticket was spent at its hello. */
export function sameStart(a, b) {
  return (
    a?.type === "start" &&
    b?.type === "start" &&
    a.sessionId === b.sessionId &&
    a.models.length === b.models.length &&
    a.models.every((m, i) => m === b.models[i])
  );
}
