// The models a user can pick: the one list the UI builds its checkboxes from.
// `id` is the model's name in the WebSocket hello (docs/architecture.md).

export const MODELS = Object.freeze([
  { id: "detect", label: "Objects", hint: "Boxes around people and things" },
  { id: "pose", label: "Pose", hint: "17-point body skeletons" },
  { id: "face", label: "Faces", hint: "Face boxes" },
  { id: "text", label: "Text regions", hint: "Where text is" },
  { id: "ocr", label: "Text reading", hint: "What the text says (OCR)", readsText: true },
]);

export const DEFAULT_MODELS = Object.freeze(["detect", "pose"]);

const KNOWN = new Set(MODELS.map((m) => m.id));
const TEXT_READERS = new Set(MODELS.filter((m) => m.readsText).map((m) => m.id));

/** Whether a selection reads text, so that the protocol's read_text request means something. */
export function readsText(ids) {
  return ids.some((id) => TEXT_READERS.has(id));
}

/** Known ids only, in the list's order, without duplicates. */
export function normalizeSelection(ids) {
  const wanted = new Set(ids);
  return MODELS.map((m) => m.id).filter((id) => wanted.has(id) && KNOWN.has(id));
}
