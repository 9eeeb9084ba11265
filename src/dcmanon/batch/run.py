"""Folders: find the inputs, spread them over workers, never stop on one failure, resume.

A folder run lists the input tree (without opening files), cuts the list into chunks and hands
them to an executor (this process, a pool of processes, or a Dask cluster; see
:mod:`dcmanon.batch.executors`). Each worker anonymizes its chunk
(:mod:`dcmanon.batch.worker`) and sends back one outcome per file. Outputs are written
under ``<output>/.dcmanon-tmp`` and renamed into place when complete, so a run that is killed
leaves only complete outputs; the next run skips them (unless ``overwrite``) and clears what
the killed run left in the temporary folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING

from dcmanon.anonymizer import Anonymizer, FileResult, FileStatus
from dcmanon.batch.dicomdir import NAME as DICOMDIR_NAME
from dcmanon.batch.dicomdir import (
    SKIPPED_FILESET,
    SKIPPED_NAME,
    SKIPPED_REMOTE,
    SKIPPED_UID_LAYOUT,
    Directory,
    is_dicomdir,
    read_directory,
    rebuild,
)
from dcmanon.batch.executors import (
    DaskExecutor,
    Executor,
    ProcessExecutor,
    SerialExecutor,
    available_cores,
)
from dcmanon.batch.layout import Layout
from dcmanon.batch.names import FolderNames, moved_path, renamed_prefixes
from dcmanon.batch.report import RunReport, Summary, relative_to
from dcmanon.batch.staged import process_remote_file
from dcmanon.batch.worker import Job, Outcome, process_file
from dcmanon.errors import (
    InputError,
    MappingStoreError,
    OutputCollision,
    UsageError,
    WorkerError,
    describe_os_error,
)
from dcmanon.io.discover import Skipped, Unlisted, discover
from dcmanon.remote.lock import RemoteLock
from dcmanon.remote.urls import display, is_url, join, local_path

if TYPE_CHECKING:
    from dcmanon.trials.mapping_db import MappingStore

__all__ = ["BatchOptions", "BatchResult", "check_folders", "process_chunk", "run_folder"]

_log = logging.getLogger(__name__)
TEMP_FOLDER = ".dcmanon-tmp"
LOCK_FILE = ".lock"
MAX_CHUNK = 64


@dataclass(frozen=True)
class BatchOptions:
    """How a folder run is carried out (none of it changes what an output contains)."""

    jobs: int | None = None
    """Worker processes (None: every core). With fewer than ``min_parallel`` files, or 1,
    everything runs in the calling process."""
    executor: str = "processes"
    """``processes`` or ``dask``."""
    scheduler: str | None = None
    """Dask scheduler address; None starts a local cluster."""
    layout: Layout = Layout.MIRROR
    overwrite: bool = False
    """Replace outputs that exist (default: keep them, so that a re-run resumes)."""
    quarantine: Path | None = None
    """Copy failing inputs here, each with a ``.reason.txt``."""
    report: Path | None = None
    """Write the JSON-lines run report here."""
    chunk_size: int | None = None
    """Files per task (None: up to 64, fewer when there are few files per worker)."""
    min_parallel: int = 128
    """Below this many files a process pool costs more (its start) than it saves."""
    rename_paths: bool = True
    """In the mirror layout, replace the identifiers that input names hold by their
    pseudonyms (:mod:`dcmanon.batch.names`)."""
    mapping_db: Path | None = None
    """Record the (kind, original, pseudonym) pairs in this mapping database
    (:mod:`dcmanon.trials.mapping_db`), one transaction per chunk of files; the anonymizer
    must record mappings."""
    keep_mappings: bool = True
    """Collect the pairs in :attr:`BatchResult.mappings` too (for the mapping files); off when
    they only go to the database, so that a long run does not hold them all."""


@dataclass
class BatchResult:
    """What a folder run did (counts, and the outcomes that need a line each)."""

    summary: Summary = field(default_factory=Summary)
    failed: list[FileResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    flagged: list[FileResult] = field(default_factory=list)
    """The first few outputs that may carry burned-in text."""
    mappings: set[tuple[str, str, str]] = field(default_factory=set)
    """(kind, original, pseudonym), when the anonymizer records them."""


def check_folders(input_dir: Path, output_dir: Path, *others: Path | None) -> None:
    """Refuse folder pairs that would overwrite or re-read outputs.

    ``others`` (the quarantine folder) must be apart from the input folder too.

    Raises
    ------
    UsageError
        If the input is missing, or the folders are the same or nested in each other.
    """
    if not input_dir.is_dir():
        raise UsageError(f"{input_dir}: input folder not found")
    source = input_dir.resolve()
    refuse_nested(_folder_key(source), _folder_key(output_dir.resolve()))
    for other in others:
        if other is not None and (other.resolve().is_relative_to(source)
                                  or source.is_relative_to(other.resolve())):
            raise UsageError(f"{other}: must not be inside the input folder (or contain it)")


def refuse_nested(source: str, target: str) -> None:
    """Refuse an input and output folder (local paths or URLs, each ending in ``/``) that are
    the same or nested in each other: outputs would be read again as inputs, or overwrite them.

    Raises
    ------
    UsageError
        If they are.
    """
    if source == target:
        raise UsageError("input and output folders are the same; choose another output folder")
    if target.startswith(source):
        raise UsageError("the output folder is inside the input folder; choose a folder outside")
    if source.startswith(target):
        raise UsageError("the input folder is inside the output folder; choose another folder")


def _folder_key(folder: Path | str) -> str:
    """A folder as :func:`refuse_nested` compares it: its text, ending in one separator."""
    if isinstance(folder, Path):
        return str(folder).rstrip(os.sep) + os.sep
    return folder.rstrip("/") + "/"


def process_chunk(job: Job, chunk: list[str]) -> list[Outcome]:
    """Anonymize the files of ``chunk`` (paths relative to the input folder, POSIX style)."""
    if is_url(job.input_dir) or is_url(job.output_dir):
        return [process_remote_file(job, relative) for relative in chunk]
    return [process_file(job, relative) for relative in chunk]


class _OutputFolder:
    """The output folder during a run: locked, with a temporary folder cleared on entry/exit.

    A run killed with SIGKILL leaves its temporary files here; the next run removes them.
    Two runs into one output folder at once are refused. A URL has no temporary folder
    (workers stage their files locally and upload each under a temporary name): it gets a
    lock file of its own (:class:`dcmanon.remote.lock.RemoteLock`), which also clears the
    uploads a killed run left.
    """

    def __init__(self, folder: Path | str) -> None:
        self.remote = isinstance(folder, str)
        self.folder = Path(folder) if isinstance(folder, Path) else Path()
        self.temp: Path | None = None if self.remote else self.folder / TEMP_FOLDER
        self._created = False
        self._lock: IO[bytes] | None = None
        self._remote_lock: RemoteLock | None = RemoteLock(folder) if isinstance(
            folder, str) else None

    def __enter__(self) -> _OutputFolder:
        if self._remote_lock is not None:
            self._remote_lock.__enter__()
        if self.temp is None:
            return self
        try:
            self._created = not self.folder.exists()
            self.temp.mkdir(parents=True, exist_ok=True)
            self._lock = (self.temp / LOCK_FILE).open("ab")
        except OSError as exc:
            raise UsageError(f"{self.folder}: cannot write to the output folder "
                             f"({describe_os_error(exc)})") from None
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            pass
        else:
            try:
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._lock.close()
                raise UsageError(f"{self.folder}: another dcmanon run is writing to this "
                                 "output folder") from None
        self._clear()
        return self

    def _clear(self) -> None:
        if self.temp is None or not self.temp.is_dir():
            return
        for entry in self.temp.iterdir():
            if entry.name == LOCK_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def __exit__(self, *_: object) -> None:
        if self._remote_lock is not None:
            self._remote_lock.__exit__()
        if self.temp is None:
            return
        self._clear()
        if self._lock is not None:
            self._lock.close()
        (self.temp / LOCK_FILE).unlink(missing_ok=True)
        try:
            self.temp.rmdir()
            if self._created:
                self.folder.rmdir()  # only if the run wrote nothing at all
        except OSError:
            pass


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _make_executor(options: BatchOptions, files: int) -> Executor:
    executor = _choose_executor(options, files)
    _log.debug("%d input file(s) for %s", files, type(executor).__name__)
    return executor


def _choose_executor(options: BatchOptions, files: int) -> Executor:
    workers = options.jobs or available_cores()
    if options.scheduler is not None and options.executor != "dask":
        raise UsageError("a scheduler address is for --executor dask")
    if options.executor == "dask":
        return DaskExecutor(options.scheduler, workers)
    if options.executor != "processes":
        raise UsageError(f"unknown executor {options.executor!r} (processes or dask)")
    if workers <= 1 or files < options.min_parallel:
        return SerialExecutor()
    return ProcessExecutor(workers)


def _chunk_failed(input_dir: str, chunk: list[str], exc: BaseException) -> list[Outcome]:
    """Every file of a chunk whose worker failed (a worker that died, a lost connection)."""
    return [FileResult(_below(input_dir, rel), "", FileStatus.FAILED,
                       error=f"{_below(input_dir, rel)}: the worker processing it failed "
                             f"({type(exc).__name__})",
                       error_class=WorkerError.__name__) for rel in chunk]


def _below(root: str, relative: str) -> str:
    return join(root, relative) if is_url(root) else str(Path(root).joinpath(
        *relative.split("/")))


def _shown(folder: Path | str) -> str:
    """A folder as messages and reports name it (a URL without its password)."""
    return display(folder) if isinstance(folder, str) else str(folder)


def _inputs(source: Path | str, tracker: _Tracker) -> list[str]:
    """The input files, relative to the input folder (POSIX paths), in a stable order."""
    if isinstance(source, str):
        from dcmanon.remote.staging import list_inputs

        return list_inputs(source)
    files: list[str] = []
    for item in discover(source, check_marker=False):
        if isinstance(item, Path):
            files.append(item.relative_to(source).as_posix())
        elif isinstance(item, Unlisted):
            tracker.accept(FileResult(
                item.path, "", FileStatus.FAILED, error=f"{item.path}: cannot list the folder "
                f"({item.reason}); its files were not processed",
                error_class=InputError.__name__))
        else:
            tracker.accept(item)
    return files


def path_key(anonymizer: Anonymizer) -> str:
    """The key of the tokens that stand for identifiers in input names: the patient
    pseudonyms' key, else another key of the configuration, else a random one for the run."""
    config = anonymizer.config
    for key in (config.patient_key, config.uid_key):
        if key:
            return key
    for rule in config.rules:
        found = getattr(rule.settings, "key", None)
        if isinstance(found, str) and found:
            return hashlib.sha256(b"dcmanon/path-names\x00" + found.encode()).hexdigest()[:32]
    return secrets.token_hex(16)


