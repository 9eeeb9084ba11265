"""Input and output folders given as URLs (``s3://``, ``gs://``, ``ftp://``...), through fsspec.

What cluster users expect: every worker reaches the same bucket or server, whatever machine it
runs on. A worker stages each input in a local temporary folder, anonymizes it with the ordinary
machinery, and publishes the output so that it appears under its name only when complete:
an object store's upload is atomic by itself; elsewhere the output is uploaded under a
temporary name, then renamed. A URL's password is never shown: messages and reports name
``user@host``.

fsspec knows ``ftp://``, ``http(s)://`` (read only), ``sftp://`` and more by itself; ``s3://``
needs ``s3fs``, ``gs://`` needs ``gcsfs``, ``az://`` needs ``adlfs`` (on every worker).
Credentials come from the URL or from each implementation's usual configuration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import shutil
import tempfile
import uuid
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from dcmanon.anonymizer import FileResult
from dcmanon.errors import UsageError
from dcmanon.layout import Layout, uid_target
from dcmanon.urls import display, is_url, join

if TYPE_CHECKING:
    from dcmanon.worker import Job, Outcome

_MARKER_BYTES = 132
COPY_BLOCK = 1 << 20
MAKE_FOLDER_ATTEMPTS = 5
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"})
"""fsspec protocols of object stores, whose uploads are atomic by themselves."""


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of a URL and the path inside it (once per process: a forked
    worker opens its own connections).

    Raises
    ------
    UsageError
        If fsspec, or the implementation for the URL's scheme, is not installed.
    """
    return _filesystem(url, os.getpid())


@lru_cache(maxsize=16)
def _filesystem(url: str, pid: int) -> tuple[Any, str]:
    try:
        fsspec: Any = importlib.import_module("fsspec")
    except ImportError:
        raise UsageError("folders given as URLs need fsspec: pip install fsspec") from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        scheme = url.split("://", 1)[0]
        raise UsageError(f"{display(url)}: no file system for {scheme}:// "
                         f"({type(exc).__name__}: install the fsspec implementation for it, "
                         "e.g. s3fs for s3://)") from None
    return fs, str(path).rstrip("/")


def list_inputs(url: str) -> list[str]:
    """The files under a URL, as sorted POSIX paths relative to it.

    Raises
    ------
    UsageError
        If the URL cannot be listed (the message names the URL without its password).
    """
    fs, root = filesystem(url)
    try:
        if not fs.isdir(root):
            raise UsageError(f"{display(url)}: input folder not found")
        found = fs.find(root)
    except UsageError:
        raise
    except Exception as exc:  # every implementation raises its own errors
        raise UsageError(f"{display(url)}: cannot list the input folder "
                         f"({type(exc).__name__})") from None
    prefix = root + "/"
    return sorted(str(path)[len(prefix):] for path in found if str(path).startswith(prefix))


def check_urls(input_dir: str, output_dir: str) -> None:
    """Refuse an input and output that are the same folder or nested in each other.

    Raises
    ------
    UsageError
        If they are.
    """
    source, target = input_dir.rstrip("/") + "/", output_dir.rstrip("/") + "/"
    if source == target:
        raise UsageError("input and output folders are the same; choose another output folder")
    if target.startswith(source):
        raise UsageError("the output folder is inside the input folder; choose a folder outside")
    if source.startswith(target):
        raise UsageError("the input folder is inside the output folder; choose another folder")


def process_remote_file(job: Job, relative: str) -> Outcome:
    """Anonymize one input of a run whose input or output folder is a URL.

    The input is staged in a local temporary folder (when it is remote), anonymized, and the
    output published; the result names the URLs (without passwords), never the staging paths.
    """
    from dcmanon.worker import NOT_DICOM, Skipped, process_file

    source_url = join(job.input_dir, relative)
    with tempfile.TemporaryDirectory(prefix="dcmanon-stage-") as stage:
        staged_in = Path(stage, "input", *PurePosixPath(relative).parts)
        if is_url(job.input_dir):
            try:
                if not _stage_input(job.input_dir, relative, staged_in):
                    return Skipped(display(source_url), NOT_DICOM)
            except OSError as exc:
                return _failed(display(source_url), "", f"cannot read it ({_reason(exc)})",
                               "InputError")
            local_job = dataclasses.replace(job, input_dir=str(Path(stage, "input")))
        else:
            local_job = job
        if not is_url(job.output_dir):
            outcome = process_file(local_job, relative)
            return _renamed(outcome, str(staged_in), display(source_url)) \
                if is_url(job.input_dir) else outcome
        return _to_remote(local_job, relative, Path(stage), display(source_url))


