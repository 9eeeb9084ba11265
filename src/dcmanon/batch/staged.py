"""Files of a folder run whose input or output folder is a URL: each input is staged in a local
temporary folder, anonymized like any other file, and its output published (see
:mod:`dcmanon.remote.staging`); results name the URLs (without passwords), never the staging
paths."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from dcmanon.anonymizer import FileResult, FileStatus
from dcmanon.batch.layout import Layout, uid_target
from dcmanon.batch.worker import Job, Outcome, mirrored_name, process_file, quarantine
from dcmanon.errors import InputError, OutputError, describe_os_error
from dcmanon.io.discover import NOT_DICOM, NOT_REGULAR, Skipped, is_dicom_candidate, is_special
from dcmanon.remote.staging import exists, filesystem, stage_input, upload
from dcmanon.remote.urls import display, is_url, join


def process_remote_file(job: Job, relative: str) -> Outcome:
    """Anonymize one input of a run whose input or output folder is a URL.

    The input is staged in a local temporary folder (when it is remote), anonymized, and the
    output published; the result names the URLs (without passwords), never the staging paths.
    """
    source_url = join(job.input_dir, relative)
    with tempfile.TemporaryDirectory(prefix="dcmanon-stage-") as stage:
        staged_in = Path(stage, "input", *PurePosixPath(relative).parts)
        if is_url(job.input_dir):
            try:
                if not stage_input(job.input_dir, relative, staged_in):
                    return Skipped(display(source_url), NOT_DICOM)
            except OSError as exc:
                return _failed(display(source_url), "",
                               f"cannot read it ({describe_os_error(exc)})", InputError.__name__)
            local_job = dataclasses.replace(job, input_dir=str(Path(stage, "input")))
        else:
            local_job = job
        if not is_url(job.output_dir):
            outcome = process_file(local_job, relative)
            return _renamed(outcome, str(staged_in), display(source_url)) \
                if is_url(job.input_dir) else outcome
        return _to_remote(local_job, relative, Path(stage), display(source_url))


def _to_remote(job: Job, relative: str, stage: Path, source: str) -> Outcome:
    """Anonymize into the staging folder, then upload under a temporary name and rename."""
    local_source = Path(job.input_dir, *PurePosixPath(relative).parts)
    if is_special(local_source):
        return Skipped(source, NOT_REGULAR)
    if not is_dicom_candidate(local_source):
        return Skipped(source, NOT_DICOM)
    fs, out_root = filesystem(job.output_dir)
    staged_out = stage / "output.dcm"
    names: list[str] = []

    def name(ds: Any) -> str:
        names.append(uid_target(Path("."), ds).as_posix())
        return str(staged_out)

    target_rel = relative
    anonymizer = job.warm_anonymizer()
    if job.layout is Layout.MIRROR:
        target_rel = mirrored_name(job, anonymizer, relative, str(local_source))
        shown = display(join(job.output_dir, target_rel))
        try:
            if not job.overwrite and exists(fs, join(out_root, target_rel)):
                return FileResult(source, shown, FileStatus.EXISTS)
        except OSError as exc:
            return _failed(source, shown, f"{shown}: cannot write ({describe_os_error(exc)})",
                           OutputError.__name__)
        result = anonymizer.anonymize_file(local_source, staged_out, sync=False)
    else:
        result = anonymizer.anonymize_file(local_source, name, sync=False)
        if names:
            target_rel = names[0]
    target = display(join(job.output_dir, target_rel))
    if result.status != FileStatus.DONE:
        if result.status == FileStatus.FAILED and job.quarantine is not None:
            result = quarantine(result, Path(job.quarantine), relative)
        named = target if job.layout is Layout.MIRROR or names else ""
        return _renamed(dataclasses.replace(result, target=named), str(local_source), source,
                        str(staged_out))
    remote_target = join(out_root, target_rel)
    try:
        if job.layout is Layout.UID and exists(fs, remote_target) and not job.overwrite:
            return FileResult(source, target, FileStatus.EXISTS)
        upload(fs, staged_out, remote_target)
    except OSError as exc:
        return _failed(source, target, f"{target}: cannot write ({describe_os_error(exc)})",
                       OutputError.__name__)
    return dataclasses.replace(result, source=source, target=target)


def _failed(source: str, target: str, error: str, error_class: str) -> FileResult:
    message = error if error.startswith(source) else f"{source}: {error}"
    return FileResult(source, target, FileStatus.FAILED, error=message, error_class=error_class)


def _renamed(outcome: Outcome, local: str, url: str, *others: str) -> Outcome:
    """The outcome with the staging paths replaced by the URL (messages included)."""
    if isinstance(outcome, Skipped):
        return Skipped(url, outcome.reason)
    error = outcome.error
    if error:
        error = error.replace(local, url)
        for other in others:
            error = error.replace(other, url)
    return dataclasses.replace(outcome, source=url, error=error)
