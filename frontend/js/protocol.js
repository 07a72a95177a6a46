// WebSocket protocol v1: frame encoding, the client's messages, server-message parsing and
// what each close code means. Pure: no DOM, no sockets. Parsing never throws; a bad message
// becomes {type: "invalid"}. The protocol's one source is protocol.json, which the backend
// loads too (docs/architecture.md); this module holds no second table of it.

import { parseMasks } from "./masks.js";
import PROTOCOL from "./protocol.json" with { type: "json" };

export { PROTOCOL };
export const MAGIC = PROTOCOL.frame.magic;
export const HEADER_BYTES = PROTOCOL.frame.header_bytes;
const UINT32_SPAN = 2 ** 32;
const UINT64_MAX = (1n << 64n) - 1n;

/** The id after `frameId`: uint32 on the wire, so it wraps to 0 after 2^32 - 1. */
export function nextFrameId(frameId) {
  return (frameId + 1) % UINT32_SPAN;
}

function toBytes(jpeg) {
  if (jpeg instanceof Uint8Array) return jpeg;
  if (jpeg instanceof ArrayBuffer) return new Uint8Array(jpeg);
  if (ArrayBuffer.isView(jpeg)) return new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength);
  throw new TypeError("jpeg must be an ArrayBuffer or a typed array");
}

function toUint64(captureUs) {
  let value;
  if (typeof captureUs === "bigint") {
    value = captureUs;
  } else if (Number.isSafeInteger(captureUs)) {
    value = BigInt(captureUs);
  } else {
    // A float or a Number past 2^53 has already lost microseconds; make the caller pass a BigInt.
    throw new RangeError(`capture_us must be a BigInt or a safe integer, got ${captureUs}`);
  }
  if (value < 0n || value > UINT64_MAX) {
    throw new RangeError(`capture_us out of uint64 range: ${value}`);
  }
  return value;
}

/**
 * One binary frame: struct "<4sIQ" (magic, uint32 frame_id, uint64 capture_time_us, little
 * endian) followed by the JPEG bytes. Returns a fresh ArrayBuffer ready for WebSocket.send.
 */
export function encodeFrame(frameId, captureUs, jpeg) {
  if (!Number.isInteger(frameId) || frameId < 0 || frameId >= UINT32_SPAN) {
    throw new RangeError(`frame_id must be an integer in [0, 2^32), got ${frameId}`);
  }
  const capture = toUint64(captureUs);
  const bytes = toBytes(jpeg);
  const out = new ArrayBuffer(HEADER_BYTES + bytes.byteLength);
  const view = new DataView(out);
  for (let i = 0; i < MAGIC.length; i += 1) view.setUint8(i, MAGIC.charCodeAt(i));
  view.setUint32(4, frameId, true);
  view.setBigUint64(8, capture, true);
  new Uint8Array(out, HEADER_BYTES).set(bytes);
  return out;
}

