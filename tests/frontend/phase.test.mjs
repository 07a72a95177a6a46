import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  PHASES,
  formatClock,
  formatEta,
  idleCountdown,
  nextStartClock,
  parseStopAt,
  phaseLabel,
  pollIntervalMs,
  remainingEta,
  statusLine,
} from "../../frontend/js/phase.js";

describe("phaseLabel", () => {
  test("every phase has its own label", () => {
    const labels = PHASES.map(phaseLabel);
    assert.equal(new Set(labels).size, PHASES.length);
  });
  test("an unknown phase reads as checking", () => assert.equal(phaseLabel("warp"), "Checking GPU…"));
});

describe("pollIntervalMs", () => {
  for (const [phase, ms] of [
    ["starting", 1000],
    ["booting", 1000],
    ["stopping", 1000],
    ["ready", 2000],
    ["stopped", 2000],
    ["error", 2000],
    [undefined, 2000],
  ]) {
    test(`${phase}: ${ms} ms`, () => assert.equal(pollIntervalMs(phase), ms));
  }
});

describe("formatClock", () => {
  for (const [s, text] of [
    [0, "0:00"],
    [7.9, "0:07"],
    [59, "0:59"],
    [125, "2:05"],
    [3723, "1:02:03"],
    [-5, "0:00"],
  ]) {
    test(`${s} s → ${text}`, () => assert.equal(formatClock(s), text));
  }
});

describe("formatEta", () => {
  for (const [s, text] of [
    [null, ""],
    [undefined, ""],
    [Number.NaN, ""],
    [0, "any moment now"],
    [-3, "any moment now"],
    [1, "~5 s"],
    [12, "~15 s"],
    [59, "~60 s"],
    [60, "~1 min"],
    [61, "~2 min"],
    [120, "~2 min"],
    [150, "~3 min"],
  ]) {
    test(`${s} → "${text}"`, () => assert.equal(formatEta(s), text));
  }
});

describe("remainingEta", () => {
  test("counts down from when the status was received, never below zero", () => {
    assert.equal(remainingEta(120, 1000, 1000), 120);
    assert.equal(remainingEta(120, 1000, 31_000), 90);
    assert.equal(remainingEta(120, 1000, 500_000), 0);
  });
  test("unknown stays unknown", () => assert.equal(remainingEta(null, 0, 10), null));
});

describe("parseStopAt", () => {
  for (const [name, value, ms] of [
    ["epoch seconds", 1_700_000_000, 1_700_000_000_000],
    ["fractional epoch seconds", 1_700_000_000.5, 1_700_000_000_500],
    ["epoch seconds as a string", "1700000000", 1_700_000_000_000],
    ["ISO-8601", "2023-11-14T22:13:20Z", 1_700_000_000_000],
    ["null", null, null],
    ["absent", undefined, null],
    ["empty string", "", null],
    ["garbage", "soon", null],
    ["zero", 0, null],
    ["a boolean", true, null],
  ]) {
    test(`${name}`, () => assert.equal(parseStopAt(value), ms));
  }
});

describe("idleCountdown", () => {
  test("counts down to the stop", () => {
    assert.equal(idleCountdown(200_000, 87_000), "Idle: the GPU stops in 1:53 unless it is used.");
  });
  test("past the stop time", () => assert.equal(idleCountdown(1000, 2000), "Idle: the GPU is stopping now."));
  test("no stop scheduled", () => assert.equal(idleCountdown(null, 0), null));
  test("a stop further away than the warning window shows nothing", () => {
    assert.equal(idleCountdown(200_000, 67_000), null);
    assert.equal(idleCountdown(200_000, 67_000, 300), "Idle: the GPU stops in 2:13 unless it is used.");
  });
});

describe("nextStartClock", () => {
  for (const [name, before, phase, now, after] of [
    ["a start begins", null, "starting", 50, 50],
    ["starting → booting keeps the clock", 50, "booting", 90, 50],
    ["booting first seen (page loaded mid-boot)", null, "booting", 70, 70],
    ["ready clears it", 50, "ready", 99, null],
    ["stopped clears it", 50, "stopped", 99, null],
    ["error clears it", 50, "error", 99, null],
  ]) {
    test(name, () => assert.equal(nextStartClock(before, phase, now), after));
  }
});

describe("statusLine", () => {
  test("booting with ETA and elapsed time", () => {
    const line = statusLine({ phase: "booting", etaS: 150, etaReceivedAtMs: 0, startedAtMs: 0 }, 37_000);
    assert.equal(line, "GPU booting… ~2 min · 0:37 elapsed");
  });
  test("starting without an ETA", () => {
    assert.equal(statusLine({ phase: "starting", etaS: null, etaReceivedAtMs: 0, startedAtMs: 0 }, 5000), "Starting GPU… · 0:05 elapsed");
  });
  test("ready shows neither ETA nor elapsed time", () => {
    assert.equal(statusLine({ phase: "ready", etaS: 10, etaReceivedAtMs: 0, startedAtMs: 0 }, 5000), "GPU ready");
  });
});