def _directories(source: Path | str, files: list[str], layout: Layout,
                 tracker: _Tracker) -> list[Directory]:
    """Take the DICOMDIRs out of ``files``: they are rebuilt over the outputs at the end of a
    mirrored run (:mod:`dcmanon.batch.dicomdir`), and skipped otherwise."""
    found: list[Directory] = []
    for relative in [f for f in files
                     if f.rsplit("/", 1)[-1].upper().startswith(DICOMDIR_NAME)]:
        named = relative.rsplit("/", 1)[-1].upper() == DICOMDIR_NAME
        if isinstance(source, str):
            if named:
                files.remove(relative)
                tracker.accept(Skipped(_below(source, relative), SKIPPED_REMOTE))
            continue
        path = source.joinpath(*relative.split("/"))
        if not is_dicomdir(path):
            continue
        files.remove(relative)
        if not named or layout is not Layout.MIRROR:
            reason = SKIPPED_NAME if not named else SKIPPED_UID_LAYOUT \
                if layout is Layout.UID else SKIPPED_FILESET
            tracker.accept(Skipped(str(path), reason))
            continue
        try:
            found.append(read_directory(source, relative))
        except Exception as exc:  # noqa: BLE001  (pydicom's messages may quote values)
            tracker.accept(FileResult(str(path), "", FileStatus.FAILED,
                                      error=f"{path}: the DICOMDIR cannot be read "
                                            f"({type(exc).__name__})",
                                      error_class=InputError.__name__))
    return found


