"""The run report: one JSON line per input file, then a summary line.

Records carry statuses, counts per action, error classes and messages (which name files,
elements and rules, never values) and flags. Paths are relative to the input and output
folders; input names may themselves carry identifiers, so keep the report with the inputs.
Lines are written as files complete (their order depends on the workers) and flushed, so a run
that is killed leaves a report of what it finished.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from dcmanon.anonymizer import FileResult, FileStatus
from dcmanon.io.discover import Skipped
from dcmanon.remote.urls import is_url


@lru_cache(maxsize=256)  # each result is asked for several times (summary, layout, report)
def relative_to(path: str, root: str) -> str:
    """``path`` relative to ``root`` (a folder or URL), POSIX style; as it is if outside."""
    if not path:
        return ""
    if is_url(root):
        prefix = root.rstrip("/") + "/"
        return path[len(prefix):] if path.startswith(prefix) else path
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


@dataclass
class Summary:
    """Counts of a folder run."""

    files: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    existing: int = 0
    bytes: int = 0
    flagged: int = 0
    pixels_cleaned: int = 0
    """Outputs whose pixels had burned-in text blanked."""
    seconds: float = 0.0
    workers: int = 1
    executor: str = "serial"
    interrupted: bool = False
    renamed: int = 0
    """Output path components renamed because they held an identifier (each counted once)."""
    by_error: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: FileResult | Skipped) -> None:
        """Count one outcome."""
        self.files += 1
        if isinstance(outcome, Skipped):
            self.skipped += 1
            return
        if outcome.status == FileStatus.DONE:
            self.done += 1
            self.bytes += outcome.size
            self.flagged += bool(outcome.flags)
            self.pixels_cleaned += bool(outcome.pixels and outcome.pixels.get("frames"))
        elif outcome.status == FileStatus.EXISTS:
            self.existing += 1
        else:
            self.failed += 1
            name = outcome.error_class or "Error"
            self.by_error[name] = self.by_error.get(name, 0) + 1

    def record(self) -> dict[str, Any]:
        """The summary as a JSON-ready record."""
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        megabytes = self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0
        return {"type": "summary", "files": self.files, "done": self.done,
                "failed": self.failed, "skipped": self.skipped, "existing": self.existing,
                "renamed": self.renamed, "flagged": self.flagged,
                "pixels_cleaned": self.pixels_cleaned, "bytes": self.bytes,
                "seconds": round(self.seconds, 3), "files_per_s": round(rate, 2),
                "mb_per_s": round(megabytes, 2), "workers": self.workers,
                "executor": self.executor, "interrupted": self.interrupted,
                "failures_by_class": dict(sorted(self.by_error.items()))}


class RunReport:
    """Writes the JSON-lines report of a folder run.

    Parameters
    ----------
    path : path-like
        The report file (replaced if it exists).
    input_dir, output_dir : path-like or str
        Paths in records are relative to these (folders or URLs, as results name them).
    """

    def __init__(self, path: str | os.PathLike[str], input_dir: str | os.PathLike[str],
                 output_dir: str | os.PathLike[str]) -> None:
        self.input_dir, self.output_dir = os.fspath(input_dir), os.fspath(output_dir)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[str] = target.open("w", encoding="utf-8")

    def file(self, outcome: FileResult | Skipped, renamed: int = 0) -> None:
        """Write the record of one input file (``renamed``: how many components of its output
        path were renamed because they held an identifier)."""
        if isinstance(outcome, Skipped):
            record: dict[str, Any] = {"type": "file",
                                      "source": relative_to(outcome.path, self.input_dir),
                                      "status": "skipped", "reason": outcome.reason}
        else:
            record = {"type": "file", "source": relative_to(outcome.source, self.input_dir),
                      "target": relative_to(outcome.target, self.output_dir),
                      "status": outcome.status, "actions": outcome.actions,
                      "bytes": outcome.size}
            if renamed:
                record["renamed"] = renamed
            if outcome.status == FileStatus.FAILED:
                record["error_class"] = outcome.error_class
                record["error"] = outcome.error
            if outcome.flags:
                record["flags"] = list(outcome.flags)
            if outcome.pixels is not None:
                record["pixels"] = outcome.pixels
        self._write(record)

    def summary(self, summary: Summary) -> None:
        """Write the summary record."""
        self._write(summary.record())

    def _write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Close the file."""
        self._handle.close()
