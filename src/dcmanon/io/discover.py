"""Finding input files: walk a folder in a stable order, skip what is not DICOM (with a reason),
never open a FIFO or device, never follow a link out of the input folder."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dcmanon.errors import describe_os_error

NOT_DICOM = "not a DICOM file (no .dcm name, no DICM marker)"
NOT_REGULAR = "not a regular file (a FIFO, socket or device is never opened)"
_PREAMBLE = 128


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


def is_dicom_candidate(path: Path) -> bool:
    """A ``.dcm`` file, or any file with the DICM marker of a Part 10 file.

    A file that cannot be opened to look is a candidate too: reading it then fails and is
    reported, rather than the file being skipped in silence.
    """
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with path.open("rb") as handle:
            handle.seek(_PREAMBLE)
            return handle.read(4) == b"DICM"
    except OSError:
        return True


def is_special(path: Path) -> bool:
    """A FIFO, socket or device: opening it could block forever or read endlessly."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False  # reading it fails, and that is reported
    return not stat.S_ISREG(mode)


def files_of_set(root: Path) -> Iterator[tuple[Path, str, bool]]:
    """Every file of a set of outputs (``root`` itself, or every file under it in sorted
    order), its path relative to the set, and whether it may be opened (not a FIFO, socket or
    device: those are named, never opened)."""
    if not root.is_dir():
        yield root, root.name, not is_special(root)
        return
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder, name)
            yield path, path.relative_to(root).as_posix(), not is_special(path)


def discover(input_dir: Path, *, check_marker: bool = True
             ) -> Iterator[Path | Skipped | Unlisted]:
    """Yield input files in a stable order (sorted), or why a file is skipped.

    Symbolic links are followed only when they stay inside the input folder. A folder that
    cannot be listed is yielded as :class:`Unlisted` (never ignored in silence). Without
    ``check_marker`` files are not opened (workers check the DICM marker themselves).
    """
    root = input_dir.resolve()
    unlisted: list[Unlisted] = []

    def on_error(exc: OSError) -> None:
        unlisted.append(Unlisted(str(exc.filename), describe_os_error(exc)))

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
            elif check_marker and not is_dicom_candidate(path):
                yield Skipped(str(path), NOT_DICOM)
            else:
                yield path
    yield from unlisted
