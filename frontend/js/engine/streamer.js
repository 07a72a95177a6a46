// The engine's loop: camera → paced JPEG frames → socket → results → interpolated overlay.
// Capture is paced by video frames and by the one-in-flight Pacer; drawing runs at display
// rate on its own, so the picture stays smooth whatever the inference rate.

import { interpolateResults } from "../interpolate.js";
import { sameStart } from "../messages.js";
import { Pacer } from "../pacer.js";
import { HEADER_BYTES, encodeFrame, epochMicros } from "../protocol.js";
import { closeCamera, describeCameraError, openCamera } from "./camera.js";
import { createFrameEncoder } from "./encoder.js";
import { createRenderer } from "./renderer.js";
import { createInferenceSocket } from "./socket.js";

const STATS_INTERVAL_MS = 500;

/**
 * report(message) posts to the UI page; onState(state, message) updates the engine's own text;
 * requestTicket(sessionId) resolves to a fresh socket ticket {ticket, wsUrl} (tickets.js).
 */
export function createStreamer({ win, video, canvas, report, onState, requestTicket }) {
  const clock = win.performance;
  const pacer = new Pacer();
  const encoder = createFrameEncoder(win.document);
  const renderer = createRenderer(canvas, win);

  let current = null; // the start command being served
  let generation = 0; // bumped by every start/stop, so late async work can tell it is stale
  let stream = null;
  let cameraOpening = null;
  let maxFrameBytes = null;
  let engineState = "idle";
  let engineMessage = "";
  let serverDropped = 0;
  let boxes = 0;
  let masks = 0; // drawn in the last display frame (the e2e tests read it from the UI's stats)
  // The two newest results, for interpolation: {atMs, captureUs, detections, keypoints, texts, masks}.
  let previous = null;
  let latest = null;

  function setState(state, message = "") {
    engineState = state;
    engineMessage = message;
    onState(state, message);
    report({ type: "state", state, message });
  }

  function forgetResults() {
    previous = null;
    latest = null;
  }

  function onMessage(message) {
    const now = clock.now();
    switch (message.type) {
      case "result": {
        pacer.onResult(message.frameId, now);
        serverDropped = message.dropped;
        // A result for an older capture (a frame given up after a timeout) must not move boxes back.
        const older = latest?.captureUs != null && message.captureUs !== null && message.captureUs < latest.captureUs;
        if (older) return;
        if (message.droppedMasks) win.console.warn("spinup engine: dropped bad masks:", message.droppedMasks);
        previous = latest;
        latest = { atMs: now, ...message };
        // A result clears an earlier error's message.
        if (engineState !== "streaming" || engineMessage !== "") setState("streaming");
        return;
      }
      case "error":
        pacer.onError(message.frameId, now);
        setState("streaming", `server error ${message.code}${message.message ? `: ${message.message}` : ""}`);
        return;
      case "notice":
        setState(engineState, message.message);
        return;
      case "invalid":
        pacer.onError(message.frameId, now);
        win.console.warn("spinup engine: ignoring a bad server message:", message.reason);
        return;
      default:
        return; // "unknown": a newer server's message type; nothing to do with it
    }
  }

  const socket = createInferenceSocket({
    onState: (state, message) => {
      if (state === "failed") {
        // Retrying cannot help (unauthorized, too many sessions): turn the camera light off too.
        current = null;
        stopCamera();
        forgetResults();
      }
      setState(state, message);
    },
    onReady: (ready) => {
      maxFrameBytes = ready.maxFrameBytes;
      pacer.reset();
      forgetResults();
    },
    onMessage,
    getTicket: (target) => requestTicket(target.sessionId),
  });

  async function sendFrame() {
    // A hidden tab sends nothing, so the control plane sees it as idle and may stop the GPU.
    if (!socket.ready || win.document.hidden) return;
    const reservedAt = clock.now();
    const frameId = pacer.reserve(reservedAt);
    if (frameId === null) return;
    const gen = generation;
    const captureUs = epochMicros(clock.timeOrigin, reservedAt);
    let jpeg;
    try {
      jpeg = await encoder.encode(video);
    } catch (err) {
      pacer.abort(frameId);
      win.console.warn("spinup engine: frame encoding failed:", err);
      return;
    }
    if (gen !== generation) {
      pacer.abort(frameId);
      return;
    }
    if (maxFrameBytes !== null && jpeg.byteLength + HEADER_BYTES > maxFrameBytes) {
      pacer.abort(frameId);
      setState("streaming", `a ${jpeg.byteLength}-byte frame exceeds the server's ${maxFrameBytes}-byte limit`);
      return;
    }
    if (socket.send(encodeFrame(frameId, captureUs, jpeg))) pacer.markSent(frameId, clock.now());
    else pacer.abort(frameId);
  }

  // One capture loop per opened camera: a callback still pending from a closed camera ends
  // its loop instead of running beside the new one.
  let cameraEpoch = 0;

  function startCaptureLoop() {
    cameraEpoch += 1;
    const epoch = cameraEpoch;
    const tick = () => {
      if (stream === null || epoch !== cameraEpoch) return;
      // requestVideoFrameCallback fires once per new camera frame; rAF is the fallback.
      if (typeof video.requestVideoFrameCallback === "function") video.requestVideoFrameCallback(tick);
      else win.requestAnimationFrame(tick);
      sendFrame();
    };
    tick();
  }

  function renderLoop() {
    win.requestAnimationFrame(renderLoop);
    const overlay = interpolateResults(previous, latest, clock.now());
    ({ boxes, masks } = renderer.draw(stream === null ? null : video, overlay));
  }

  function ensureCamera() {
    if (stream !== null) return Promise.resolve(stream);
    cameraOpening ??= openCamera(win.navigator.mediaDevices, video)
      .then((opened) => {
        stream = opened;
        startCaptureLoop();
        return opened;
      })
      .finally(() => {
        cameraOpening = null;
      });
    return cameraOpening;
  }

  function stopCamera() {
    closeCamera(stream, video);
    stream = null;
    cameraEpoch += 1;
  }

  async function start(command) {
    if (sameStart(command, current)) return;
    generation += 1;
    const gen = generation;
    current = command;
    if (stream === null) setState("camera");
    try {
      await ensureCamera();
    } catch (err) {
      if (gen === generation) {
        current = null;
        setState("failed", describeCameraError(err));
      }
      return;
    }
    if (gen !== generation) {
      if (current === null) stopCamera(); // stopped while the camera was opening
      return;
    }
    forgetResults();
    socket.open(command);
  }

  function stop() {
    generation += 1;
    current = null;
    socket.close();
    stopCamera();
    forgetResults();
    boxes = 0;
    masks = 0;
    reportStats();
    if (engineState !== "idle") setState("idle");
  }

  function reportStats() {
    const s = pacer.snapshot();
    report({
      type: "stats",
      sent: s.sent,
      results: s.results,
      rttMs: s.lastRttMs,
      dropped: serverDropped,
      boxes,
      masks,
      timeouts: s.timeouts,
      errors: s.errors,
    });
  }

  /** The user asked to read the text again: the server re-reads every region of the next frame. */
  function readText() {
    return socket.readText();
  }

  win.setInterval(reportStats, STATS_INTERVAL_MS);
  win.requestAnimationFrame(renderLoop);

  return { start, stop, readText };
}
