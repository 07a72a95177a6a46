import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { createRenderer } from "../../frontend/js/engine/renderer.js";
import { interpolateResults } from "../../frontend/js/interpolate.js";
import {
  MASK_ALPHA,
  maskCells,
  maskColor,
  maskPixels,
  maskRect,
  maskRgba,
  parseMasks,
} from "../../frontend/js/masks.js";

const mask = (box, { model = "segment", label = "person", size = [2, 2], rle = [1, 2, 1] } = {}) => ({
  model,
  label,
  score: 0.9,
  box,
  size,
  rle,
});
const result = (atMs, masks) => ({ atMs, detections: [], keypoints: [], texts: [], masks });
const close = (actual, expected) =>
  actual.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-9, `${actual} != ${expected}`));

describe("parseMasks", () => {
  test("absent or null: no masks, nothing reported", () => {
    const heard = [];
    assert.deepEqual(parseMasks(undefined, (r) => heard.push(r)), []);
    assert.deepEqual(parseMasks(null, (r) => heard.push(r)), []);
    assert.deepEqual(heard, []);
  });

  test("keeps the good ones in order and reports each bad one by index", () => {
    const good = mask([0, 0, 1, 1]);
    const heard = [];
    const parsed = parseMasks([good, { ...good, size: [3, 3] }, "x", good], (r) => heard.push(r));
    assert.deepEqual(parsed, [good, good]);
    assert.equal(heard.length, 2);
    assert.match(heard[0], /^masks\[1\]: rle/);
    assert.match(heard[1], /^masks\[2\]: .*object/);
  });

  test("a parsed mask does not share the server's arrays", () => {
    const raw = mask([0, 0, 1, 1]);
    const [parsed] = parseMasks([raw]);
    raw.rle[0] = 99;
    raw.box[0] = 0.5;
    assert.deepEqual([parsed.rle, parsed.box], [[1, 2, 1], [0, 0, 1, 1]]);
  });
});

describe("cells and pixels", () => {
  const m = mask([0, 0, 1, 1], { size: [3, 2], rle: [1, 3, 2] }); // .## / #..

  test("maskCells reads the runs row-major", () => {
    assert.deepEqual([...maskCells(m)], [0, 1, 1, 1, 0, 0]);
  });

  test("maskPixels paints inside cells with the colour and leaves the rest transparent", () => {
    const pixels = maskPixels(m, [10, 20, 30, 40]);
    assert.equal(pixels.length, 3 * 2 * 4);
    const cell = (i) => [...pixels.subarray(i * 4, i * 4 + 4)];
    assert.deepEqual([0, 1, 2, 3, 4, 5].map(cell), [
      [0, 0, 0, 0],
      [10, 20, 30, 40],
      [10, 20, 30, 40],
      [10, 20, 30, 40],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ]);
  });

  test("one colour per model and label, the same every time, semi-transparent", () => {
    assert.deepEqual(maskColor("segment", "person"), maskColor("segment", "person"));
    const labels = ["person", "nail", "cat", "dog", "car"].map((label) => maskColor("nails", label).join());
    assert.ok(new Set(labels).size >= 3, `too few colours: ${labels}`);
    const [, , , a] = maskRgba(mask([0, 0, 1, 1]));
    assert.equal(a, Math.round(MASK_ALPHA * 255));
    assert.ok(a > 0 && a < 255);
  });
});

describe("maskRect: cells onto the canvas", () => {
  // A 4:3 video letterboxed into a 1000×600 canvas.
  const rect = { x: 100, y: 0, width: 800, height: 600 };

  for (const [name, box, expected] of [
    ["the whole frame covers the video's rectangle", [0, 0, 1, 1], { x: 100, y: 0, width: 800, height: 600 }],
    ["a box maps into it", [0.25, 0.5, 0.75, 1], { x: 300, y: 300, width: 400, height: 300 }],
    ["a box past the frame is clamped to it", [-0.5, 0, 0.5, 1.5], { x: 100, y: 0, width: 400, height: 600 }],
  ]) {
    test(name, () => assert.deepEqual(maskRect(box, rect), expected));
  }

  for (const [name, box] of [
    ["no width", [0.5, 0, 0.5, 1]],
    ["upside down", [0, 0.8, 1, 0.2]],
  ]) {
    test(`${name}: nothing to draw`, () => assert.equal(maskRect(box, rect), null));
  }
});

