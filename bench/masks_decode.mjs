// The engine's side of bench/masks.py: µs per mask from a result's JSON to what the renderer
// hands the canvas. Usage: node bench/masks_decode.mjs MASKS.json REPEAT
//
// rle, rle-b64, png: RGBA pixels for one ImageData per mask (decoded once per result; each
// display frame then only drawImage's it). polygon: the rings' points in canvas pixels for a
// Path2D (the fill itself is the canvas's work, not timed here, and repeats every display
// frame). png: zlib inflate + scanline unfiltering + bit unpacking, as a lower bound of what
// a browser's native decoder does (createImageBitmap is asynchronous: a result's masks would
// arrive a frame or more after its boxes).
import { readFileSync } from "node:fs";
import { inflateSync } from "node:zlib";

import { maskPixels, maskRect, maskRgba, parseMasks } from "../frontend/js/masks.js";

const [, , file, repeatArg] = process.argv;
const wire = JSON.parse(readFileSync(file, "utf8"));
const repeat = Number(repeatArg ?? 2000);
const RECT = { x: 0, y: 0, width: 640, height: 480 };

function varints(bytes) {
  const out = [];
  let value = 0;
  let shift = 0;
  for (const byte of bytes) {
    value |= (byte & 0x7f) << shift;
    if (byte & 0x80) shift += 7;
    else {
      out.push(value);
      value = 0;
      shift = 0;
    }
  }
  return out;
}

function pngPixels(m) {
  const bytes = Buffer.from(m.png, "base64");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  let w = 0;
  let h = 0;
  const idat = [];
  while (at < bytes.length) {
    const length = view.getUint32(at);
    const type = bytes.toString("latin1", at + 4, at + 8);
    if (type === "IHDR") [w, h] = [view.getUint32(at + 8), view.getUint32(at + 12)];
    if (type === "IDAT") idat.push(bytes.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = Math.ceil(w / 8);
  const prev = new Uint8Array(stride);
  const row = new Uint8Array(stride);
  const cells = new Uint8Array(w * h);
  for (let y = 0; y < h; y += 1) {
    const filter = raw[y * (stride + 1)];
    for (let i = 0; i < stride; i += 1) {
      const x = raw[y * (stride + 1) + 1 + i];
      const a = i > 0 ? row[i - 1] : 0;
      const b = prev[i];
      const c = i > 0 ? prev[i - 1] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      row[i] = (x + pred) & 0xff;
    }
    for (let x = 0; x < w; x += 1) cells[y * w + x] = (row[x >> 3] >> (7 - (x & 7))) & 1;
    prev.set(row);
  }
  const pixels = new Uint8ClampedArray(w * h * 4);
  const rgba = maskRgba(m);
  cells.forEach((v, i) => v && pixels.set(rgba, i * 4));
  return pixels;
}

const DECODE = {
  rle: (text) => parseMasks(JSON.parse(text)).map((m) => maskPixels(m, maskRgba(m))),
  "rle-b64": (text) =>
    JSON.parse(text).map((m) => {
      const mask = { ...m, rle: varints(Buffer.from(m.rle64, "base64")) };
      return maskPixels(mask, maskRgba(mask));
    }),
  polygon: (text) =>
    JSON.parse(text).map((m) => {
      const r = maskRect(m.box, RECT);
      return m.polygons.map((flat) => Float32Array.from(flat, (v, i) => (i % 2 === 0 ? r.x + v * r.width : r.y + v * r.height)));
    }),
  png: (text) => JSON.parse(text).map(pngPixels),
};

console.log(`engine side (node ${process.version}), µs per mask, median of ${repeat}:`);
for (const [name, candidates] of Object.entries(wire)) {
  const row = [];
  for (const [encoding, masks] of Object.entries(candidates)) {
    const text = JSON.stringify(masks);
    const decode = DECODE[encoding];
    for (let i = 0; i < 200; i += 1) decode(text); // warm up the JIT
    const times = [];
    for (let i = 0; i < repeat; i += 1) {
      const t0 = performance.now();
      decode(text);
      times.push(((performance.now() - t0) * 1000) / masks.length);
    }
    times.sort((a, b) => a - b);
    row.push(`${encoding} ${times[times.length >> 1].toFixed(1)}`);
  }
  console.log(`${name.padEnd(20)} ${row.join("   ")}`);
}
