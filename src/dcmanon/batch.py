"""Folders: find the inputs, mirror the tree, anonymize every file, never stop on one failure."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dcmanon.anonymizer import Anonymizer, FileResult
from dcmanon.errors import UsageError

PREAMBLE_MAGIC_OFFSET = 128


@dataclass(frozen=True)
class Skipped:
    """An input file that was not processed, and why (its path may itself carry PHI)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Unlisted:
    """A folder whose content could not be listed: its files were not processed."""

    path: str
    reason: str


@dataclass
class BatchResult:
    """Everything a folder run did."""

    results: list[FileResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        """The files that failed (and folders that could not be listed)."""
        return [r for r in self.results if r.status == "failed"]


def is_dicom_candidate(path: Path) -> bool:
    """A ``.dcm`` file, or any file with the DICM marker of a Part 10 file.

    A file that cannot be opened to look is a candidate too: reading it then fails and is
    reported, rather than the file being skipped in silence.
    """
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with path.open("rb") as handle:
            handle.seek(PREAMBLE_MAGIC_OFFSET)
            return handle.read(4) == b"DICM"
    except OSError:
        return True


def check_folders(input_dir: Path, output_dir: Path) -> None:
    """Refuse folder pairs that would overwrite or re-read outputs.

    Raises
    ------
    UsageError
        If the input is missing, or the folders are the same or nested in each other.
    """
    if not input_dir.is_dir():
        raise UsageError(f"{input_dir}: input folder not found")
    source, target = input_dir.resolve(), output_dir.resolve()
    if source == target:
        raise UsageError("input and output folders are the same; choose another output folder")
    if target.is_relative_to(source):
        raise UsageError("the output folder is inside the input folder; choose a folder outside")
    if source.is_relative_to(target):
        raise UsageError("the input folder is inside the output folder; choose another folder")


def discover(input_dir: Path) -> Iterator[Path | Skipped | Unlisted]:
    """Yield input files in a stable order (sorted), or why a file is skipped.

    Symbolic links are followed only when they stay inside the input folder. A folder that
    cannot be listed is yielded as :class:`Unlisted` (never ignored in silence).
    """
    root = input_dir.resolve()
    unlisted: list[Unlisted] = []

    def on_error(exc: OSError) -> None:
        unlisted.append(Unlisted(str(exc.filename), exc.strerror or type(exc).__name__))

    for folder, dirs, files in os.walk(input_dir, onerror=on_error):
        yield from unlisted
        unlisted.clear()
        kept_dirs = []
        for name in sorted(dirs):
            path = Path(folder, name)
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                yield Skipped(str(path), "symbolic link leading out of the input folder")
            else:
                kept_dirs.append(name)
        dirs[:] = kept_dirs
        for name in sorted(files):
            path = Path(folder, name)
            if name.startswith(".dcmanon-"):
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                yield Skipped(str(path), "symbolic link leading out of the input folder")
            elif not is_dicom_candidate(path):
                yield Skipped(str(path), "not a DICOM file (no .dcm name, no DICM marker)")
            else:
                yield path
    yield from unlisted


def run_folder(anonymizer: Anonymizer, input_dir: Path, output_dir: Path,
               on_file: Callable[[FileResult | Skipped], None] | None = None) -> BatchResult:
    """Anonymize every DICOM file under ``input_dir`` into the mirrored tree ``output_dir``.

    Parameters
    ----------
    on_file : callable, optional
        Called after each file (for progress), with its result or why it was skipped.
    """
    check_folders(input_dir, output_dir)
    batch = BatchResult()
    for item in discover(input_dir):
        if isinstance(item, Skipped):
            batch.skipped.append(item)
            outcome: FileResult | Skipped = item
        elif isinstance(item, Unlisted):
            outcome = FileResult(item.path, "", "failed", error=f"{item.path}: cannot list "
                                 f"the folder ({item.reason}); its files were not processed",
                                 error_class="InputError")
            batch.results.append(outcome)
        else:
            target = output_dir / item.relative_to(input_dir)
            outcome = anonymizer.anonymize_file(item, target)
            batch.results.append(outcome)
        if on_file is not None:
            on_file(outcome)
    return batch
