// Static checks of the pages: the element contract the end-to-end tests rely on, that every
// referenced file exists, and that every module loads (syntax and import paths).
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const FRONTEND = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "frontend");
const read = (name) => readFileSync(join(FRONTEND, name), "utf8");

describe("index.html", () => {
  const html = read("index.html");
  for (const id of ["start", "stop", "status", "message", "keepalive", "engine", "stats", "stream", "error", "models", "signin", "signin-button", "signout"]) {
    test(`has #${id} with data-testid`, () => {
      assert.match(html, new RegExp(`id="${id}"[^>]*data-testid="${id}"`, "s"));
    });
  }
  test("#status starts with data-phase and #stats with data-results, data-boxes and data-masks (what the e2e tests wait on)", () => {
    assert.match(html, /id="status"[^>]*data-phase="unknown"/s);
    assert.match(html, /id="stats"[^>]*data-results="0"[^>]*data-boxes="0"[^>]*data-masks="0"/s);
  });
  test("#read-text starts hidden (it shows when a text-reading model is chosen)", () => {
    assert.match(html, /<button[^>]*id="read-text"[^>]*data-testid="read-text"[^>]*hidden/s);
  });
  test("the engine iframe may use the camera", () => {
    assert.match(html, /<iframe[^>]*id="engine"[^>]*data-src="engine.html"[^>]*allow="camera"/s);
  });
});

describe("referenced files exist", () => {
  for (const page of ["index.html", "engine.html"]) {
    test(page, () => {
      const refs = [...read(page).matchAll(/(?:src|href|data-src)="([^"#:]+)"/g)].map((m) => m[1]);
      assert.ok(refs.length >= 2);
      for (const ref of refs) assert.ok(existsSync(join(FRONTEND, ref)), `${page} → ${ref} missing`);
    });
  }
});

// The Content-Security-Policy (infra/csp.py) allows scripts and styles only as files from the
// page's origin: anything inline would be blocked in the browser, so it must not exist.
describe("pages work under the strict Content-Security-Policy", () => {
  for (const page of ["index.html", "engine.html"]) {
    const html = read(page);
    test(`${page}: every script is an external module`, () => {
      const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
      assert.ok(scripts.length >= 1);
      for (const [, attributes, body] of scripts) {
        assert.match(attributes, /\bsrc="[^"]+"/, `${page}: inline <script>`);
        assert.match(attributes, /\btype="module"/);
        assert.equal(body.trim(), "", `${page}: a script with both src and a body`);
      }
    });
    test(`${page}: no inline event handlers, styles or javascript: URLs`, () => {
      assert.doesNotMatch(html, /<[^>]+\son[a-z]+\s*=/i, "an on…= handler attribute");
      assert.doesNotMatch(html, /<[^>]+\sstyle\s*=/i, "a style attribute");
      assert.doesNotMatch(html, /<style\b/i, "a <style> element");
      assert.doesNotMatch(html, /javascript:/i);
    });
  }
});

const modules = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return modules(path);
    return entry.name.endsWith(".js") ? [path] : [];
  });

describe("every module loads", () => {
  // The two entry points run against the browser's globals; the rest must import cleanly.
  const entries = new Set(["js/ui/main.js", "js/engine/main.js"]);
  for (const path of modules(join(FRONTEND, "js"))) {
    const name = relative(FRONTEND, path);
    if (entries.has(name)) continue;
    test(name, async () => {
      await import(pathToFileURL(path).href);
    });
  }
});

test("no module evaluates strings as code or writes HTML", () => {
  for (const path of modules(join(FRONTEND, "js"))) {
    const source = readFileSync(path, "utf8");
    for (const pattern of [/\beval\(/, /new Function\(/, /\.innerHTML\b/, /insertAdjacentHTML/, /document\.write/, /setTimeout\(\s*["'`]/]) {
      assert.doesNotMatch(source, pattern, relative(FRONTEND, path));
    }
  }
});

test("no message is ever posted to '*'", () => {
  for (const path of modules(join(FRONTEND, "js"))) {
    assert.doesNotMatch(readFileSync(path, "utf8"), /postMessage\([^)]*["']\*["']/, relative(FRONTEND, path));
  }
});
