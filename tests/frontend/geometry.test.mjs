import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { COCO_KEYPOINTS, COCO_SKELETON } from "../../frontend/js/coco.js";
import { containRect, fitSize, toRect } from "../../frontend/js/geometry.js";
import { DEFAULT_MODELS, MODELS, MODEL_ID, modelChoices, normalizeSelection, offeredModels, readsText } from "../../frontend/js/models.js";

describe("fitSize", () => {
  for (const [src, max, out] of [
    [[640, 480], [320, 240], [320, 240]],
    [[1280, 720], [320, 240], [320, 180]],
    [[480, 640], [320, 240], [180, 240]],
    [[160, 120], [320, 240], [160, 120]], // never upscaled
    [[4000, 1], [320, 240], [320, 1]], // never zero
  ]) {
    test(`${src} into ${max}`, () => assert.deepEqual(fitSize(...src, ...max), { width: out[0], height: out[1] }));
  }
  test("rejects zero sizes (no video yet)", () => assert.throws(() => fitSize(0, 0, 320, 240), RangeError));
});

describe("containRect", () => {
  test("letterboxes a 4:3 picture in a 16:9 area", () => {
    assert.deepEqual(containRect(640, 480, 1600, 900), { x: 200, y: 0, width: 1200, height: 900 });
  });
  test("pillarboxes a 16:9 picture in a 4:3 area", () => {
    assert.deepEqual(containRect(1600, 900, 800, 600), { x: 0, y: 75, width: 800, height: 450 });
  });
  test("empty when a size is zero", () => assert.deepEqual(containRect(0, 480, 800, 600), { x: 0, y: 0, width: 0, height: 0 }));
});

test("toRect maps and clamps normalized points", () => {
  const rect = { x: 10, y: 20, width: 100, height: 50 };
  assert.deepEqual(toRect(0.5, 0.5, rect), [60, 45]);
  assert.deepEqual(toRect(-1, 2, rect), [10, 70]);
});

test("the COCO skeleton joins valid keypoints", () => {
  assert.equal(COCO_KEYPOINTS.length, 17);
  for (const [a, b] of COCO_SKELETON) assert.ok(a >= 0 && a < 17 && b >= 0 && b < 17 && a !== b);
});

describe("models", () => {
  test("the six built-in models, with the default among them", () => {
    assert.deepEqual(MODELS.map((m) => m.id), ["detect", "pose", "face", "text", "ocr", "segment"]);
    for (const id of DEFAULT_MODELS) assert.ok(MODELS.some((m) => m.id === id));
  });
  test("objects and pose are ticked by default, as the backend's hello default", () => {
    assert.deepEqual([...DEFAULT_MODELS], ["detect", "pose"]);
  });
  test("normalizeSelection keeps known ids in list order without duplicates", () => {
    assert.deepEqual(normalizeSelection(["ocr", "bogus", "detect", "ocr"]), ["detect", "ocr"]);
    assert.deepEqual(normalizeSelection([]), []);
  });
  test("Segment is offered, with a hint, and reads no text", () => {
    assert.deepEqual(MODELS.find((m) => m.id === "segment"), { id: "segment", label: "Segment", hint: "Person masks" });
    assert.equal(readsText(["segment"]), false);
  });
  test("every built-in id is a valid model name (what config.json's models must be too)", () => {
    for (const { id } of MODELS) assert.match(id, MODEL_ID);
  });

  const NAILS = { id: "nails", label: "nails", hint: "Your segment model" };

  test("the deployment's own models come after the built-in ones", () => {
    const offered = offeredModels([NAILS]);
    assert.deepEqual(offered.map((m) => m.id), [...MODELS.map((m) => m.id), "nails"]);
    assert.deepEqual(offeredModels().map((m) => m.id), MODELS.map((m) => m.id));
  });
  test("a selection keeps a user model only when it is offered", () => {
    assert.deepEqual(normalizeSelection(["nails", "detect"]), ["detect"]);
    assert.deepEqual(normalizeSelection(["nails", "detect", "nails"], offeredModels([NAILS])), ["detect", "nails"]);
  });
  test("modelChoices: one checkbox per offered model, ticked when selected", () => {
    const choices = modelChoices(offeredModels([NAILS]), ["nails", "pose"]);
    assert.deepEqual(choices.at(-1), { ...NAILS, checked: true });
    assert.deepEqual(choices.filter((c) => c.checked).map((c) => c.id), ["pose", "nails"]);
    assert.equal(choices.length, MODELS.length + 1);
  });
});
