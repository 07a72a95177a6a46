// The UI's side of the postMessage channel to the engine iframe.

import { isTrusted, parseEngineReport, sameStart } from "../messages.js";

/**
 * Sends commands to the engine and hands its validated reports to `onReport`.
 * Only the latest command matters (newest wins, one slot): it is held until the engine says
 * "engine-ready", re-sent if the iframe reloads, and not repeated while unchanged.
 * One-shot messages (`post`: a read-text request, the answer to a ticket request) go at once
 * to a ready engine, and are dropped otherwise.
 */
export function createEngineLink(win, iframe, onReport) {
  // Same origin by design: the engine is served next to this page.
  const origin = win.location.origin;
  let engineReady = false;
  let wanted = { type: "stop" };
  let delivered = null;

  const deliver = () => {
    const target = iframe.contentWindow;
    if (!engineReady || target === null) return;
    const same = wanted.type === "start" ? sameStart(wanted, delivered) : delivered?.type === "stop";
    if (same) return;
    target.postMessage(wanted, origin);
    delivered = wanted;
  };

  win.addEventListener("message", (event) => {
    if (!isTrusted(event, iframe.contentWindow, origin)) return;
    const report = parseEngineReport(event.data);
    if (report === null) return;
    if (report.type === "engine-ready") {
      engineReady = true;
      delivered = null; // a (re)loaded engine knows nothing yet
      deliver();
    }
    onReport(report);
  });

  // Loading the engine only now guarantees that its "engine-ready" finds this listener.
  iframe.src = iframe.dataset.src;

  return {
    command(cmd) {
      wanted = cmd;
      deliver();
    },
    /** A one-shot message, not held like a command; false when no engine is there to take it. */
    post(message) {
      const target = iframe.contentWindow;
      if (!engineReady || target === null) return false;
      target.postMessage(message, origin);
      return true;
    },
    /** Delivers the current command again, even if unchanged (the engine gave up on it). */
    retry() {
      delivered = null;
      deliver();
    },
  };
}
