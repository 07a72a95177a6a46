// Host phase → what the user reads, and time formatting. Pure: the clock is a parameter.

export const PHASES = Object.freeze(["stopped", "starting", "booting", "ready", "stopping", "error"]);

const LABELS = Object.freeze({
  stopped: "GPU stopped",
  starting: "Starting GPU…",
  booting: "GPU booting…",
  ready: "GPU ready",
  stopping: "GPU stopping…",
  error: "GPU error",
  unknown: "Checking GPU…",
});

/** The phases during which the GPU is on its way up (the ETA and elapsed clock show). */
export const STARTING_PHASES = Object.freeze(["starting", "booting"]);

export function phaseLabel(phase) {
  return LABELS[phase] ?? LABELS.unknown;
}

/** Poll faster while something is changing; the user is watching a progress line. */
export function pollIntervalMs(phase) {
  return phase === "starting" || phase === "booting" || phase === "stopping" ? 1000 : 2000;
}

/** "0:07", "2:05", "1:02:03" — for elapsed time and countdowns. */
export function formatClock(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** A rough remaining time: "~40 s", "~2 min", "any moment now"; "" when unknown. */
export function formatEta(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  if (seconds <= 0) return "any moment now";
  if (seconds < 60) return `~${Math.max(5, Math.ceil(seconds / 5) * 5)} s`;
  return `~${Math.ceil(seconds / 60)} min`;
}

/** The server's eta_s counted down locally since the status that carried it was received. */
export function remainingEta(etaS, receivedAtMs, nowMs) {
  if (etaS === null || etaS === undefined || !Number.isFinite(etaS)) return null;
  return Math.max(0, etaS - (nowMs - receivedAtMs) / 1000);
}

/**
 * stop_at as epoch milliseconds. Accepts epoch seconds (a number, as the table stores times)
 * or an ISO-8601 string; null for absent or unreadable values.
 */
export function parseStopAt(stopAt) {
  if (typeof stopAt === "number" && Number.isFinite(stopAt) && stopAt > 0) return stopAt * 1000;
  if (typeof stopAt === "string" && stopAt.trim() !== "") {
    const asNumber = Number(stopAt);
    if (Number.isFinite(asNumber) && asNumber > 0) return asNumber * 1000;
    const ms = Date.parse(stopAt);
    return Number.isNaN(ms) ? null : ms;
  }
  return null;
}

/**
 * How long before a scheduled idle stop the warning (and Keep running) appears. The status
 * carries stop_at all the time the GPU runs; a countdown of 15 minutes over a streaming
 * camera would only alarm, so it shows once the stop is near.
 */
export const IDLE_WARNING_S = 120;

/** The idle-stop warning, or null when no stop is scheduled or it is not near yet. */
export function idleCountdown(stopAtMs, nowMs, warningS = IDLE_WARNING_S) {
  if (stopAtMs === null) return null;
  const left = (stopAtMs - nowMs) / 1000;
  if (left > warningS) return null;
  return left > 0
    ? `Idle: the GPU stops in ${formatClock(left)} unless it is used.`
    : "Idle: the GPU is stopping now.";
}

/**
 * When the current start began, carried across polls: set when a start phase is first seen,
 * kept through starting → booting, cleared when the GPU leaves the start phases.
 */
export function nextStartClock(startedAtMs, phase, nowMs) {
  if (!STARTING_PHASES.includes(phase)) return null;
  return startedAtMs ?? nowMs;
}

/** The one-line status: "GPU booting… ~2 min · 0:37 elapsed". */
export function statusLine({ phase, etaS, etaReceivedAtMs, startedAtMs }, nowMs) {
  const parts = [phaseLabel(phase)];
  if (STARTING_PHASES.includes(phase)) {
    const eta = formatEta(remainingEta(etaS, etaReceivedAtMs, nowMs));
    if (eta) parts[0] = `${parts[0]} ${eta}`;
    if (startedAtMs !== null && startedAtMs !== undefined) {
      parts.push(`${formatClock((nowMs - startedAtMs) / 1000)} elapsed`);
    }
  }
  return parts.join(" · ");
}