/** The inverse of encodeFrame (used by tests and stub servers). Throws on a malformed header. */
export function decodeFrame(buffer) {
  const bytes = toBytes(buffer);
  if (bytes.byteLength < HEADER_BYTES) {
    throw new RangeError(`frame shorter than its ${HEADER_BYTES}-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== MAGIC) throw new RangeError(`bad magic ${JSON.stringify(magic)}`);
  return {
    frameId: view.getUint32(4, true),
    captureUs: view.getBigUint64(8, true),
    jpeg: bytes.subarray(HEADER_BYTES),
  };
}

/** Capture time in epoch microseconds as a BigInt, from performance.timeOrigin + now (ms). */
export function epochMicros(timeOriginMs, nowMs) {
  return BigInt(Math.round((timeOriginMs + nowMs) * 1000));
}

/** The client's first message: a single-use socket ticket (POST /api/sessions/{id}/ticket). */
export function helloMessage(ticket, models) {
  return JSON.stringify({ type: "hello", ticket, models: [...models] });
}

/** Asks the server to read every text region afresh on the next frame (needs `ocr`). */
export function readTextMessage() {
  return JSON.stringify({ type: "read_text" });
}

// ---- parsing -------------------------------------------------------------------------------

class Invalid extends Error {}

const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
const isFiniteNumber = (v) => typeof v === "number" && Number.isFinite(v);

function str(obj, key, path) {
  const v = obj[key];
  if (typeof v !== "string") throw new Invalid(`${path}${key}: expected a string`);
  return v;
}

function num(obj, key, path) {
  const v = obj[key];
  if (!isFiniteNumber(v)) throw new Invalid(`${path}${key}: expected a number`);
  return v;
}

function optionalNum(obj, key, path, fallback) {
  return obj[key] === undefined || obj[key] === null ? fallback : num(obj, key, path);
}

function box(obj, path) {
  const b = obj.box;
  if (!Array.isArray(b) || b.length !== 4 || !b.every(isFiniteNumber)) {
    throw new Invalid(`${path}box: expected [x1, y1, x2, y2] numbers`);
  }
  return [b[0], b[1], b[2], b[3]];
}

function list(obj, key, parseItem) {
  const v = obj[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Invalid(`${key}: expected a list`);
  return v.map((item, i) => {
    const path = `${key}[${i}].`;
    if (!isObject(item)) throw new Invalid(`${key}[${i}]: expected an object`);
    return parseItem(item, path);
  });
}

const parseDetection = (d, p) => ({
  model: str(d, "model", p),
  label: str(d, "label", p),
  score: num(d, "score", p),
  box: box(d, p),
});

function parseKeypointSet(k, p) {
  const points = k.points;
  if (!Array.isArray(points)) throw new Invalid(`${p}points: expected a list`);
  return {
    model: str(k, "model", p),
    points: points.map((pt, i) => {
      if (!Array.isArray(pt) || pt.length < 2 || !pt.every(isFiniteNumber)) {
        throw new Invalid(`${p}points[${i}]: expected [x, y, score]`);
      }
      return [pt[0], pt[1], pt.length > 2 ? pt[2] : 1];
    }),
  };
}

const parseText = (t, p) => ({
  model: str(t, "model", p),
  text: str(t, "text", p),
  score: optionalNum(t, "score", p, 1),
  box: box(t, p),
});

function parseResult(m) {
  // A mask the client cannot read is dropped on its own: the frame's boxes still count.
  const droppedMasks = [];
  const result = {
    type: "result",
    frameId: num(m, "frame_id", ""),
    captureUs: optionalNum(m, "capture_us", "", null),
    detections: list(m, "detections", parseDetection),
    keypoints: list(m, "keypoints", parseKeypointSet),
    texts: list(m, "texts", parseText),
    timingMs: isObject(m.timing_ms) ? m.timing_ms : {},
    dropped: optionalNum(m, "dropped", "", 0),
    late: Array.isArray(m.late) ? m.late.filter((x) => typeof x === "string") : [],
    masks: parseMasks(m.masks, (reason) => droppedMasks.push(reason)),
  };
  if (droppedMasks.length > 0) result.droppedMasks = droppedMasks;
  return result;
}

function parseReady(m) {
  const models = Array.isArray(m.models) ? m.models.filter((x) => typeof x === "string") : [];
  return {
    type: "ready",
    session: typeof m.session === "string" ? m.session : "",
    models,
    maxFrameBytes: optionalNum(m, "max_frame_bytes", "", null),
  };
}

function parseError(m) {
  return {
    type: "error",
    code: typeof m.code === "string" ? m.code : "unknown",
    message: typeof m.message === "string" ? m.message : "",
    frameId: isFiniteNumber(m.frame_id) ? m.frame_id : null,
  };
}

function parseNotice(m) {
  // A kind this client does not know still shows its message (the protocol may grow).
  return { type: "notice", kind: str(m, "kind", ""), message: str(m, "message", "") };
}

const PARSERS = { result: parseResult, ready: parseReady, error: parseError, notice: parseNotice };

/**
 * Parses one text message from the server. Returns a typed object; never throws.
 * - {type: "result" | "ready" | "error", ...} for the v1 messages; a result's bad masks are
 *   left out of its `masks` and named in `droppedMasks` (present only then),
 * - {type: "notice", kind, message} for a server notice (kind "shutdown" before a 1001 close),
 * - {type: "unknown", serverType} for a type this client does not know (the protocol may grow),
 * - {type: "invalid", reason, frameId} when the text is not a valid message.
 */
export function parseServerMessage(text) {
  let m;
  try {
    m = JSON.parse(text);
  } catch (err) {
    return { type: "invalid", reason: `not JSON: ${err.message}`, frameId: null };
  }
  if (!isObject(m) || typeof m.type !== "string") {
    return { type: "invalid", reason: "expected an object with a string 'type'", frameId: null };
  }
  const parse = PARSERS[m.type];
  if (parse === undefined) return { type: "unknown", serverType: m.type };
  try {
    return parse(m);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    const frameId = isFiniteNumber(m.frame_id) ? m.frame_id : null;
    return { type: "invalid", reason: `${m.type}: ${err.message}`, frameId };
  }
}

// ---- close codes ---------------------------------------------------------------------------

const CLOSES = new Map(Object.entries(PROTOCOL.close_codes).map(([name, c]) => [c.code, { name, ...c }]));

/**
 * What a close means to the user, and whether reconnecting can help, from protocol.json.
 * Codes it does not list (a proxy's, a newer server's) get its `close_default`: retried.
 */
export function describeClose(code, reason = "") {
  const known = CLOSES.get(code);
  const fallback = PROTOCOL.close_default;
  const base = known ?? { name: "unknown", retry: fallback.retry, message: fallback.message.replace("{code}", String(code)) };
  const message = reason ? `${base.message} (${reason})` : base.message;
  return { code, name: base.name, retry: base.retry, message };
}
