// The engine's side of the postMessage channel: commands in from the UI page, reports out.

import { isTrusted, parseEngineCommand } from "../messages.js";

/**
 * Accepts commands only from the embedding window on this page's own origin, and posts
 * reports only to that origin. Returns null when the engine is not embedded.
 */
export function connectToParent(win, onCommand) {
  if (win.parent === win) return null;
  const origin = win.location.origin;
  win.addEventListener("message", (event) => {
    if (!isTrusted(event, win.parent, origin)) return;
    const command = parseEngineCommand(event.data);
    if (command !== null) onCommand(command);
  });
  return {
    post: (report) => win.parent.postMessage(report, origin),
  };
}
