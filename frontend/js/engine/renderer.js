// Draws the video and the interpolated overlays on one canvas, every animation frame.

import { COCO_SKELETON } from "../coco.js";
import { containRect, toRect } from "../geometry.js";
import { maskPixels, maskRect, maskRgba } from "../masks.js";

const COLORS = {
  detect: "#4ade80",
  pose: "#f472b6",
  face: "#60a5fa",
  text: "#facc15",
  ocr: "#fb923c",
  segment: "#a78bfa",
};
const FALLBACK_COLOR = "#e5e7eb";
const KEYPOINT_MIN_SCORE = 0.3;

export const colorFor = (model) => COLORS[model] ?? FALLBACK_COLOR;

/** "person 87%" for a detection; the text itself for an OCR reading (may be empty). */
export function overlayLabel(item) {
  if (typeof item.text === "string") return item.text;
  return `${item.label} ${Math.round(item.score * 100)}%`;
}

export function createRenderer(canvas, win) {
  const ctx = canvas.getContext("2d");
  // Each mask's cells, tinted, in a small canvas of its own: decoded once per result (keyed
  // by the result's `rle` array, which interpolation passes on unchanged), then only scaled
  // into its box on every display frame.
  const maskImages = new WeakMap();

  function fitCanvas() {
    const dpr = win.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(canvas.clientWidth * dpr));
    const height = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    return dpr;
  }

  function label(text, x, y, color, dpr, rect) {
    if (text === "") return;
    ctx.font = `${Math.round(13 * dpr)}px system-ui, sans-serif`;
    const padX = 4 * dpr;
    const h = 18 * dpr;
    const w = ctx.measureText(text).width + 2 * padX;
    // Above the box when there is room, else just inside its top edge.
    const top = y - h >= rect.y ? y - h : y;
    const left = Math.min(x, rect.x + rect.width - w);
    ctx.fillStyle = color;
    ctx.fillRect(left, top, w, h);
    ctx.fillStyle = "#111827";
    ctx.textBaseline = "middle";
    ctx.fillText(text, left + padX, top + h / 2);
  }

  function box(item, rect, dpr) {
    const [x1, y1] = toRect(item.box[0], item.box[1], rect);
    const [x2, y2] = toRect(item.box[2], item.box[3], rect);
    const color = colorFor(item.model);
    ctx.globalAlpha = item.opacity;
    ctx.strokeStyle = color;
    ctx.lineWidth = 2 * dpr;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    label(overlayLabel(item), x1, y1, color, dpr, rect);
  }

  function maskImage(mask) {
    let image = maskImages.get(mask.rle);
    if (image === undefined) {
      const [w, h] = mask.size;
      image = win.document.createElement("canvas");
      image.width = w;
      image.height = h;
      const cells = image.getContext("2d");
      const data = cells.createImageData(w, h);
      data.data.set(maskPixels(mask, maskRgba(mask)));
      cells.putImageData(data, 0, 0);
      maskImages.set(mask.rle, image);
    }
    return image;
  }

  /** Draws one mask stretched over its box; false when the box has no area. */
  function drawMask(mask, rect) {
    const where = maskRect(mask.box, rect);
    if (where === null) return false;
    ctx.globalAlpha = mask.opacity;
    // Smoothing turns a 64×48 grid of cells into soft edges instead of blocks.
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(maskImage(mask), where.x, where.y, where.width, where.height);
    return true;
  }

  function skeleton(pose, rect, dpr) {
    const pts = pose.points.map((p) => [...toRect(p[0], p[1], rect), p[2]]);
    ctx.globalAlpha = pose.opacity;
    ctx.strokeStyle = colorFor(pose.model);
    ctx.fillStyle = colorFor(pose.model);
    ctx.lineWidth = 3 * dpr;
    ctx.beginPath();
    for (const [a, b] of COCO_SKELETON) {
      if (!pts[a] || !pts[b] || pts[a][2] < KEYPOINT_MIN_SCORE || pts[b][2] < KEYPOINT_MIN_SCORE) continue;
      ctx.moveTo(pts[a][0], pts[a][1]);
      ctx.lineTo(pts[b][0], pts[b][1]);
    }
    ctx.stroke();
    for (const [x, y, score] of pts) {
      if (score < KEYPOINT_MIN_SCORE) continue;
      ctx.beginPath();
      ctx.arc(x, y, 3 * dpr, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  return {
    /**
     * One display frame: the video (letterboxed) and the overlay. `video` is null when the
     * camera is off. Returns what was drawn: {boxes (detections and text regions), masks}.
     */
    draw(video, overlay) {
      const dpr = fitCanvas();
      ctx.globalAlpha = 1;
      ctx.fillStyle = "#05070a";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      if (video === null || video.readyState < 2 || video.videoWidth === 0) return { boxes: 0, masks: 0 };
      const rect = containRect(video.videoWidth, video.videoHeight, canvas.width, canvas.height);
      ctx.drawImage(video, rect.x, rect.y, rect.width, rect.height);
      // Masks first: boxes, skeletons and labels stay readable on top of them.
      let masks = 0;
      for (const mask of overlay.masks ?? []) masks += drawMask(mask, rect) ? 1 : 0;
      for (const pose of overlay.keypoints) skeleton(pose, rect, dpr);
      for (const item of overlay.detections) box(item, rect, dpr);
      for (const item of overlay.texts) box(item, rect, dpr);
      ctx.globalAlpha = 1;
      return { boxes: overlay.detections.length + overlay.texts.length, masks };
    },
  };
}
