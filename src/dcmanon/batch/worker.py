"""What a worker does with a chunk of input files: the same on every executor.

A :class:`Job` is everything a worker needs, and it pickles (the anonymizer is rebuilt from its
configuration, keys and date): workers share nothing, so the outputs do not depend on how many
there are or in which order they finish.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pydicom.dataset import Dataset

from dcmanon.anonymizer import Anonymizer, FileResult, FileStatus
from dcmanon.batch.layout import Layout, fileset_target, mirror_target, uid_target
from dcmanon.batch.names import parse_header, renamer_for
from dcmanon.errors import describe_os_error
from dcmanon.io.discover import NOT_DICOM, NOT_REGULAR, Skipped, is_dicom_candidate, is_special
from dcmanon.io.files import write_atomic
from dcmanon.io.rawdataset import RawFile

REASON_SUFFIX = ".reason.txt"

_warm = threading.local()
"""This thread's copy of the anonymizer it last worked with. A chunk arrives with a freshly
unpickled one whose caches are cold (~17 ms lost on its first file); keeping the copy from one
chunk of a run to the next avoids that. Outputs never depend on it: caches hold only what the
key and configuration determine."""


Outcome = FileResult | Skipped


@dataclass(frozen=True)
class Job:
    """One folder run, as a worker sees it (paths as strings: they pickle anywhere)."""

    anonymizer: Anonymizer
    input_dir: str
    output_dir: str
    temp_dir: str
    layout: Layout = Layout.MIRROR
    overwrite: bool = False
    quarantine: str | None = None
    started: float = 0.0
    """When the run started (seconds since the epoch): with ``overwrite``, outputs older than
    this are replaced, newer ones were written by this run."""
    path_key: str = field(default="", repr=False)
    """Keys the tokens of identifiers in input names that the outputs do not carry (see
    :mod:`dcmanon.batch.names`); empty: names are mirrored as they are."""
    file_sets: tuple[str, ...] = ()
    """The folders (relative) that hold a DICOMDIR: names renamed under them stay File IDs
    (up to 8 characters of ``A-Z``, ``0-9`` and ``_``) when they were."""

    def warm_anonymizer(self) -> Anonymizer:
        """The anonymizer for this thread: the copy kept from an earlier chunk (of this run,
        or of any with the same configuration, keys and date), or a new one."""
        kept: Anonymizer | None = getattr(_warm, "anonymizer", None)
        if kept is None or not kept.same_as(self.anonymizer):
            kept = _warm.anonymizer = self.anonymizer.copy()
        return kept


def process_file(job: Job, relative: str) -> Outcome:
    """Anonymize one input file of a folder run; never raises for a bad file."""
    source = mirror_target(Path(job.input_dir), relative)
    if is_special(source):
        return Skipped(str(source), NOT_REGULAR)
    if not is_dicom_candidate(source):
        return Skipped(str(source), NOT_DICOM)
    output = Path(job.output_dir)
    anonymizer = job.warm_anonymizer()
    # Naming an output after the file's identifiers reads its header: read it once.
    parsed = parse_header(str(source), anonymizer.max_nesting) \
        if job.path_key or job.layout is Layout.FILESET else None
    if job.layout is Layout.MIRROR:
        target = mirror_target(output, mirrored_name(job, anonymizer, relative, str(source),
                                                     parsed))
        if not job.overwrite and os.path.lexists(target):  # a dangling link counts too
            return FileResult(str(source), str(target), FileStatus.EXISTS)
        result = anonymizer.anonymize_file(source, target, exclusive=not job.overwrite,
                                           temp_dir=job.temp_dir, sync=False, parsed=parsed)
    else:
        if job.layout is Layout.FILESET:
            patient = renamer_for(anonymizer, job.path_key).patient(str(source), parsed)

            def name(ds: Dataset) -> Path:
                return fileset_target(output, ds, patient)
        else:
            def name(ds: Dataset) -> Path:
                return uid_target(output, ds)

        result = anonymizer.anonymize_file(
            source, name, exclusive=True, temp_dir=job.temp_dir,
            replace_before=job.started if job.overwrite else None, sync=False, parsed=parsed)
    if result.status == FileStatus.FAILED and job.quarantine is not None:
        result = quarantine(result, Path(job.quarantine), relative)
    return result


def mirrored_name(job: Job, anonymizer: Anonymizer, relative: str, source: str,
                  parsed: RawFile | None = None) -> str:
    """The relative output path of a mirrored input: its path, with the identifiers of the
    file in it replaced by their pseudonyms (see :mod:`dcmanon.batch.names`)."""
    if not job.path_key:
        return relative
    file_ids = any(not base or relative.startswith(base + "/") for base in job.file_sets)
    return renamer_for(anonymizer, job.path_key).rename(relative, source, file_ids,
                                                        parsed).path


def quarantine(result: FileResult, folder: Path, relative: str) -> FileResult:
    """Copy a failing input to ``folder`` (same relative path), with a ``.reason.txt`` beside.

    The reason names the error class and message (never a value). A copy that fails is noted
    in the result's error; it does not hide the original failure.
    """
    copy = mirror_target(folder, relative)
    reason = copy.with_name(copy.name + REASON_SUFFIX)
    text = f"{result.error_class or 'Error'}: {result.error or 'failed'}\n"

    def write_reason(handle: BinaryIO) -> None:
        handle.write(text.encode("utf-8"))

    try:
        with Path(result.source).open("rb") as original:
            write_atomic(copy, lambda handle: shutil.copyfileobj(original, handle))
        write_atomic(reason, write_reason)
    except OSError as exc:
        error = f"{result.error} (could not be quarantined: {describe_os_error(exc)})"
        return dataclasses.replace(result, error=error)
    return result
