// Masks from the socket (protocol.json `result.masks`): checking, decoding and where to draw
// them. Pure: no DOM. A mask is a small bitmap stretched over its box; on the wire its cells
// are run lengths, row-major from the top row, alternating outside and inside, outside first.

import { toRect } from "./geometry.js";

/** The largest side of a mask's bitmap (gpu_host.vision.types.MASK_MAX_SIDE). */
export const MASK_MAX_SIDE = 96;

/** How opaque a mask's cells are before the overlay's own fade: the video shows through. */
export const MASK_ALPHA = 0.45;

const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
const isFiniteNumber = (v) => typeof v === "number" && Number.isFinite(v);
const isCount = (v) => Number.isSafeInteger(v) && v >= 0;

/** Why `raw` is not a mask a v1 server could have sent, or null when it is one. */
export function maskProblem(raw) {
  if (!isObject(raw)) return "a mask must be an object";
  for (const key of ["model", "label"]) {
    if (typeof raw[key] !== "string") return `${key}: expected a string`;
  }
  if (!isFiniteNumber(raw.score)) return "score: expected a number";
  const { box, size, rle } = raw;
  if (!Array.isArray(box) || box.length !== 4 || !box.every(isFiniteNumber)) {
    return "box: expected [x1, y1, x2, y2] numbers";
  }
  if (!Array.isArray(size) || size.length !== 2 || !size.every((s) => Number.isSafeInteger(s) && s >= 1 && s <= MASK_MAX_SIDE)) {
    return `size: expected [w, h] integers in 1..${MASK_MAX_SIDE}`;
  }
  if (!Array.isArray(rle) || !rle.every(isCount)) return "rle: expected a list of run lengths";
  const total = rle.reduce((sum, n) => sum + n, 0);
  if (total !== size[0] * size[1]) return `rle: the runs cover ${total} cells, not ${size[0]}x${size[1]}`;
  return null;
}

/** A checked copy of `raw` ({model, label, score, box, size, rle}), or null when it is bad. */
export function parseMask(raw) {
  if (maskProblem(raw) !== null) return null;
  return { model: raw.model, label: raw.label, score: raw.score, box: [...raw.box], size: [...raw.size], rle: [...raw.rle] };
}

/**
 * The result's masks that are good; a bad one is dropped (a newer or broken server must not
 * cost the user the frame's boxes). `warn(reason)` hears about each dropped one.
 */
export function parseMasks(value, warn = () => {}) {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    warn("masks: expected a list");
    return [];
  }
  const masks = [];
  value.forEach((raw, i) => {
    const problem = maskProblem(raw);
    if (problem === null) masks.push(parseMask(raw));
    else warn(`masks[${i}]: ${problem}`);
  });
  return masks;
}

/** The mask's cells row-major, 1 inside the thing and 0 outside (w × h of them). */
export function maskCells(mask) {
  const [w, h] = mask.size;
  const cells = new Uint8Array(w * h);
  let at = 0;
  mask.rle.forEach((run, i) => {
    if (i % 2 === 1) cells.fill(1, at, at + run);
    at += run;
  });
  return cells;
}

/** RGBA pixels for an ImageData of w × h: `rgba` inside the thing, transparent outside. */
export function maskPixels(mask, rgba) {
  const [w, h] = mask.size;
  const pixels = new Uint8ClampedArray(w * h * 4);
  const fill = new Uint32Array(pixels.buffer);
  // One 32-bit store per cell, in the platform's byte order (ImageData is RGBA bytes).
  const probe = new Uint8Array(new Uint32Array([0x01020304]).buffer);
  const littleEndian = probe[0] === 0x04;
  const [r, g, b, a] = rgba;
  const word = littleEndian ? ((a << 24) | (b << 16) | (g << 8) | r) >>> 0 : ((r << 24) | (g << 16) | (b << 8) | a) >>> 0;
  let at = 0;
  mask.rle.forEach((run, i) => {
    if (i % 2 === 1) fill.fill(word, at, at + run);
    at += run;
  });
  return pixels;
}

// Tints that stay readable over video; a model/label pair always gets the same one.
const PALETTE = [
  [167, 139, 250],
  [45, 212, 191],
  [251, 113, 133],
  [250, 204, 21],
  [96, 165, 250],
  [74, 222, 128],
  [251, 146, 60],
  [244, 114, 182],
];

/** [r, g, b] for a model's label: one colour per (model, label), stable across frames. */
export function maskColor(model, label) {
  let hash = 2166136261;
  for (const ch of `${model}\u0000${label}`) {
    hash = Math.imul(hash ^ ch.codePointAt(0), 16777619) >>> 0;
  }
  return PALETTE[hash % PALETTE.length];
}

/** [r, g, b, a] bytes of a mask's cells, alpha MASK_ALPHA. */
export function maskRgba(mask) {
  return [...maskColor(mask.model, mask.label), Math.round(MASK_ALPHA * 255)];
}

/**
 * Where the mask's bitmap is drawn on the canvas: its (interpolated) normalized box mapped
 * into `rect`, the video's rectangle on the canvas. Null when the box has no area there.
 */
export function maskRect(box, rect) {
  const [x1, y1] = toRect(box[0], box[1], rect);
  const [x2, y2] = toRect(box[2], box[3], rect);
  if (!(x2 > x1 && y2 > y1)) return null;
  return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
}
