"""The node's mapping files (``--mapping-dir``): ``uid_mapping.csv`` and
``patient_mapping.csv`` (``id_old,id_new``), appended to as images are de-identified.

They re-identify the data: written only when asked, kept apart from it, never logged.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from dcmanon.header.mapping import PATIENT_FILE, UID_FILE

_FILES = {"uid": UID_FILE, "patient": PATIENT_FILE}


class MappingFiles:
    """Append new (original, pseudonym) rows to the mapping files of ``folder``, each row
    once (the rows already in the files are read at start-up)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seen: set[tuple[str, str, str]] = set()
        for kind, name in _FILES.items():
            path = self.folder / name
            if path.is_file():
                with path.open(newline="", encoding="utf-8") as handle:
                    rows = list(csv.reader(handle))[1:]
                self._seen.update((kind, row[0], row[1]) for row in rows if len(row) == 2)

    def add(self, rows: tuple[tuple[str, str, str], ...]) -> None:
        """Append the rows not written yet, flushed to disk before the image goes on."""
        new = sorted(set(rows) - self._seen)
        for kind, name in _FILES.items():
            lines = [(old, pseudonym) for k, old, pseudonym in new if k == kind]
            if not lines:
                continue
            path = self.folder / name
            header = not path.is_file()
            with path.open("a", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                if header:
                    writer.writerow(["id_old", "id_new"])
                writer.writerows(lines)
                handle.flush()
                os.fsync(handle.fileno())
        self._seen.update(new)
