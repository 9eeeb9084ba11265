"""DICOMDIRs of a folder run: rebuilt over the outputs, never anonymized as files.

A DICOMDIR's records repeat the identifiers of the files it lists (names, IDs, dates, UIDs)
and point at them by path. Anonymizing it like any file would empty its records (the profile
removes group 0004): a broken file-set. Instead, once every file is written, a fresh DICOMDIR
is built (with pydicom's :class:`~pydicom.fileset.FileSet`) from the outputs of the files the
input DICOMDIR referenced: its records hold what those outputs hold (the new PatientID and
name, the new UIDs), and its File IDs name the outputs, renamed components included. Type 1
record attributes that the de-identified files leave empty get the profile's dummy values
(PS3.15's "D"), in the DICOMDIR only.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomFileLike
from pydicom.filereader import read_file_meta_info
from pydicom.fileset import FileInstance, FileSet

from dcmanon.anonymizer import FileResult, FileStatus
from dcmanon.errors import OutputError
from dcmanon.io.files import write_atomic
from dcmanon.methods.profile_actions import DUMMY_TEXT

NAME = "DICOMDIR"
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
SKIPPED_UID_LAYOUT = ("a DICOMDIR: --layout uid writes no file-set (its records would name "
                      "files that are not there)")
SKIPPED_FILESET = "a DICOMDIR: --layout fileset writes a fresh one over the outputs"
SKIPPED_NAME = ("a DICOMDIR under another name (not a file-set's own, which is named DICOMDIR): "
                "not written")
SKIPPED_REMOTE = "a DICOMDIR: not rebuilt in folders given as URLs"
TYPE_1 = {"PatientID": "LO", "StudyDate": "DA", "StudyTime": "TM", "StudyID": "SH",
          "Modality": "CS", "SeriesNumber": "IS", "InstanceNumber": "IS"}
"""Type 1 attributes of the PATIENT, STUDY, SERIES and IMAGE records that pydicom copies from
the instance (PS3.3 F.5): a dummy in the record when the output's value is empty."""


@dataclass(frozen=True)
class Directory:
    """An input DICOMDIR: where it is, and the files its records reference."""

    relative: str
    """Its path in the input folder (POSIX)."""
    references: tuple[str, ...]
    """The files it references, as paths in the input folder (as the records spell them)."""

    @property
    def base(self) -> str:
        """The folder it lies in (its file-set's root), relative to the input folder."""
        parent = PurePosixPath(self.relative).parent.as_posix()
        return "" if parent == "." else parent


def is_dicomdir(path: Path) -> bool:
    """Whether ``path`` is a DICOMDIR (its name begins so, and its Media Storage SOP Class
    says so)."""
    if not path.name.upper().startswith(NAME):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta = read_file_meta_info(path)
    except Exception:  # noqa: BLE001  (not readable as one: anonymized as any file, and fails)
        return False
    return str(meta.get("MediaStorageSOPClassUID", "")) == MEDIA_STORAGE_DIRECTORY


def read_directory(root: Path, relative: str) -> Directory:
    """The files a DICOMDIR references (its records' ReferencedFileID), unread.

    Raises
    ------
    OSError, ValueError
        If it cannot be read (the caller reports it; no value is quoted).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(root.joinpath(*PurePosixPath(relative).parts), force=True)
    base = PurePosixPath(relative).parent
    found: list[str] = []
    for record in ds.get("DirectoryRecordSequence", []):
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [str(file_id)] if isinstance(file_id, str) else [str(p) for p in file_id]
        found.append(base.joinpath(*parts).as_posix())
    return Directory(relative, tuple(found))


def output_base(directory: Directory, outputs: Mapping[str, str]) -> str:
    """The output folder of a DICOMDIR: its input folder, renamed as its files' outputs were."""
    base_parts = [p for p in directory.base.split("/") if p]
    if not base_parts:
        return ""
    bases = {"/".join(outputs[ref.lower()].split("/")[:len(base_parts)])
             for ref in directory.references if ref.lower() in outputs}
    return bases.pop() if len(bases) == 1 else directory.base


def rebuild(directory: Directory, input_root: Path, output_root: Path,
            outputs: Mapping[str, str]) -> FileResult:
    """Write a fresh DICOMDIR over the outputs of the files ``directory`` references.

    Parameters
    ----------
    directory : Directory
        The input DICOMDIR.
    input_root, output_root : Path
        The run's folders.
    outputs : mapping
        Output path of every input written (or kept) by the run, both relative, keyed by the
        input path in lower case (File IDs are upper case; media are often read in lower case).

    Returns
    -------
    FileResult
        ``done`` with the number of records' instances as its actions, or ``failed`` (the
        message names the DICOMDIR and the reason, never a value).
    """
    source = str(input_root.joinpath(*PurePosixPath(directory.relative).parts))
    base = output_base(directory, outputs)
    target = output_root.joinpath(*PurePosixPath(base).parts, NAME)
    fileset = FileSet()
    listed = missing = unlisted = 0
    try:
        for reference in directory.references:
            output = outputs.get(reference.lower())
            if output is None:
                missing += 1
                continue
            try:
                instance = _add(fileset, output_root.joinpath(*PurePosixPath(output).parts))
            except (KeyError, ValueError, NotImplementedError):
                unlisted += 1  # a SOP class or record pydicom cannot list, or no Type 1 value
                continue
            file_id = PurePosixPath(output).relative_to(base) if base else PurePosixPath(output)
            instance.node._record.ReferencedFileID = list(file_id.parts)
            listed += 1

        def write(handle: BinaryIO) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fileset._write_dicomdir(DicomFileLike(handle))

        write_atomic(target, write)
    except Exception as exc:  # noqa: BLE001  (one DICOMDIR must not stop the run)
        return FileResult(source, str(target), FileStatus.FAILED,
                          error=f"{source}: the DICOMDIR could not be rebuilt over the "
                                f"outputs ({type(exc).__name__})",
                          error_class=OutputError.__name__)
    finally:
        fileset._stage["t"].cleanup()  # the staged copies of the outputs' headers
    actions = {"dicomdir-instances": listed}
    if missing:
        actions["dicomdir-not-written"] = missing
    if unlisted:
        actions["dicomdir-not-listed"] = unlisted
    return FileResult(source, str(target), FileStatus.DONE, actions)


def _add(fileset: FileSet, path: Path) -> FileInstance:
    """Add the output at ``path`` (its header) to ``fileset``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(path, stop_before_pixels=True)
        _fill_type_1(ds)
        return fileset.add(ds)


def _fill_type_1(ds: Dataset) -> None:
    """Dummy values for the Type 1 record attributes the output leaves empty."""
    for keyword, vr in TYPE_1.items():
        element = ds.get(keyword)
        if element is None or element == "" or (hasattr(element, "__len__") and
                                                 len(element) == 0):
            setattr(ds, keyword, DUMMY_TEXT[vr])
