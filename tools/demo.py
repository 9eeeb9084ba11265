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
    env = {**os.environ, "DCMANON_KEY": "demo-secret-not-for-real-use-0123456789"}
    command = [sys.executable, "-m", "dcmanon", "-I", str(inputs), "-O", str(outputs),
               "--layout", "uid", "--report", str(DEMO / "report.jsonl")]
    print("demo: $ DCMANON_KEY=... dcmanon -I demo/input -O demo/output --layout uid "
          "--report demo/report.jsonl   # the PS3.15 Basic Profile")
    status = subprocess.run(command, env=env, check=False).returncode
    (before, names_before), (after, names_after) = count_markers(inputs, markers), \
        count_markers(outputs, markers)
    print(f"demo: planted fake-PHI markers inside the files: {before} before, {after} after")
    # The input folders carry the fake names on purpose; --layout uid names outputs by UID.
    print(f"demo: markers in file and folder names: {names_before} before, {names_after} after")
    check = subprocess.run([sys.executable, "-m", "dcmanon", "check", "--original", str(inputs),
                            "--anonymized", str(outputs), "--html", str(DEMO / "check.html")],
                           env=env, check=False)
    print(f"demo: dcmanon check exit status {check.returncode} (0 = no identifier of the "
          "originals found); report in demo/check.html")
    return status or check.returncode


if __name__ == "__main__":
    sys.exit(main())