def _write_fileset_directory(source: Path, target: Path, tracker: _Tracker) -> None:
    """``--layout fileset``: the DICOMDIR of every output, at the output folder's root; a
    failure to write it is the run's (reported as one failed file)."""
    listing = Directory(DICOMDIR_NAME, tuple(sorted(tracker.outputs)))
    result = rebuild(listing, source, target, tracker.outputs)
    if result.status == FileStatus.FAILED:
        tracker.accept(dataclasses.replace(result, source=str(source),
                                           error=(result.error or "").replace(
                                               str(source / DICOMDIR_NAME), str(target))))


def run_folder(anonymizer: Anonymizer, input_dir: Path | str, output_dir: Path | str,
               on_file: Callable[[FileResult | Skipped], None] | None = None, *,
               options: BatchOptions | None = None,
               on_start: Callable[[int], None] | None = None) -> BatchResult:
    """Anonymize every DICOM file under ``input_dir`` into ``output_dir``.

    Either folder may be a URL (``s3://bucket/in``, ``ftp://host/out``...) that every worker
    reaches: see :mod:`dcmanon.remote.staging`.

    Parameters
    ----------
    anonymizer : Anonymizer
        Pickled to each worker (configuration, keys and date travel with it).
    on_file : callable, optional
        Called in this process after each file (for progress), with its outcome.
    options : BatchOptions, optional
        Workers, layout, resume, quarantine, report.
    on_start : callable, optional
        Called with the number of files found, before any is processed.

    Returns
    -------
    BatchResult

    Raises
    ------
    UsageError
        If the folders are wrong, the output folder is locked by another run, the executor
        cannot start, or the mapping database cannot be opened.
    MappingStoreError
        If the mapping database cannot be written during the run (it stops; the outputs
        written are complete, and the pairs of every file reported done are recorded).
    """
    options = options or BatchOptions()
    remote = is_url(input_dir) or is_url(output_dir)
    source = str(input_dir) if is_url(input_dir) else Path(local_path(str(input_dir)))
    target = str(output_dir) if is_url(output_dir) else Path(local_path(str(output_dir)))
    if remote:
        if options.layout is Layout.FILESET:
            raise UsageError("--layout fileset writes to a local folder only (its DICOMDIR is "
                             "written once every file is)")
        if isinstance(source, Path) and not source.is_dir():
            raise UsageError(f"{source}: input folder not found")
        refuse_nested(_folder_key(str(source)), _folder_key(str(target)))
    else:
        assert isinstance(source, Path) and isinstance(target, Path)
        check_folders(source, target, options.quarantine)
    start = time.perf_counter()
    batch = BatchResult()
    report = RunReport(options.report, _shown(source), _shown(target)) \
        if options.report else None
    tracker = _Tracker(batch, report, on_file, options.layout,
                       anonymizer.record_mappings and options.keep_mappings,
                       (_shown(source), _shown(target)))
    files = _inputs(source, tracker)
    directories = _directories(source, files, options.layout, tracker)
    tracker.keep_outputs = bool(directories) or options.layout is Layout.FILESET
    if on_start is not None:
        on_start(len(files))
    if options.mapping_db and not anonymizer.record_mappings:
        raise UsageError("a mapping database needs an anonymizer that records mappings "
                         "(Anonymizer(record_mappings=True))")
    store = _open_store(options.mapping_db) if files and options.mapping_db else None
    try:
        if files:
            # The executor closes first: its workers stop before the temporary folder is
            # cleared and the lock released.
            with _OutputFolder(target) as out, closing(_make_executor(
                    options, len(files))) as executor:
                batch.summary.workers = executor.workers
                batch.summary.executor = executor.name
                size = options.chunk_size or max(1, min(MAX_CHUNK, math.ceil(
                    len(files) / (executor.workers * 4))))
                job = Job(anonymizer, str(source), str(target),
                          str(out.temp) if out.temp else "", options.layout, options.overwrite,
                          str(options.quarantine) if options.quarantine else None, time.time(),
                          path_key(anonymizer) if options.rename_paths
                          or options.layout is Layout.FILESET else "",
                          tuple(d.base for d in directories))
                for outcomes in executor.map_unordered(
                        partial(process_chunk, job), _chunks(files, size),
                        partial(_chunk_failed, _shown(source))):
                    if store is not None:
                        # Before the outcomes count: a run stopped by the store has
                        # recorded every file it reported done.
                        store.record(m for o in outcomes if isinstance(o, FileResult)
                                     and o.status == FileStatus.DONE for m in o.mappings)
                    for outcome in outcomes:
                        tracker.accept(outcome)
                executor.sync()  # once for the run: a flush per file costs more than the rest
                tracker.finish()
                if tracker.mirror and isinstance(target, Path):
                    tracker.merge_folders(target)
                for directory in directories:
                    assert isinstance(source, Path) and isinstance(target, Path)
                    tracker.accept(rebuild(directory, source, target, tracker.outputs))
                if options.layout is Layout.FILESET and tracker.outputs:
                    assert isinstance(source, Path) and isinstance(target, Path)
                    _write_fileset_directory(source, target, tracker)
    except KeyboardInterrupt:
        batch.summary.interrupted = True
        raise
    finally:
        if store is not None:
            store.close()
        batch.summary.seconds = time.perf_counter() - start
        if report is not None:
            report.summary(batch.summary)
            report.close()
    return batch


