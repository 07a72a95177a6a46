// Socket tickets, engine side: one fresh ticket per (re)connection, asked of the UI page, which
// holds the sign-in token and calls POST /api/sessions/{id}/ticket (see messages.js).

export const TICKET_TIMEOUT_MS = 15_000;

/** Why no ticket came: `retry` says whether asking again later can help. */
export class TicketError extends Error {
  constructor(message, retry) {
    super(message);
    this.name = "TicketError";
    this.retry = retry;
  }
}

/**
 * What a failed ticket request means. The session is gone (403, 404, 409) or the user is
 * signed out (401): asking again cannot help. No answer (0), throttling (429) or a server
 * error (5xx) may pass: retry with backoff.
 */
export function describeTicketFailure(status, message = "") {
  const detail = message ? ` (${message})` : "";
  if (status === 401) return new TicketError(`Not signed in: sign in again to stream.${detail}`, false);
  if (status === 403 || status === 404 || status === 409) {
    return new TicketError(`This session has ended: press Start again.${detail}`, false);
  }
  return new TicketError(`No socket ticket from the control API${detail}.`, true);
}

/**
 * `post(message)` sends to the UI page. request(sessionId) resolves to {ticket, wsUrl} or
 * rejects with a TicketError; answer(command) settles it with the UI's reply. One request is
 * outstanding at most (a newer one supersedes the older, which rejects), and each times out.
 */
export function createTicketRequests({ post, timers = globalThis, timeoutMs = TICKET_TIMEOUT_MS }) {
  let lastId = 0;
  let pending = null; // {id, resolve, reject, timer}

  function settle(id) {
    if (pending === null || pending.id !== id) return null;
    const settled = pending;
    pending = null;
    timers.clearTimeout(settled.timer);
    return settled;
  }

  return {
    request(sessionId) {
      settle(pending?.id)?.reject(new TicketError("Superseded by a newer ticket request.", true));
      lastId += 1;
      const id = lastId;
      const promise = new Promise((resolve, reject) => {
        const timer = timers.setTimeout(
          () => settle(id)?.reject(new TicketError("The page did not answer the ticket request in time.", true)),
          timeoutMs,
        );
        pending = { id, resolve, reject, timer };
      });
      post({ type: "ticket-request", id, sessionId });
      return promise;
    },
    /** A "ticket" or "ticket-error" command from the UI; stale or unknown ids are ignored. */
    answer(command) {
      const settled = settle(command.id);
      if (settled === null) return;
      if (command.type === "ticket") settled.resolve({ ticket: command.ticket, wsUrl: command.wsUrl });
      else settled.reject(describeTicketFailure(command.status, command.message));
    },
  };
}
