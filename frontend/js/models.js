// The models a user can pick: the built-in list, then the deployment's own models from
// config.json ("models", parsed in config.js). The UI builds its checkboxes from them.
// `id` is the model's name in the WebSocket hello (docs/architecture.md).

export const MODELS = Object.freeze([
  { id: "detect", label: "Objects", hint: "Boxes around people and things" },
  { id: "pose", label: "Pose", hint: "17-point body skeletons" },
  { id: "face", label: "Faces", hint: "Face boxes" },
  { id: "text", label: "Text regions", hint: "Where text is" },
  { id: "ocr", label: "Text reading", hint: "What the text says (OCR)", readsText: true },
  { id: "segment", label: "Segment", hint: "Person masks" },
]);

export const DEFAULT_MODELS = Object.freeze(["detect", "pose"]);

/** What a model id may be: a Triton model name the hello can carry (config.json checks it). */
export const MODEL_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;

const TEXT_READERS = new Set(MODELS.filter((m) => m.readsText).map((m) => m.id));

/** The built-in models followed by the deployment's own (`userModels`, already checked). */
export function offeredModels(userModels = []) {
  return Object.freeze([...MODELS, ...userModels]);
}

/** Whether a selection reads text, so that the protocol's read_text request means something. */
export function readsText(ids) {
  return ids.some((id) => TEXT_READERS.has(id));
}

/** Ids of `models` only, in that list's order, without duplicates. */
export function normalizeSelection(ids, models = MODELS) {
  const wanted = new Set(ids);
  return models.map((m) => m.id).filter((id) => wanted.has(id));
}

/** One checkbox per model, in the offered order: {id, label, hint, checked}. */
export function modelChoices(models, selected) {
  const chosen = new Set(selected);
  return models.map(({ id, label, hint }) => ({ id, label, hint, checked: chosen.has(id) }));
}
