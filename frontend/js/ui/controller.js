// The UI page's edges: config, control API calls, the status poll loop, timers, and the
// engine link. Decisions are made by state.js from the state and the clock.

import { createTokenSource } from "../auth.js";
import { loadConfig } from "../config.js";
import { DEFAULT_MODELS, MODELS, normalizeSelection, offeredModels } from "../models.js";
import { ApiError, createControlApi, parseTicket } from "./api.js";
import { createEngineLink } from "./engine-link.js";
import { createSessionStore } from "./session-store.js";
import { deriveView, engineCommand, initialState, parseStatus, pollDelayMs, reduce, retryEngine } from "./state.js";
import { findElements, onModelChoice, renderModelChoices, renderView } from "./view.js";

// Wall-clock time: stop_at and token expiry are epoch times.
const now = () => Date.now();

export async function startUi({ win, doc, fetchFn }) {
  const els = findElements(doc);
  const sessions = createSessionStore(win.sessionStorage);
  let state = initialState({ models: DEFAULT_MODELS, sessionId: sessions.load() });
  let config = null;
  let tokens = null;
  let signInChecked = false; // the token source has handled a sign-in redirect, if any
  let api = null;
  let models = MODELS; // the built-in ones, then config.json's once it has loaded

  const token = () => tokens?.getToken(now()) ?? null;

  const link = createEngineLink(win, els.engine, (report) => {
    if (report.type === "ticket-request") answerTicketRequest(report);
    else if (report.type === "engine-ready") dispatch({ type: "engine-ready" });
    else if (report.type === "state") dispatch({ type: "engine-state", state: report.state, message: report.message });
    else if (report.type === "stats") dispatch({ type: "engine-stats", stats: report });
  });

  function render() {
    if (state.signedIn && signInChecked && !tokens.isSignedIn(now())) {
      state = reduce(state, { type: "signed-out" }, now());
    }
    renderView(els, deriveView(state, now()));
    link.command(engineCommand(state));
  }

  function dispatch(event) {
    state = reduce(state, event, now());
    sessions.save(state.sessionId);
    render();
  }

  // ---- socket tickets: the engine asks for one per connection; this page holds the token ----
  async function answerTicketRequest({ id, sessionId }) {
    const reply = (message) => link.post({ id, ...message });
    if (api === null || sessionId !== state.sessionId) {
      reply({ type: "ticket-error", status: 409, message: "That session is no longer this page's." });
      return;
    }
    try {
      const { ticket, wsUrl } = parseTicket(await api.ticket(sessionId), win.location.href);
      reply({ type: "ticket", ticket, wsUrl });
    } catch (err) {
      reply({ type: "ticket-error", status: err instanceof ApiError ? err.status : 0, message: err.message });
    }
  }

  // ---- status polling: one request at a time; pollNow() cuts the wait short -------------
  let pollTimer = null;
  let polling = false;
  let pollAgain = false;

  async function poll() {
    if (polling) {
      pollAgain = true;
      return;
    }
    win.clearTimeout(pollTimer);
    polling = true;
    try {
      dispatch({ type: "status", status: parseStatus(await api.status(), win.location.href) });
    } catch (err) {
      dispatch({ type: "status-failed", status: err instanceof ApiError ? err.status : 0, message: err.message });
    } finally {
      polling = false;
    }
    if (pollAgain) {
      pollAgain = false;
      poll();
    } else if (state.signedIn) {
      pollTimer = win.setTimeout(poll, pollDelayMs(state, { hidden: doc.hidden }));
    }
  }

  // ---- actions ----------------------------------------------------------------------------
  async function act(action, request, onDone) {
    if (state.busy !== null) return;
    dispatch({ type: "busy", action });
    try {
      onDone(await request());
    } catch (err) {
      const status = err instanceof ApiError ? err.status : 0;
      dispatch({ type: "action-failed", action, status, message: err.message });
    }
    poll();
  }

  function start() {
    if (retryEngine(state)) {
      dispatch({ type: "engine-retry" });
      link.retry();
      return;
    }
    act("start", () => api.createSession(), (body) => {
      if (typeof body.session_id !== "string" || body.session_id === "") {
        throw new ApiError(0, "The control API did not return a session id");
      }
      dispatch({ type: "session-created", sessionId: body.session_id, phase: body.phase ?? null });
    });
  }

  const stop = () =>
    act("stop", () => api.releaseSession(state.sessionId), () => dispatch({ type: "session-released" }));

  const keepalive = () =>
    act("keepalive", () => api.keepalive(state.sessionId), () => dispatch({ type: "keepalive-sent" }));

  async function signIn() {
    try {
      await tokens.signIn(); // leaves the page
    } catch (err) {
      dispatch({ type: "action-failed", action: "sign-in", status: 0, message: `Cannot start the sign-in: ${err.message}` });
    }
  }

  async function signOut() {
    // The GPU session goes first, while the token still works; the sign-in ends regardless.
    if (state.sessionId !== null) {
      try {
        await api.releaseSession(state.sessionId);
      } catch {
        // An idle session stops by itself.
      }
      dispatch({ type: "session-released" });
    }
    await tokens.signOut();
  }

  els.start.addEventListener("click", start);
  els["signin-button"].addEventListener("click", signIn);
  els.signout.addEventListener("click", signOut);
  els.stop.addEventListener("click", stop);
  els.keepalive.addEventListener("click", keepalive);
  els["read-text"].addEventListener("click", () => link.post({ type: "read-text" }));
  renderModelChoices(els.models, models, state.models);
  onModelChoice(els.models, (ids) => dispatch({ type: "models", models: normalizeSelection(ids, models) }));
  doc.addEventListener("visibilitychange", () => {
    if (!doc.hidden && api !== null) poll();
  });
  // The countdowns and the elapsed clock move without new data.
  win.setInterval(render, 1000);
  render();

  try {
    config = await loadConfig(fetchFn, win.location.href);
  } catch (err) {
    dispatch({ type: "action-failed", action: "config", status: 0, message: err.message });
    return;
  }
  if (config.models.length > 0) {
    models = offeredModels(config.models);
    renderModelChoices(els.models, models, state.models);
  }
  tokens = createTokenSource(config, {
    storage: win.sessionStorage,
    location: win.location,
    history: win.history,
    fetchFn,
    crypto: win.crypto,
    timers: win,
    now,
  });
  tokens.onChange((change) => {
    if (!change.signedIn) {
      dispatch({ type: "signed-out", message: change.message });
      return;
    }
    // A renewed token reaches the engine through render() (for its next reconnection).
    const wasSignedIn = state.signedIn;
    dispatch({ type: "signed-in" });
    if (!wasSignedIn) poll(); // the API had refused the old token; try again with the new one
  });
  dispatch({ type: "sign-in-options", canSignIn: tokens.canSignIn, canSignOut: tokens.canSignOut });
  api = createControlApi({ apiBase: config.apiBase, getToken: () => tokens.freshToken(), fetchFn });
  const signedIn = await tokens.start();
  signInChecked = true;
  if (!signedIn.signedIn) {
    dispatch({ type: "signed-out", message: signedIn.message });
    return;
  }
  poll();
}
