import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { describeCameraError } from "../../frontend/js/engine/camera.js";
import { colorFor, overlayLabel } from "../../frontend/js/engine/renderer.js";

describe("overlayLabel", () => {
  for (const [item, text] of [
    [{ model: "detect", label: "person", score: 0.874 }, "person 87%"],
    [{ model: "face", label: "face", score: 1 }, "face 100%"],
    [{ model: "ocr", text: "EXIT", score: 0.5 }, "EXIT"],
    [{ model: "text", text: "", score: 0.5 }, ""],
  ]) {
    test(JSON.stringify(item), () => assert.equal(overlayLabel(item), text));
  }
});

test("every model has its own colour; unknown models get a neutral one", () => {
  const colours = ["detect", "pose", "face", "text", "ocr"].map(colorFor);
  assert.equal(new Set(colours).size, 5);
  assert.equal(colorFor("future-model"), colorFor("another-one"));
});

describe("describeCameraError", () => {
  for (const [name, words] of [
    ["NotAllowedError", /denied/],
    ["SecurityError", /denied/],
    ["NotFoundError", /No camera/],
    ["OverconstrainedError", /No camera/],
    ["NotReadableError", /busy/],
    ["NotSupportedError", /could not be opened/],
  ]) {
    test(name, () => assert.match(describeCameraError({ name, message: "x" }), words));
  }
  test("a missing error still reads well", () => assert.equal(describeCameraError(undefined), "The camera could not be opened."));
});
