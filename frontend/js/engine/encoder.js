// Video frame → small JPEG, off the main canvas.

import { fitSize } from "../geometry.js";

export const CAPTURE_MAX = Object.freeze({ width: 320, height: 240 });
export const JPEG_QUALITY = 0.7;

/** encode(video) → Uint8Array of JPEG bytes, scaled to fit CAPTURE_MAX with the video's aspect. */
export function createFrameEncoder(doc) {
  let canvas = null;
  let context = null;

  function target(width, height) {
    if (canvas === null) {
      // OffscreenCanvas.convertToBlob encodes without touching the DOM; older browsers lack it.
      canvas = typeof OffscreenCanvas === "function" ? new OffscreenCanvas(width, height) : doc.createElement("canvas");
      context = canvas.getContext("2d", { alpha: false });
    }
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    return context;
  }

  function toBlob() {
    if (typeof canvas.convertToBlob === "function") {
      return canvas.convertToBlob({ type: "image/jpeg", quality: JPEG_QUALITY });
    }
    return new Promise((resolve, reject) => {
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("JPEG encoding failed"))), "image/jpeg", JPEG_QUALITY);
    });
  }

  return {
    async encode(video) {
      const { width, height } = fitSize(video.videoWidth, video.videoHeight, CAPTURE_MAX.width, CAPTURE_MAX.height);
      target(width, height).drawImage(video, 0, 0, width, height);
      const blob = await toBlob();
      return new Uint8Array(await blob.arrayBuffer());
    },
  };
}
