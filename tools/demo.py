"""The demo: make synthetic patients with planted fake PHI, anonymize them, count what is left.

Run by ``make demo``. Everything it makes is invented (see dcmanon.testing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from dcmanon.testing import make_patient, phi_markers, write_study_tree

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"


def count_markers(folder: Path, markers: list[str]) -> tuple[int, int]:
    """How many planted markers appear in the files' bytes, and in their paths."""
    in_bytes = in_names = 0
    for path in folder.rglob("*"):
        if path.is_file():
            data, name = path.read_bytes(), str(path.relative_to(folder))
            in_bytes += sum(data.count(m.encode()) for m in markers)
            in_names += sum(name.count(m) for m in markers)
    return in_bytes, in_names


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    inputs, outputs = DEMO / "input", DEMO / "output"
    paths = write_study_tree(inputs, patients=3, studies=2, series=2, instances=2)
    markers = sorted({m for i in range(3) for m in phi_markers(make_patient(i))})
    print(f"demo: wrote {len(paths)} synthetic CT files for 3 fake patients to {inputs}")
    env = {**os.environ, "DCMANON_KEY": "demo-secret-not-for-real-use"}
    command = [sys.executable, "-m", "dcmanon", "-I", str(inputs), "-O", str(outputs)]
    print("demo: $ DCMANON_KEY=... dcmanon -I demo/input -O demo/output   "
          "# the PS3.15 Basic Profile")
    status = subprocess.run(command, env=env, check=False).returncode
    (before, names_before), (after, names_after) = count_markers(inputs, markers), \
        count_markers(outputs, markers)
    print(f"demo: planted fake-PHI markers inside the files: {before} before, {after} after")
    # The mirrored layout keeps input paths, which here carry the fake names on purpose.
    print(f"demo: markers in file and folder names: {names_before} before, {names_after} after "
          "(the mirrored layout keeps input names)")
    return status


if __name__ == "__main__":
    sys.exit(main())
