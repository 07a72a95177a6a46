"""`python -m bench` (what `make bench` runs): every benchmark, one after the other.

Each prints its own figures; see docs/performance.md for what they mean and what was seen.
"""

from __future__ import annotations

import subprocess
import sys

BENCHES = (
    ("idle traces (control plane, pure decide on a simulated clock)", ["bench.idle_traces"]),
    ("start → ready and frame round trip, text detector", ["bench.roundtrip", "--models", "text"]),
    (
        "frame round trip, objects + pose + faces",
        ["bench.roundtrip", "--models", "detect,pose,face"],
    ),
    ("the backend's CPU per result, 1 and 4 sessions", ["bench.backend"]),
    ("the backend's per-frame CPU without sockets or Triton", ["bench.pipeline"]),
    ("motion gating: frame difference vs Farneback, frames saved", ["bench.motion"]),
    ("masks on the socket: run lengths vs varints, polygons, PNG", ["bench.masks"]),
)


def main() -> int:
    failed = 0
    for title, argv in BENCHES:
        print(f"\n== {title}", flush=True)
        failed += subprocess.run([sys.executable, "-m", *argv], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