describe("interpolating masks like boxes", () => {
  const A = mask([0.1, 0.1, 0.3, 0.5], { rle: [4] });
  const A2 = mask([0.2, 0.1, 0.4, 0.5], { rle: [0, 4] });

  test("halfway between two results: the box halfway, the newer bitmap", () => {
    const out = interpolateResults(result(1000, [A]), result(1100, [A2]), 1150);
    assert.equal(out.masks.length, 1);
    close(out.masks[0].box, [0.15, 0.1, 0.35, 0.5]);
    assert.equal(out.masks[0].rle, A2.rle); // same array: the renderer's decode cache hits
    assert.equal(out.masks[0].opacity, 1);
  });

  test("another label does not match: one fades out while the other fades in", () => {
    const cat = { ...A2, label: "cat" };
    const out = interpolateResults(result(1000, [A]), result(1100, [cat]), 1125);
    const byLabel = Object.fromEntries(out.masks.map((m) => [m.label, m]));
    assert.ok(Math.abs(byLabel.cat.opacity - 0.25) < 1e-9);
    assert.ok(Math.abs(byLabel.person.opacity - 0.75) < 1e-9);
    assert.deepEqual(byLabel.person.box, A.box);
  });

  test("whole-frame masks always match and stay put", () => {
    const before = mask([0, 0, 1, 1], { rle: [4] });
    const after = mask([0, 0, 1, 1], { rle: [1, 3] });
    const out = interpolateResults(result(1000, [before]), result(1100, [after]), 1110);
    assert.deepEqual(out.masks.map((m) => [m.box, m.rle, m.opacity]), [[[0, 0, 1, 1], after.rle, 1]]);
  });

  test("a repeated (reused) result keeps the masks still and opaque", () => {
    const out = interpolateResults(result(1000, [A]), result(1100, [{ ...A }]), 1120);
    assert.deepEqual(out.masks.map((m) => [m.box, m.opacity]), [[A.box, 1]]);
  });

  test("results without masks (an older server) draw none", () => {
    const bare = { atMs: 1000, detections: [], keypoints: [], texts: [] };
    assert.deepEqual(interpolateResults(bare, { ...bare, atMs: 1100 }, 1150).masks, []);
  });
});

/** A canvas whose 2-D context records the calls the renderer makes. */
function fakeCanvas(calls, name) {
  const canvas = {
    name,
    width: 0,
    height: 0,
    clientWidth: 1000,
    clientHeight: 600,
    getContext: () => ({
      fillRect() {},
      strokeRect() {},
      measureText: () => ({ width: 10 }),
      fillText() {},
      beginPath() {},
      moveTo() {},
      lineTo() {},
      stroke() {},
      arc() {},
      fill() {},
      createImageData: (w, h) => ({ width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }),
      putImageData: (data) => calls.push(["putImageData", name, [...data.data]]),
      drawImage(image, x, y, w, h) {
        calls.push(["drawImage", image.name ?? "video", [x, y, w, h], this.globalAlpha, this.imageSmoothingEnabled]);
      },
    }),
  };
  return canvas;
}

function rendererWithLog() {
  const calls = [];
  let made = 0;
  const win = {
    devicePixelRatio: 1,
    document: {
      createElement: (tag) => {
        assert.equal(tag, "canvas");
        made += 1;
        return fakeCanvas(calls, `mask${made}`);
      },
    },
  };
  const renderer = createRenderer(fakeCanvas(calls, "view"), win);
  return { renderer, calls, made: () => made };
}

const VIDEO = { readyState: 4, videoWidth: 640, videoHeight: 480 };
const overlay = (masks) => ({ detections: [], keypoints: [], texts: [], masks });

describe("the renderer's masks", () => {
  test("a mask is decoded once and scaled into its box on every frame", () => {
    const { renderer, calls, made } = rendererWithLog();
    const m = { ...mask([0.25, 0.5, 0.75, 1], { size: [2, 1], rle: [1, 1] }), opacity: 0.5 };
    assert.deepEqual(renderer.draw(VIDEO, overlay([m])), { boxes: 0, masks: 1 });
    // The next display frame: the box glided, the bitmap is the same result's.
    const moved = { ...m, box: [0, 0, 0.5, 0.5], opacity: 1 };
    assert.deepEqual(renderer.draw(VIDEO, overlay([moved])), { boxes: 0, masks: 1 });
    assert.equal(made(), 1);
    const puts = calls.filter((c) => c[0] === "putImageData");
    assert.equal(puts.length, 1);
    assert.deepEqual(puts[0][2], [0, 0, 0, 0, ...maskRgba(m)]);
    const draws = calls.filter((c) => c[0] === "drawImage" && c[1] === "mask1");
    // The 640×480 video fills 800×600 of the 1000×600 canvas, from x = 100.
    assert.deepEqual(draws, [
      ["drawImage", "mask1", [300, 300, 400, 300], 0.5, true],
      ["drawImage", "mask1", [100, 0, 400, 300], 1, true],
    ]);
  });

  test("a new result's mask is decoded afresh", () => {
    const { renderer, made } = rendererWithLog();
    renderer.draw(VIDEO, overlay([{ ...mask([0, 0, 1, 1]), opacity: 1 }]));
    renderer.draw(VIDEO, overlay([{ ...mask([0, 0, 1, 1]), opacity: 1 }]));
    assert.equal(made(), 2);
  });

  test("a mask without area is not drawn or counted", () => {
    const { renderer } = rendererWithLog();
    assert.deepEqual(renderer.draw(VIDEO, overlay([{ ...mask([0.5, 0, 0.5, 1]), opacity: 1 }])), { boxes: 0, masks: 0 });
  });

  test("no camera, or an overlay without masks: nothing counted", () => {
    const { renderer } = rendererWithLog();
    assert.deepEqual(renderer.draw(null, overlay([{ ...mask([0, 0, 1, 1]), opacity: 1 }])), { boxes: 0, masks: 0 });
    const boxOnly = { detections: [{ model: "detect", label: "cup", score: 0.5, box: [0, 0, 0.5, 0.5], opacity: 1 }], keypoints: [], texts: [] };
    assert.deepEqual(renderer.draw(VIDEO, boxOnly), { boxes: 1, masks: 0 });
  });
});
