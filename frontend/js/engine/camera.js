// The camera: open, close, and what a failure means to the user.

const CONSTRAINTS = {
  audio: false,
  video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 }, facingMode: "user" },
};

/** Why the camera could not open, in words for the user (from the DOMException name). */
export function describeCameraError(err) {
  switch (err?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Camera access was denied. Allow the camera for this site and press Start again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera was found.";
    case "NotReadableError":
    case "AbortError":
      return "The camera is busy or unavailable (is another app using it?).";
    default:
      return `The camera could not be opened${err?.message ? `: ${err.message}` : "."}`;
  }
}

export async function openCamera(mediaDevices, video) {
  if (!mediaDevices?.getUserMedia) {
    throw Object.assign(new Error("this browser (or an insecure page) offers no camera API"), { name: "NotSupportedError" });
  }
  const stream = await mediaDevices.getUserMedia(CONSTRAINTS);
  video.srcObject = stream;
  await video.play();
  return stream;
}

export function closeCamera(stream, video) {
  for (const track of stream?.getTracks() ?? []) track.stop();
  video.srcObject = null;
}
