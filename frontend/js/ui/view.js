// Writes a derived view (state.js's deriveView) into the page. The only module that touches
// the UI page's DOM; element ids are the contract with the end-to-end tests.

import { modelChoices } from "../models.js";
import { phaseLabel } from "../phase.js";

const ENGINE_TEXT = {
  idle: "Camera off",
  camera: "Opening the camera…",
  connecting: "Connecting to the GPU…",
  streaming: "Streaming",
  reconnecting: "Reconnecting…",
  failed: "Stopped",
};

export function findElements(doc) {
  const byId = (id) => {
    const el = doc.getElementById(id);
    if (el === null) throw new Error(`index.html lacks #${id}`);
    return el;
  };
  return Object.fromEntries(
    [
      "start", "stop", "status", "status-text", "phase-announce", "message", "error", "signin",
      "signin-button", "signout", "idle", "idle-text", "keepalive", "models", "engine", "stream", "stats", "read-text",
    ].map((id) => [id, byId(id)]),
  );
}

/** One checkbox per offered model (models.js's list, then config.json's), in that order. */
export function renderModelChoices(container, models, selected) {
  const doc = container.ownerDocument;
  container.querySelector(".model-list").replaceChildren(
    ...modelChoices(models, selected).map((model) => {
      const label = doc.createElement("label");
      label.className = "model";
      const box = doc.createElement("input");
      box.type = "checkbox";
      box.name = "model";
      box.value = model.id;
      box.id = `model-${model.id}`;
      box.checked = model.checked;
      const name = doc.createElement("span");
      name.className = "model-name";
      name.textContent = model.label;
      const hint = doc.createElement("span");
      hint.className = "model-hint";
      hint.textContent = model.hint;
      label.append(box, name, hint);
      return label;
    }),
  );
}

/** Calls onChange(ids) with the checked models whenever a checkbox changes. */
export function onModelChoice(container, onChange) {
  container.addEventListener("change", () => {
    const checked = [...container.querySelectorAll("input[name=model]:checked")].map((el) => el.value);
    onChange(checked);
  });
}

const setText = (el, text) => {
  if (el.textContent !== text) el.textContent = text;
};

function renderStats(el, stats) {
  const s = { sent: 0, results: 0, rttMs: null, dropped: 0, boxes: 0, masks: 0, timeouts: 0, ...stats };
  const rtt = s.rttMs === null ? "–" : `${Math.round(s.rttMs)} ms`;
  el.dataset.sent = String(s.sent);
  el.dataset.results = String(s.results);
  el.dataset.boxes = String(s.boxes);
  el.dataset.masks = String(s.masks);
  el.dataset.dropped = String(s.dropped);
  el.dataset.timeouts = String(s.timeouts);
  el.dataset.rtt = s.rttMs === null ? "" : String(Math.round(s.rttMs));
  const values = { sent: s.sent, results: s.results, rtt, dropped: s.dropped + s.timeouts, boxes: s.boxes, masks: s.masks };
  for (const [key, value] of Object.entries(values)) {
    setText(el.querySelector(`[data-stat=${key}]`), String(value));
  }
}

export function renderView(els, view) {
  els.status.dataset.phase = view.phase;
  setText(els["status-text"], view.statusText);
  setText(els["phase-announce"], phaseLabel(view.phase));
  setText(els.message, view.message);
  els.error.hidden = view.error === null;
  setText(els.error, view.error ?? "");
  els.signin.hidden = !view.signIn;
  els.signout.hidden = !view.signOut;

  els.start.disabled = view.startDisabled;
  els.stop.disabled = view.stopDisabled;
  els.start.setAttribute("aria-busy", String(view.startBusy));
  els.stop.setAttribute("aria-busy", String(view.stopBusy));

  els.idle.hidden = view.idle === null;
  setText(els["idle-text"], view.idle?.text ?? "");
  els.keepalive.disabled = !(view.idle?.canKeepAlive ?? false);

  for (const box of els.models.querySelectorAll("input[name=model]")) box.disabled = view.modelsDisabled;

  els["read-text"].hidden = view.readText === null;
  els["read-text"].disabled = !(view.readText?.enabled ?? false);

  els.stream.dataset.state = view.engine.state;
  const engineText = ENGINE_TEXT[view.engine.state] ?? view.engine.state;
  setText(els.stream, view.engine.message ? `${engineText}: ${view.engine.message}` : engineText);
  renderStats(els.stats, view.stats);
}
