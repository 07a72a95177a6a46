import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  DEFAULT_INTERPOLATION,
  centerDistance,
  interpolateResults,
  iou,
  keypointsBox,
  lerpBox,
  matchItems,
} from "../../frontend/js/interpolate.js";

const det = (label, box, model = "detect", score = 0.9) => ({ model, label, score, box });
const result = (atMs, detections = [], extra = {}) => ({ atMs, detections, keypoints: [], texts: [], ...extra });
const close = (actual, expected) =>
  actual.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-9, `${actual} != ${expected}`));

describe("iou", () => {
  for (const [name, a, b, expected] of [
    ["identical", [0, 0, 1, 1], [0, 0, 1, 1], 1],
    ["disjoint", [0, 0, 0.1, 0.1], [0.5, 0.5, 0.6, 0.6], 0],
    ["touching edges", [0, 0, 0.5, 0.5], [0.5, 0, 1, 0.5], 0],
    ["half overlap", [0, 0, 0.2, 0.1], [0.1, 0, 0.3, 0.1], 1 / 3],
    ["degenerate boxes", [0.2, 0.2, 0.2, 0.2], [0.2, 0.2, 0.2, 0.2], 0],
  ]) {
    test(name, () => assert.ok(Math.abs(iou(a, b) - expected) < 1e-9));
  }
});

test("centerDistance", () => assert.ok(Math.abs(centerDistance([0, 0, 0.2, 0.2], [0.3, 0.4, 0.5, 0.6]) - 0.5) < 1e-9));

test("lerpBox", () => close(lerpBox([0, 0, 1, 1], [1, 1, 2, 2], 0.25), [0.25, 0.25, 1.25, 1.25]));

describe("matchItems", () => {
  const opts = { keyOf: (d) => `${d.model}/${d.label}`, boxOf: (d) => d.box, minIou: 0.3 };

  test("matches the same label one-to-one by best IoU", () => {
    const prev = [det("person", [0, 0, 0.2, 0.2]), det("person", [0.5, 0.5, 0.7, 0.7])];
    const curr = [det("person", [0.52, 0.5, 0.72, 0.7]), det("person", [0.01, 0, 0.21, 0.2])];
    const m = matchItems(prev, curr, opts);
    assert.deepEqual(m.pairs.sort(), [[0, 1], [1, 0]]);
    assert.deepEqual([m.appeared, m.vanished], [[], []]);
  });

  test("different labels or models never match, however much they overlap", () => {
    const prev = [det("person", [0, 0, 0.2, 0.2]), det("cat", [0.5, 0.5, 0.7, 0.7], "face")];
    const curr = [det("dog", [0, 0, 0.2, 0.2]), det("cat", [0.5, 0.5, 0.7, 0.7], "detect")];
    const m = matchItems(prev, curr, opts);
    assert.deepEqual(m.pairs, []);
    assert.deepEqual(m.appeared, [0, 1]);
    assert.deepEqual(m.vanished, [0, 1]);
  });

  test("pairs below minIou stay unmatched", () => {
    const m = matchItems([det("a", [0, 0, 0.2, 0.2])], [det("a", [0.15, 0.15, 0.35, 0.35])], opts);
    assert.deepEqual([m.pairs, m.appeared, m.vanished], [[], [0], [0]]);
  });

  test("a small box that moved off its old area still matches by center distance", () => {
    const prev = [det("face", [0.1, 0.1, 0.15, 0.15])];
    const curr = [det("face", [0.17, 0.1, 0.22, 0.15])];
    assert.deepEqual(matchItems(prev, curr, opts).pairs, [], "no overlap, IoU alone fails");
    const m = matchItems(prev, curr, { ...opts, maxCenterShift: 0.1 });
    assert.deepEqual([m.pairs, m.appeared, m.vanished], [[[0, 0]], [], []]);
  });

  test("the distance pass never takes a box the IoU pass matched, and respects the limit", () => {
    const prev = [det("a", [0, 0, 0.2, 0.2]), det("a", [0.5, 0.5, 0.55, 0.55])];
    const curr = [det("a", [0.01, 0, 0.21, 0.2]), det("a", [0.8, 0.8, 0.85, 0.85])];
    const m = matchItems(prev, curr, { ...opts, maxCenterShift: 0.1 });
    assert.deepEqual([m.pairs, m.appeared, m.vanished], [[[0, 0]], [1], [1]]);
  });

  test("two candidates for one previous box: the better overlap wins, the other appears", () => {
    const prev = [det("a", [0, 0, 0.2, 0.2])];
    const curr = [det("a", [0.05, 0, 0.25, 0.2]), det("a", [0.01, 0, 0.21, 0.2])];
    const m = matchItems(prev, curr, opts);
    assert.deepEqual(m.pairs, [[0, 1]]);
    assert.deepEqual(m.appeared, [0]);
  });
});