def _stage_input(url: str, relative: str, target: Path) -> bool:
    """Download one input; False if it is not a DICOM file (no .dcm name, no DICM marker)."""
    fs, root = filesystem(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    with fs.open(join(root, relative), "rb") as remote, target.open("wb") as local:
        head = remote.read(_MARKER_BYTES)
        if not relative.lower().endswith(".dcm") and head[128:132] != b"DICM":
            return False
        local.write(head)
        shutil.copyfileobj(remote, local, COPY_BLOCK)
    return True


def _to_remote(job: Job, relative: str, stage: Path, source: str) -> Outcome:
    """Anonymize into the staging folder, then upload under a temporary name and rename."""
    from dcmanon.worker import NOT_DICOM, NOT_REGULAR, Skipped, _special, is_dicom_candidate
    from dcmanon.worker import quarantine as quarantine_input

    local_source = Path(job.input_dir, *PurePosixPath(relative).parts)
    if _special(local_source):
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
    if job.layout is Layout.MIRROR:
        if not job.overwrite and _exists(fs, join(out_root, relative)):
            return FileResult(source, display(join(job.output_dir, relative)), "exists")
        result = job.warm_anonymizer().anonymize_file(local_source, staged_out, sync=False)
    else:
        result = job.warm_anonymizer().anonymize_file(local_source, name, sync=False)
        if names:
            target_rel = names[0]
    target = display(join(job.output_dir, target_rel))
    if result.status != "done":
        if result.status == "failed" and job.quarantine is not None:
            result = quarantine_input(result, Path(job.quarantine), relative)
        named = target if job.layout is Layout.MIRROR or names else ""
        return _renamed(dataclasses.replace(result, target=named), str(local_source), source,
                        str(staged_out))
    remote_target = join(out_root, target_rel)
    try:
        if job.layout is Layout.UID and _exists(fs, remote_target) and not job.overwrite:
            return FileResult(source, target, "exists")
        _upload(fs, staged_out, remote_target)
    except OSError as exc:
        return _failed(source, target, f"{target}: cannot write ({_reason(exc)})",
                       "OutputError")
    return dataclasses.replace(result, source=source, target=target)


def _upload(fs: Any, local: Path, remote: str) -> None:
    """Upload an output so that it appears under its name only when complete.

    An object store's upload is atomic by itself: the object is uploaded under its name.
    Elsewhere (FTP, SFTP...) it goes under a temporary name beside the target, then is renamed
    into place.
    """
    parent = remote.rsplit("/", 1)[0]
    direct = _is_object_store(fs)
    temporary = remote if direct else f"{parent}/.dcmanon-{uuid.uuid4().hex}.part"
    try:
        _make_folders(fs, parent)
        fs.put_file(str(local), temporary)
        if not direct:
            fs.mv(temporary, remote)
    except Exception as exc:
        with contextlib.suppress(Exception):  # best effort: the upload itself failed
            fs.rm_file(temporary)
        if isinstance(exc, OSError):
            raise
        raise OSError(type(exc).__name__) from None


def _is_object_store(fs: Any) -> bool:
    """Whether ``fs`` is an object store (S3, Google Cloud Storage, Azure Blob): an object
    appears only once its upload is complete, and a "rename" is a copy and a delete."""
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return not OBJECT_STORES.isdisjoint(protocols)


def _make_folders(fs: Any, folder: str) -> None:
    """Create a remote folder and its parents; another worker may be creating them too (a
    folder made meanwhile fails the creation: look again, with fresh listings)."""
    for attempt in range(MAKE_FOLDER_ATTEMPTS):
        try:
            fs.makedirs(folder, exist_ok=True)
            return
        except Exception:
            fs.invalidate_cache()
            if attempt == MAKE_FOLDER_ATTEMPTS - 1:
                raise


def _exists(fs: Any, path: str) -> bool:
    """Whether a remote file exists now (not in a listing cached before another worker
    wrote it)."""
    try:
        fs.invalidate_cache(path.rsplit("/", 1)[0])
        return bool(fs.exists(path))
    except Exception:
        return False


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else None) or \
        type(exc).__name__


def _failed(source: str, target: str, error: str, error_class: str) -> FileResult:
    message = error if error.startswith(source) else f"{source}: {error}"
    return FileResult(source, target, "failed", error=message, error_class=error_class)


def _renamed(outcome: Outcome, local: str, url: str, *others: str) -> Outcome:
    """The outcome with the staging paths replaced by the URL (messages included)."""
    from dcmanon.worker import Skipped

    if isinstance(outcome, Skipped):
        return Skipped(url, outcome.reason)
    error = outcome.error
    if error:
        error = error.replace(local, url)
        for other in others:
            error = error.replace(other, url)
    return dataclasses.replace(outcome, source=url, error=error)