def _open_store(path: Path) -> MappingStore:
    """The run's mapping database, opened before any file is written."""
    from dcmanon.trials.mapping_db import MappingStore

    try:
        return MappingStore(path)
    except MappingStoreError as exc:
        raise UsageError(str(exc)) from None


class _Tracker:
    """Counts outcomes, reports them, and refuses two inputs written to one output."""

    def __init__(self, batch: BatchResult, report: RunReport | None,
                 on_file: Callable[[FileResult | Skipped], None] | None, layout: Layout,
                 mappings: bool, roots: tuple[str, str]) -> None:
        self.batch, self.report, self.on_file = batch, report, on_file
        self.hold_existing = layout is not Layout.MIRROR  # may be another input of this run
        self.mirror = layout is Layout.MIRROR
        self.roots = roots
        self.renamed: set[str] = set()
        self.folders = FolderNames()
        self.keep_outputs = False
        self.outputs: dict[str, str] = {}
        """Output of each input written or kept (relative paths; the input's in lower case),
        when a DICOMDIR is rebuilt over them."""
        self.keep_mappings = mappings
        self.written: dict[str, str] = {}
        self.existing: list[FileResult] = []

    def accept(self, outcome: Outcome) -> None:
        if isinstance(outcome, FileResult) and outcome.target:
            renamed = self._renamed(outcome)
            if outcome.status == FileStatus.EXISTS and (self.hold_existing or renamed):
                self.existing.append(outcome)
                return
            if outcome.status == FileStatus.DONE and (self.hold_existing or renamed):
                other = self.written.setdefault(outcome.target, outcome.source)
                if other != outcome.source:
                    outcome = _collision(outcome, other)
        self._emit(outcome)

    def finish(self) -> None:
        """Outputs that existed: from an earlier run (resumed), or from another input now."""
        for outcome in self.existing:
            other = self.written.get(outcome.target)
            self._emit(_collision(outcome, other) if other else outcome)
        self.existing.clear()

    def merge_folders(self, root: Path) -> None:
        """Move outputs left in a folder renamed for other files of it (see
        :class:`~dcmanon.batch.names.FolderNames`); each move counts as a renamed component."""
        moves = self.folders.merge(root)
        if moves:
            self.batch.summary.renamed = len(self.renamed) + len(moves)
            self.outputs = {k: moved_path(v, moves) for k, v in self.outputs.items()}

    def _renamed(self, outcome: FileResult) -> list[str]:
        """The renamed components of a mirrored output (paths from the output folder)."""
        if not self.mirror:
            return []
        return renamed_prefixes(relative_to(outcome.source, self.roots[0]),
                                relative_to(outcome.target, self.roots[1]))

    def _emit(self, outcome: Outcome) -> None:
        batch = self.batch
        batch.summary.add(outcome)
        renamed = 0
        if isinstance(outcome, FileResult) and outcome.target and \
                outcome.status != FileStatus.FAILED:
            if self.keep_outputs:
                self.outputs[relative_to(outcome.source, self.roots[0]).lower()] = \
                    relative_to(outcome.target, self.roots[1])
            components = self._renamed(outcome)
            renamed = len(components)
            self.renamed.update(components)
            batch.summary.renamed = len(self.renamed)
            if self.mirror:
                self.folders.add(relative_to(outcome.source, self.roots[0]),
                                 relative_to(outcome.target, self.roots[1]))
        if isinstance(outcome, Skipped):
            batch.skipped.append(outcome)
        elif outcome.status == FileStatus.FAILED:
            batch.failed.append(outcome)
        elif outcome.status == FileStatus.DONE:
            if outcome.flags and len(batch.flagged) < 10:
                batch.flagged.append(outcome)
            if self.keep_mappings:
                batch.mappings.update(outcome.mappings)
        if self.report is not None:
            self.report.file(outcome, renamed)
        if self.on_file is not None:
            self.on_file(outcome)


def _collision(outcome: FileResult, other: str) -> FileResult:
    return FileResult(outcome.source, outcome.target, FileStatus.FAILED,
                      error=f"{outcome.source}: maps to the same output as {other} "
                            f"({outcome.target}); two inputs are never written to one output",
                      error_class=OutputCollision.__name__, size=outcome.size)
