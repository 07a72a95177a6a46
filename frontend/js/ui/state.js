// The UI page's state: a reducer over events, and the view and engine command derived from a
// state and a clock. Pure: the DOM, timers and fetch live in controller.js and view.js.

import { backoffDelay } from "../backoff.js";
import { resolveWsUrl } from "../config.js";
import { readsText } from "../models.js";
import {
  STARTING_PHASES,
  idleCountdown,
  nextStartClock,
  parseStopAt,
  pollIntervalMs,
  statusLine,
} from "../phase.js";

export class StatusError extends Error {}

const optionalNumber = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** GET /api/status's body → the fields the UI uses; throws StatusError without a phase. */
export function parseStatus(json, pageHref) {
  if (typeof json !== "object" || json === null || typeof json.phase !== "string") {
    throw new StatusError("The control API sent a status without a phase");
  }
  let wsUrl = null;
  if (typeof json.ws_url === "string" && json.ws_url !== "") {
    try {
      wsUrl = resolveWsUrl(json.ws_url, pageHref);
    } catch {
      wsUrl = null; // the config's wsUrl is the fallback
    }
  }
  return {
    phase: json.phase,
    instanceState: typeof json.instance_state === "string" ? json.instance_state : null,
    wsUrl,
    etaS: optionalNumber(json.eta_s),
    stopAtMs: parseStopAt(json.stop_at),
    message: typeof json.message === "string" ? json.message : "",
    sessions: json.sessions ?? null,
  };
}

export function initialState({ models, sessionId = null, signedIn = true }) {
  return {
    signedIn,
    canSignIn: false, // the token source can sign in (code flow) / out
    canSignOut: false,
    signOutMessage: null, // why the user is signed out, when there is more to say
    status: null,
    statusAtMs: null,
    startedAtMs: null,
    pollFailures: 0,
    pollError: null,
    sessionId,
    busy: null, // "start" | "stop" | "keepalive" while that request is out
    error: null,
    notice: null,
    models: [...models],
    engineReady: false,
    engine: { state: "idle", message: "" },
    stats: null,
  };
}

function actionFailed(state, { action, status, message }) {
  const next = { ...state, busy: null, error: message };
  if (status === 401) return { ...next, signedIn: false };
  // The session is gone on the server (expired, or released from another tab): forget it.
  if (status === 404 && (action === "keepalive" || action === "stop")) {
    return { ...next, sessionId: null, error: null, notice: "Your session had already ended." };
  }
  return next;
}

/** The next state after `event` at `nowMs`. Unknown events leave the state as it was. */
export function reduce(state, event, nowMs) {
  switch (event.type) {
    case "status":
      return {
        ...state,
        signedIn: true,
        signOutMessage: null,
        status: event.status,
        statusAtMs: nowMs,
        startedAtMs: nextStartClock(state.startedAtMs, event.status.phase, nowMs),
        pollFailures: 0,
        pollError: null,
      };
    case "status-failed":
      if (event.status === 401) return { ...state, signedIn: false, pollError: null };
      return { ...state, pollFailures: state.pollFailures + 1, pollError: event.message };
    case "busy":
      return { ...state, busy: event.action, error: null, notice: null };
    case "session-created": {
      const status = state.status && event.phase ? { ...state.status, phase: event.phase } : state.status;
      return {
        ...state,
        busy: null,
        sessionId: event.sessionId,
        status,
        startedAtMs: status ? nextStartClock(state.startedAtMs, status.phase, nowMs) : state.startedAtMs,
      };
    }
    case "session-released":
      return { ...state, busy: null, sessionId: null };
    case "keepalive-sent":
      return { ...state, busy: null, notice: "Keeping the GPU running." };
    case "action-failed":
      return actionFailed(state, event);
    case "models":
      return { ...state, models: [...event.models] };
    case "signed-out":
      return { ...state, signedIn: false, signOutMessage: event.message || null };
    case "signed-in":
      return { ...state, signedIn: true, signOutMessage: null };
    case "sign-in-options":
      return { ...state, canSignIn: event.canSignIn, canSignOut: event.canSignOut };
    case "engine-retry":
      return { ...state, engine: { state: "idle", message: "" } };
    case "engine-ready":
      return { ...state, engineReady: true };
    case "engine-state":
      return { ...state, engine: { state: event.state, message: event.message } };
    case "engine-stats":
      return { ...state, stats: event.stats };
    default:
      return state;
  }
}