describe("keypointsBox", () => {
  test("uses confident points only", () => {
    assert.deepEqual(keypointsBox([[0.1, 0.2, 0.9], [0.5, 0.6, 0.8], [0.99, 0.99, 0.01]], 0.2), [0.1, 0.2, 0.5, 0.6]);
  });
  test("falls back to all points, and to an empty box", () => {
    assert.deepEqual(keypointsBox([[0.1, 0.2, 0], [0.3, 0.4, 0]], 0.2), [0.1, 0.2, 0.3, 0.4]);
    assert.deepEqual(keypointsBox([], 0.2), [0, 0, 0, 0]);
  });
});

describe("interpolateResults", () => {
  const A = det("person", [0.1, 0.1, 0.3, 0.5]);
  const A2 = det("person", [0.2, 0.1, 0.4, 0.5]);

  test("zero results: nothing to draw", () => {
    assert.deepEqual(interpolateResults(null, null, 1000), { detections: [], keypoints: [], texts: [], masks: [] });
  });

  test("one result: drawn as is, fully opaque", () => {
    const out = interpolateResults(null, result(1000, [A]), 1010);
    assert.equal(out.detections.length, 1);
    assert.deepEqual(out.detections[0].box, A.box);
    assert.equal(out.detections[0].opacity, 1);
  });

  for (const [name, now, expectedX1] of [
    ["at arrival: still at the old position", 1100, 0.1],
    ["halfway through the interval", 1150, 0.15],
    ["at the end of the interval", 1200, 0.2],
    ["past the interval: stays at the new position (no extrapolation)", 1500, 0.2],
    ["a clock before arrival clamps to the old position", 1000, 0.1],
  ]) {
    test(`two results, matched box — ${name}`, () => {
      const out = interpolateResults(result(1000, [A]), result(1100, [A2]), now);
      assert.equal(out.detections.length, 1);
      assert.ok(Math.abs(out.detections[0].box[0] - expectedX1) < 1e-9, String(out.detections[0].box));
      assert.equal(out.detections[0].opacity, 1);
    });
  }

  test("a long gap between results glides over at most maxBlendMs", () => {
    const out = interpolateResults(result(0, [A]), result(5000, [A2]), 5000 + DEFAULT_INTERPOLATION.maxBlendMs / 2);
    assert.ok(Math.abs(out.detections[0].box[0] - 0.15) < 1e-9);
  });

  test("two results at the same instant: the newest is drawn", () => {
    const out = interpolateResults(result(1000, [A]), result(1000, [A2]), 1000);
    assert.deepEqual(out.detections.map((d) => d.box), [A2.box]);
  });

  test("a disappearing box fades out, then is gone", () => {
    const prev = result(1000, [A]);
    const curr = result(1100, []);
    const mid = interpolateResults(prev, curr, 1125);
    assert.equal(mid.detections.length, 1);
    assert.deepEqual(mid.detections[0].box, A.box);
    assert.ok(Math.abs(mid.detections[0].opacity - 0.75) < 1e-9);
    assert.equal(interpolateResults(prev, curr, 1200).detections.length, 0);
  });

  test("a new box fades in at its own position", () => {
    const out = interpolateResults(result(1000, []), result(1100, [A]), 1150);
    assert.deepEqual(out.detections[0].box, A.box);
    assert.ok(Math.abs(out.detections[0].opacity - 0.5) < 1e-9);
  });

  test("a stale result fades out and then draws nothing", () => {
    const { staleMs, fadeMs } = DEFAULT_INTERPOLATION;
    const curr = result(0, [A]);
    assert.equal(interpolateResults(null, curr, staleMs).detections[0].opacity, 1);
    assert.ok(Math.abs(interpolateResults(null, curr, staleMs + fadeMs / 2).detections[0].opacity - 0.5) < 1e-9);
    assert.deepEqual(interpolateResults(null, curr, staleMs + fadeMs).detections, []);
  });

  test("keypoints of a matched pose are interpolated point by point", () => {
    const pose = (dx) => ({ model: "pose", points: [[0.1 + dx, 0.1, 0.9], [0.3 + dx, 0.5, 0.9]] });
    const out = interpolateResults(
      result(0, [], { keypoints: [pose(0)] }),
      result(100, [], { keypoints: [pose(0.1)] }),
      150,
    );
    assert.equal(out.keypoints.length, 1);
    close(out.keypoints[0].points[0], [0.15, 0.1, 0.9]);
    close(out.keypoints[0].points[1], [0.35, 0.5, 0.9]);
  });

  test("texts match by region even when the reading changes, and show the newest text", () => {
    const t = (text, x) => ({ model: "ocr", text, score: 1, box: [x, 0.1, x + 0.3, 0.2] });
    const out = interpolateResults(
      result(0, [], { texts: [t("EX1T", 0.1)] }),
      result(100, [], { texts: [t("EXIT", 0.12)] }),
      150,
    );
    assert.equal(out.texts.length, 1);
    assert.equal(out.texts[0].text, "EXIT");
    assert.ok(Math.abs(out.texts[0].box[0] - 0.11) < 1e-9);
  });

  test("the inputs are not modified", () => {
    const prev = result(0, [structuredClone(A)]);
    const curr = result(100, [structuredClone(A2)]);
    const before = JSON.stringify([prev, curr]);
    interpolateResults(prev, curr, 150);
    assert.equal(JSON.stringify([prev, curr]), before);
  });
});
