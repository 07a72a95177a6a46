// The engine's half of the socket protocol's shared cases (tests/contracts/protocol_cases.json);
// tests/contracts/test_protocol_cases.py runs the backend's half of the same file.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { maskCells, maskProblem, parseMask } from "../../frontend/js/masks.js";
import { PROTOCOL, describeClose, helloMessage, parseServerMessage, readTextMessage } from "../../frontend/js/protocol.js";

const CASES = JSON.parse(readFileSync(new URL("../contracts/protocol_cases.json", import.meta.url), "utf8"));
const CLIENT = { readTextMessage };

describe("server messages as the backend builds them", () => {
  for (const { name, wire, parsed } of CASES.server_messages) {
    test(`parses: ${name}`, () => {
      assert.deepEqual(parseServerMessage(JSON.stringify(wire)), parsed);
    });
  }

  test("every server message type of the protocol has a case", () => {
    const sent = new Set(CASES.server_messages.map((c) => c.wire.type));
    assert.deepEqual([...sent].sort(), Object.keys(PROTOCOL.server_messages).sort());
  });

  for (const { name, text, parsed } of CASES.other_server_messages) {
    test(`passes on: ${name}`, () => {
      assert.deepEqual(parseServerMessage(text), parsed);
    });
  }

  for (const { name, text, reason, frameId } of CASES.bad_server_messages) {
    test(`refuses without throwing: ${name}`, () => {
      const message = parseServerMessage(text);
      assert.equal(message.type, "invalid");
      assert.match(message.reason, new RegExp(reason));
      if (frameId !== undefined) assert.equal(message.frameId, frameId);
    });
  }
});

describe("masks as the backend encodes them", () => {
  const cellsOf = (rows) => Uint8Array.from(rows.join(""), (c) => (c === "#" ? 1 : 0));

  for (const { name, rows, wire } of CASES.masks) {
    test(`decodes: ${name}`, () => {
      const mask = parseMask(wire);
      assert.deepEqual(mask, wire);
      assert.deepEqual(mask.size, [rows[0].length, rows.length]);
      assert.deepEqual(maskCells(mask), cellsOf(rows));
    });
  }

  for (const { name, wire, reason } of CASES.bad_masks) {
    test(`drops: ${name}`, () => {
      assert.equal(parseMask(wire), null);
      assert.match(maskProblem(wire), new RegExp(reason));
      const parsed = parseServerMessage(JSON.stringify({ type: "result", frame_id: 1, masks: [wire] }));
      assert.equal(parsed.type, "result");
      assert.deepEqual(parsed.masks, []);
      assert.match(parsed.droppedMasks[0], new RegExp(reason));
    });
  }
});

describe("client messages as the backend accepts them", () => {
  for (const { name, client, wire } of CASES.requests) {
    test(`${client}() sends ${name}`, () => {
      assert.deepEqual(JSON.parse(CLIENT[client]()), wire);
    });
  }

  for (const { name, client, wire } of CASES.hellos.filter((c) => c.client !== undefined)) {
    test(`helloMessage: ${name}`, () => {
      assert.deepEqual(JSON.parse(helloMessage(...client)), wire);
    });
  }
});

describe("close codes", () => {
  test("every close code of the protocol has a case", () => {
    const listed = CASES.closes.filter((c) => c.listed !== false).map((c) => c.code);
    const codes = Object.values(PROTOCOL.close_codes).map((c) => c.code);
    assert.deepEqual([...listed].sort(), [...codes].sort());
  });

  for (const { code, retry, words } of CASES.closes) {
    test(`${code}: ${retry ? "retry" : "stop"}, saying /${words}/`, () => {
      const why = describeClose(code);
      assert.equal(why.retry, retry);
      assert.match(why.message, new RegExp(words, "i"));
    });
  }
});
