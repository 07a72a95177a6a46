// Sizes and rectangles for capture and drawing. Pure.

/** The largest size with the source's aspect ratio inside max×max, never upscaled. */
export function fitSize(srcW, srcH, maxW, maxH) {
  if (!(srcW > 0 && srcH > 0 && maxW > 0 && maxH > 0)) {
    throw new RangeError(`sizes must be positive: ${srcW}x${srcH} into ${maxW}x${maxH}`);
  }
  const scale = Math.min(1, maxW / srcW, maxH / srcH);
  return {
    width: Math.max(1, Math.round(srcW * scale)),
    height: Math.max(1, Math.round(srcH * scale)),
  };
}

/** Where a srcW×srcH picture lands when fitted, centered, into a dstW×dstH area ("contain"). */
export function containRect(srcW, srcH, dstW, dstH) {
  if (!(srcW > 0 && srcH > 0) || !(dstW > 0 && dstH > 0)) return { x: 0, y: 0, width: 0, height: 0 };
  const scale = Math.min(dstW / srcW, dstH / srcH);
  const width = srcW * scale;
  const height = srcH * scale;
  return { x: (dstW - width) / 2, y: (dstH - height) / 2, width, height };
}

/** A normalized (0..1) point of the frame → pixels in `rect`; coordinates are clamped. */
export function toRect(x, y, rect) {
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return [rect.x + clamp(x) * rect.width, rect.y + clamp(y) * rect.height];
}
