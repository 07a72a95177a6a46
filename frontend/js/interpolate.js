// Overlay interpolation between the last two backend results. Pure: no DOM, time is a parameter.
//
// Video renders at display rate while results arrive at inference rate (often 5-15 per second),
// so drawing the newest result as is makes boxes jump. Instead, when a result arrives at t1 and
// the one before arrived at t0, the overlay glides from the old positions to the new ones over
// the next (t1 - t0) ms (capped): one result interval of extra lag buys smooth motion.
//
// A result is {atMs, detections, keypoints, texts, masks} with coordinates normalized to 0..1.
// A mask glides like a box: matched by model and label, its box interpolated, and drawn with
// the newest bitmap (masks.js maps it onto the canvas; its cells are not interpolated).
// Every drawn item carries `opacity`: new items fade in, vanished ones fade out, and everything
// fades once results stop arriving (a stalled socket must not leave boxes frozen on screen).

export const DEFAULT_INTERPOLATION = Object.freeze({
  minIou: 0.3,
  // Small or thin boxes that move fast stop overlapping between results; items still unmatched
  // after the IoU pass match by center distance (normalized units) so they glide, not blink.
  maxCenterShift: 0.1,
  maxBlendMs: 250,
  staleMs: 1500,
  fadeMs: 500,
  // Keypoints below this score are left out of a pose's bounding box when matching.
  keypointMinScore: 0.2,
});

export function iou(a, b) {
  const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  const area = (r) => Math.max(0, r[2] - r[0]) * Math.max(0, r[3] - r[1]);
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

export const lerp = (a, b, t) => a + (b - a) * t;

export const lerpBox = (a, b, t) => [0, 1, 2, 3].map((i) => lerp(a[i], b[i], t));

export function centerDistance(a, b) {
  return Math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2);
}

/**
 * One-to-one matching of `prev` to `curr` items with the same key: first greedily by IoU
 * (highest first, at least minIou), then the rest by center distance (nearest first, at most
 * maxCenterShift). Returns index pairs and the unmatched indices.
 */
export function matchItems(prev, curr, { keyOf, boxOf, minIou, maxCenterShift = 0 }) {
  const usedPrev = new Set();
  const usedCurr = new Set();
  const pairs = [];
  const assign = (candidates) => {
    for (const { i, j } of candidates) {
      if (usedPrev.has(i) || usedCurr.has(j)) continue;
      usedPrev.add(i);
      usedCurr.add(j);
      pairs.push([i, j]);
    }
  };
  const byOverlap = [];
  const byDistance = [];
  prev.forEach((p, i) => {
    curr.forEach((c, j) => {
      if (keyOf(p) !== keyOf(c)) return;
      const overlap = iou(boxOf(p), boxOf(c));
      if (overlap >= minIou && overlap > 0) byOverlap.push({ i, j, score: overlap });
      const distance = centerDistance(boxOf(p), boxOf(c));
      if (distance <= maxCenterShift) byDistance.push({ i, j, score: -distance });
    });
  });
  const best = (x, y) => y.score - x.score || x.i - y.i || x.j - y.j;
  assign(byOverlap.sort(best));
  assign(byDistance.sort(best));
  return {
    pairs,
    appeared: curr.map((_, j) => j).filter((j) => !usedCurr.has(j)),
    vanished: prev.map((_, i) => i).filter((i) => !usedPrev.has(i)),
  };
}

/** The bounding box of a pose's confident points (all points when none is confident). */
export function keypointsBox(points, minScore) {
  const confident = points.filter((p) => p[2] >= minScore);
  const use = confident.length > 0 ? confident : points;
  if (use.length === 0) return [0, 0, 0, 0];
  const xs = use.map((p) => p[0]);
  const ys = use.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

function lerpPoints(a, b, t) {
  if (a.length !== b.length) return b;
  return b.map((pb, k) => [lerp(a[k][0], pb[0], t), lerp(a[k][1], pb[1], t), lerp(a[k][2], pb[2], t)]);
}

const KINDS = {
  detections: {
    keyOf: (d) => `${d.model}\u0000${d.label}`,
    boxOf: (d) => d.box,
    blend: (a, b, t) => ({ ...b, box: lerpBox(a.box, b.box, t), score: lerp(a.score, b.score, t) }),
  },
  texts: {
    // OCR text of one region flickers between readings, so it is not part of the match key.
    keyOf: (x) => x.model,
    boxOf: (x) => x.box,
    blend: (a, b, t) => ({ ...b, box: lerpBox(a.box, b.box, t) }),
  },
  masks: {
    keyOf: (m) => `${m.model}\u0000${m.label}`,
    boxOf: (m) => m.box,
    // The newer bitmap over the gliding box (`rle` stays the same array: the renderer's cache key).
    blend: (a, b, t) => ({ ...b, box: lerpBox(a.box, b.box, t), score: lerp(a.score, b.score, t) }),
  },
  keypoints: {
    keyOf: (k) => k.model,
    boxOf: null, // set per call: depends on keypointMinScore
    blend: (a, b, t) => ({ ...b, points: lerpPoints(a.points, b.points, t) }),
  },
};

function blendKind(kind, prevItems, currItems, alpha, fade, match) {
  const { pairs, appeared, vanished } = matchItems(prevItems, currItems, { ...kind, ...match });
  const out = [];
  for (const [i, j] of pairs) out.push({ ...kind.blend(prevItems[i], currItems[j], alpha), opacity: fade });
  for (const j of appeared) out.push({ ...currItems[j], opacity: alpha * fade });
  for (const i of vanished) out.push({ ...prevItems[i], opacity: (1 - alpha) * fade });
  return out.filter((item) => item.opacity > 0);
}

const clamp01 = (x) => Math.min(1, Math.max(0, x));

const KIND_NAMES = ["detections", "keypoints", "texts", "masks"];
const EMPTY = Object.freeze({ detections: [], keypoints: [], texts: [], masks: [] });

/**
 * What to draw at `nowMs`, given the previous and the latest result (either may be null).
 * - no result: nothing;
 * - one result: that result (fading once stale);
 * - two results: the blend described at the top of this file.
 */
export function interpolateResults(prev, curr, nowMs, options = {}) {
  const opts = { ...DEFAULT_INTERPOLATION, ...options };
  if (curr === null || curr === undefined) return EMPTY;
  const age = nowMs - curr.atMs;
  const fade = clamp01(1 - (age - opts.staleMs) / opts.fadeMs);
  if (fade <= 0) return EMPTY;
  const span = prev ? Math.min(curr.atMs - prev.atMs, opts.maxBlendMs) : 0;
  const alpha = span > 0 ? clamp01(age / span) : 1;
  const previous = alpha < 1 && prev ? prev : EMPTY;
  const kinds = {
    ...KINDS,
    keypoints: { ...KINDS.keypoints, boxOf: (k) => keypointsBox(k.points, opts.keypointMinScore) },
  };
  const result = {};
  for (const name of KIND_NAMES) {
    const match = { minIou: opts.minIou, maxCenterShift: opts.maxCenterShift };
    result[name] = blendKind(kinds[name], previous[name] ?? [], curr[name] ?? [], alpha, fade, match);
  }
  return result;
}
