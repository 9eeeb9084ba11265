"""The committed test data (tests/data) is what tools/generate_test_data.py makes of ../shared.

This is the only test that looks at ../shared: without it (a plain clone) it skips, and every
other test reads the committed copy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DATA = ROOT / "tests" / "data"
FOLDERS = ("microsoft", "standard", "pixels")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for folder in FOLDERS for p in sorted((root / folder).rglob("*")) if p.is_file()}


def _generate(out: Path) -> dict[str, bytes]:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "generate_test_data.py"),
                           "--shared", str(SHARED), "--out", str(out)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return _tree(out)


def test_committed_test_data_matches_a_fresh_generation(tmp_path: Path) -> None:
    if not all((SHARED / part).is_dir() for part in ("conformance/microsoft", *FOLDERS[1:])):
        pytest.skip("../shared is not here: the committed tests/data cannot be re-derived")
    fresh = _generate(tmp_path / "first")
    committed = _tree(DATA)
    assert sorted(fresh) == sorted(committed), "run tools/generate_test_data.py"
    changed = [name for name in fresh if fresh[name] != committed[name]]
    assert changed == [], "run tools/generate_test_data.py"
    # Deterministic: a second run gives the same bytes.
    assert _generate(tmp_path / "second") == fresh


def test_committed_test_data_is_complete() -> None:
    """What the tests read is in the repository, with its provenance."""
    tree = _tree(DATA)
    for folder in FOLDERS:
        assert f"{folder}/PROVENANCE.md" in tree
    assert {"microsoft/vectors.json", "microsoft/configuration.json",
            "standard/ps315_e1_1.json", "standard/ps315_safe_private.json",
            "pixels/ctp/DicomPixelAnonymizer.script", "pixels/deid/deid.dicom"} <= set(tree)
    assert sum(name.endswith(".dcm") for name in tree) == 15
    assert sum(len(data) for data in tree.values()) < 3_000_000  # a few MB at most
    cases = json.loads(tree["microsoft/vectors.json"])["cases"]
    assert len(cases) == 14
    assert sum(len(file_cases) for file_cases in cases.values()) == 541
    for name, file_cases in cases.items():
        assert len({case["id"] for case in file_cases}) == len(file_cases), name
