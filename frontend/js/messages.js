// The postMessage contract between the UI page and the engine iframe. Pure validation.
//
// UI → engine:  {type: "start", wsUrl, token, models} | {type: "stop"}
// engine → UI:  {type: "engine-ready"}
//               {type: "state", state, message}       state ∈ ENGINE_STATES
//               {type: "stats", sent, results, rttMs, dropped, boxes, timeouts, errors}
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
 * frames ours, or a window we opened, must not be able to drive the camera or read the token.
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

/** A UI → engine command, or null. */
export function parseEngineCommand(data) {
  if (!isObject(data)) return null;
  if (data.type === "stop") return { type: "stop" };
  if (data.type === "start") {
    const { wsUrl, token, models } = data;
    if (!isWsUrl(wsUrl) || typeof token !== "string" || token === "" || !isStringList(models)) return null;
    return { type: "start", wsUrl, token, models: [...models] };
  }
  return null;
}

/** An engine → UI report, or null. */
export function parseEngineReport(data) {
  if (!isObject(data)) return null;
  switch (data.type) {
    case "engine-ready":
      return { type: "engine-ready" };
    case "state":
      if (!ENGINE_STATES.includes(data.state)) return null;
      return { type: "state", state: data.state, message: typeof data.message === "string" ? data.message : "" };
    case "stats": {
      const counts = ["sent", "results", "dropped", "boxes", "timeouts", "errors"];
      if (!counts.every((k) => isCount(data[k])) || !isNumberOrNull(data.rttMs)) return null;
      const stats = { type: "stats", rttMs: data.rttMs };
      for (const k of counts) stats[k] = data[k];
      return stats;
    }
    default:
      return null;
  }
}

/**
 * Two start commands for the same stream (socket URL and models). The token may differ: a
 * renewed token is for the next (re)connection, not a reason to drop the open socket.
 */
export function sameStream(a, b) {
  return (
    a?.type === "start" &&
    b?.type === "start" &&
    a.wsUrl === b.wsUrl &&
    a.models.length === b.models.length &&
    a.models.every((m, i) => m === b.models[i])
  );
}

/** Two identical start commands (used to skip needless deliveries). */
export function sameStart(a, b) {
  return sameStream(a, b) && a.token === b.token;
}
