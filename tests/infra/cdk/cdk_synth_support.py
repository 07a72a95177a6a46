"""Shared by the CDK tests (a distinctive module name: imported as `from cdk_synth_support …`).

Importing this module configures jsii's Node before the first `aws_cdk` import.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

# jsii starts Node on the first aws_cdk import: prefer the venv's Node 24 (faster, no
# end-of-life banner) and keep the CDK quiet and offline.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_VERSION_CHECK", "1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

from aws_cdk.assertions import Template

from infra.config import DeployConfig
from infra.paths import REPO_ROOT

BUNDLING_STACKS = "aws:cdk:bundling-stacks"
"""Context key: the stacks whose assets are bundled; [] skips pip in tests."""


def cdk_json_context() -> dict[str, object]:
    """The feature flags and settings `cdk synth` passes to the app (App() alone has none)."""
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))
    context: dict[str, object] = cdk_json["context"]
    return context


@dataclass(frozen=True)
class Synthesized:
    config: DeployConfig
    outdir: Path
    gpu: Template
    hosting: Template
    control: Template

    def template_files(self) -> list[Path]:
        return sorted(self.outdir.glob("*.template.json"))

    def acknowledgments(self) -> dict[tuple[str, str], str]:
        """(construct path, rule) → reason, from the assembly's metadata."""
        found: dict[tuple[str, str], str] = {}
        for path in self.outdir.glob("*.metadata.json"):
            metadata = json.loads(path.read_text(encoding="utf-8"))
            for construct_path, entries in metadata.items():
                for entry in entries:
                    if entry["type"] == "aws:cdk:acknowledged-rules":
                        for rule, reason in entry["data"].items():
                            found[(construct_path, rule)] = reason
        return found

    def validation_report(self) -> dict[str, object]:
        report: dict[str, object] = json.loads(
            (self.outdir / "validation-report.json").read_text(encoding="utf-8")
        )
        return report
