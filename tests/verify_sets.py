"""Synthetic original / de-identified sets for the check, scan and report tests.

The originals are a ``dcmanon.testing`` study tree (fake patients with planted fake PHI in
their folder names and everywhere inside). The outputs are made with the default profile and
written under neutral names (``0000.dcm``...), so that the clean set has nothing to report.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileDataset

from dcmanon import Anonymizer
from dcmanon.config.loader import default_config
from dcmanon.testing import write_study_tree

KEY = "verify-tests-secret"


@dataclass(frozen=True)
class Sets:
    """An original tree and its de-identified copy (output i came from originals[i])."""

    original: Path
    anonymized: Path
    originals: list[Path]

    def output(self, index: int) -> Path:
        """The output made from ``originals[index]``."""
        return self.anonymized / f"{index:04d}.dcm"

    def copy(self, folder: Path) -> Sets:
        """A copy of the outputs under ``folder`` (to plant leaks in); originals shared."""
        shutil.copytree(self.anonymized, folder)
        return Sets(self.original, folder, self.originals)


def make_sets(root: Path, patients: int = 2) -> Sets:
    """Write originals under ``root/in`` and their outputs under ``root/out``."""
    originals = write_study_tree(root / "in", patients=patients, studies=2, series=2,
                                 instances=2)
    anonymizer = Anonymizer(default_config(secret=KEY))
    for index, path in enumerate(originals):
        result = anonymizer.anonymize_file(path, root / "out" / f"{index:04d}.dcm")
        assert result.status == "done", result.error
    return Sets(root / "in", root / "out", originals)


def edit(path: Path, change: Callable[[FileDataset], None]) -> None:
    """Read a file, change it, write it back in place."""
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


def original(sets: Sets, index: int = 0) -> Dataset:
    """The original dataset of output ``index``."""
    return pydicom.dcmread(sets.originals[index])
