// Entry point of engine.html.

import { connectToParent } from "./parent-link.js";
import { createStreamer } from "./streamer.js";
import { createTicketRequests } from "./tickets.js";

const TEXT = {
  idle: "Camera off. It turns on when the GPU is ready.",
  camera: "Opening the camera…",
  connecting: "Connecting to the GPU…",
  streaming: "",
  reconnecting: "Reconnecting…",
  failed: "Stopped.",
};

const statusEl = document.getElementById("engine-status");

function showState(state, message) {
  document.body.dataset.state = state;
  const text = [TEXT[state] ?? "", message].filter(Boolean).join(" ");
  statusEl.textContent = text;
  statusEl.hidden = text === "";
}

let streamer = null;
let tickets = null;
const parent = connectToParent(window, (command) => {
  if (command.type === "start") streamer.start(command);
  else if (command.type === "read-text") streamer.readText();
  else if (command.type === "stop") streamer.stop();
  else tickets.answer(command); // "ticket" | "ticket-error"
});

if (parent === null) {
  showState("failed", "This page runs inside the Spinup UI: open index.html instead.");
} else {
  tickets = createTicketRequests({ post: parent.post });
  streamer = createStreamer({
    win: window,
    video: document.getElementById("video"),
    canvas: document.getElementById("view"),
    report: parent.post,
    onState: showState,
    requestTicket: tickets.request,
  });
  showState("idle", "");
  parent.post({ type: "engine-ready" });
}
