"""`python -m gpu_host.models add FILE --task detect|segment|pose --name NAME [--labels FILE]`

Adds a user's Ultralytics YOLO export (ONNX, or TFLite converted once) to the models this
checkout serves: checks it, makes its batch dynamic where the graph allows, writes it and
its `user_models.json` entry, and says what it did. A file it cannot serve is refused with
exit code 2 and a message that says why; nothing is written then.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from gpu_host.models.add.command import Added, AddRequest, add_model
from gpu_host.models.add.errors import AddError
from gpu_host.models.spec import USER_MODELS_FILE

REFUSED = 2


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m gpu_host.models")
    commands = root.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add your own YOLO detect, segment or pose export")
    add.add_argument("file", type=Path, help="the .onnx (or .tflite) file Ultralytics exported")
    add.add_argument("--task", required=True, choices=("detect", "segment", "pose"))
    add.add_argument("--name", required=True, help="what clients select it by (a-z0-9_-)")
    add.add_argument(
        "--labels", type=Path, help="class names: a text file, one a line, or a JSON list"
    )
    add.add_argument(
        "--user-dir",
        type=Path,
        default=USER_MODELS_FILE.parent,
        help=f"where the model and user_models.json go (default {USER_MODELS_FILE.parent})",
    )
    add.add_argument("--size", type=int, help="the export's imgsz, if the graph leaves it free")
    add.add_argument(
        "--tf-venv",
        type=Path,
        default=Path("/tmp/spinup-tf-venv"),
        help="the TensorFlow venv that converts a TFLite file (made on first use)",
    )
    return root


def report(added: Added, declarations: Path) -> str:
    entry = added.entry
    classes = ", ".join(entry.labels) if entry.labels else None
    lines = [
        f"added {entry.name!r}: {added.layout.describe()}"
        + (f" ({classes})" if classes and len(classes) < 200 else ""),
        *(
            ["converted from TFLite with tf2onnx; its coordinates are in 0..1 of the input"]
            if added.from_tflite
            else []
        ),
        f"batch: {added.batching}",
        f"wrote {added.model_file}",
        f"declared it in {declarations}",
        "see it: `make demo`, then pick "
        f'{entry.name!r} in the model list (or send "models": ["{entry.name}"] in a hello)',
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    args = parser().parse_args(argv)
    declarations = args.user_dir / USER_MODELS_FILE.name
    request = AddRequest(
        file=args.file,
        task=args.task,
        name=args.name,
        declarations=declarations,
        labels=args.labels,
        size=args.size,
        tf_venv=args.tf_venv,
    )
    try:
        added = add_model(request)
    except AddError as exc:
        sys.stderr.write(f"refused: {exc}\n")
        return REFUSED
    sys.stdout.write(report(added, declarations) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
