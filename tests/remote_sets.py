"""The input folder the remote-folder tests (FTP, S3) share."""

from __future__ import annotations

from pathlib import Path

from dcmanon.testing import write_study_tree


def mixed_study(root: Path) -> Path:
    """Four DICOM files of two patients, a non-DICOM file and a broken one, under ``root``."""
    write_study_tree(root, patients=2, studies=1, series=1, instances=2)
    (root / "notes.txt").write_text("not DICOM, and may hold PHI")
    (root / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x08\x00" * 10)
    return root