const HIDDEN_POLL_MS = 10_000;

/**
 * How long until the next status poll: the phase's interval, slower in a hidden tab, and
 * exponential backoff with jitter (starting from that interval) after failed polls.
 */
export function pollDelayMs(state, { hidden = false, random = Math.random } = {}) {
  const base = hidden ? HIDDEN_POLL_MS : pollIntervalMs(state.status?.phase);
  if (state.pollFailures === 0) return base;
  return backoffDelay(state.pollFailures - 1, { baseMs: base, maxMs: 30_000 }, random);
}

/** What the page shows, derived from the state at `nowMs`. */
export function deriveView(state, nowMs) {
  const phase = state.status?.phase ?? "unknown";
  const hasSession = state.sessionId !== null;
  const known = state.status !== null;
  // Start joins (or wakes) the GPU; once this tab holds a session for a GPU on its way up or
  // up, another Start would only add a second session, unless the engine failed and Start
  // means "try the camera and socket again" (see retryEngine).
  const holding = hasSession && (STARTING_PHASES.includes(phase) || phase === "ready") && !retryEngine(state);
  const stopAtMs = state.status?.stopAtMs ?? null;
  const idleText = stopAtMs !== null && phase !== "stopped" && phase !== "stopping" ? idleCountdown(stopAtMs, nowMs) : null;

  let message = state.status?.message ?? "";
  if (!state.signedIn) message = state.signOutMessage ?? "Sign in required.";
  else if (state.pollError !== null) message = `${state.pollError} Retrying…`;
  else if (state.notice !== null && message === "") message = state.notice;

  return {
    phase,
    statusText: known
      ? statusLine({ phase, etaS: state.status.etaS, etaReceivedAtMs: state.statusAtMs, startedAtMs: state.startedAtMs }, nowMs)
      : statusLine({ phase }, nowMs),
    message,
    // Engine failures (camera denied, socket refused) need the user, so they show as errors too.
    error: state.error ?? (state.engine.state === "failed" && state.engine.message ? state.engine.message : null),
    signIn: !state.signedIn && state.canSignIn,
    signOut: state.signedIn && state.canSignOut,
    startDisabled: !state.signedIn || !known || state.busy !== null || holding || state.models.length === 0,
    stopDisabled: !state.signedIn || state.busy !== null || !hasSession,
    startBusy: state.busy === "start",
    stopBusy: state.busy === "stop",
    idle: idleText === null ? null : { text: idleText, canKeepAlive: hasSession && state.busy === null },
    modelsDisabled: state.busy !== null,
    // "Read text" asks the streaming engine's session to re-read every text region.
    readText: readsText(state.models) ? { enabled: state.engine.state === "streaming" } : null,
    engine: state.engine,
    stats: state.stats,
  };
}

/** Start, in this state, retries the failed engine of this tab's session instead of a new session. */
export function retryEngine(state) {
  return state.sessionId !== null && state.engine.state === "failed";
}

/**
 * What the engine should be doing: stream while this tab holds a session on a ready GPU. The
 * engine asks for a socket ticket per connection (its socket URL comes with the ticket).
 */
export function engineCommand(state) {
  const streaming =
    state.signedIn && state.status?.phase === "ready" && state.sessionId !== null && state.models.length > 0;
  return streaming ? { type: "start", sessionId: state.sessionId, models: [...state.models] } : { type: "stop" };
}
