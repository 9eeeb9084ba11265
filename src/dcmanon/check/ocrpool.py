"""The OCR of ``check --ocr`` and ``scan --ocr`` on every core (``-j N``): each image's pixels
are read in a worker process, and what was read is put into the report at the place the
one-process run would have put it, so that both reports are the same, finding for finding.

Workers load the OCR engine once (the process initializer) and read each image from its path
themselves: only paths go to them, and only small results come back (findings, the report's
pictures as PNG bytes, counts), in memory through the pool's pipes: the text read is never
written to disk nor logged. At most :data:`IN_FLIGHT_PER_WORKER` images per worker are in
flight. An image whose worker died is read once more alone in a fresh pool; if that worker
dies too, the image gets the ``unreadable`` finding of an image that fails, and the run goes
on.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from dcmanon.check.findings import Finding, Report, Thumbnail

T = TypeVar("T")
log = logging.getLogger(__name__)
IN_FLIGHT_PER_WORKER = 2
"""Images read or waiting in the pool, per worker (what bounds the memory)."""


@dataclass
class PixelResult:
    """What the OCR of one image adds to a report (small: no decoded pixels)."""

    findings: list[Finding] = field(default_factory=list)
    thumbnails: list[Thumbnail] = field(default_factory=list)
    left_out: int = 0
    """Pictures due that a report would have left out (beyond its limit)."""
    counts: list[int] = field(default_factory=lambda: [0] * 5)
    """Images, frames, frames read, distinct frames read, images sampled."""

    @classmethod
    def of(cls, report: Report, counts: list[int]) -> PixelResult:
        """The result held in a scratch ``report`` (made with no category ignored)."""
        return cls(list(report.findings), list(report.thumbnails), report.thumbnails_left_out,
                   counts)


def merge_counts(counts: list[int], more: list[int]) -> None:
    """Add ``more`` to ``counts``, element by element."""
    for index, value in enumerate(more):
        counts[index] += value


def pixel_failure(rel: str, exc: BaseException) -> PixelResult:
    """The result of an image that could not be read: an ``unreadable`` finding."""
    from dcmanon.check.pixeltext import PIXEL_ELEMENT, unread

    why = unread(exc) if isinstance(exc, Exception) else f"unexpected {type(exc).__name__}"
    return PixelResult([Finding("unreadable", rel, PIXEL_ELEMENT,
                                message=f"its pixels could not be read by OCR: {why}")])


@dataclass
class _Pending(Generic[T]):
    rel: str
    local: Callable[[], PixelResult] | None
    """Reads the image in this process (dropped once sent to a worker: it holds its
    dataset)."""
    task: T
    mark: int
    """Where the image's findings go among the report's (see :meth:`Report.add_at`)."""
    future: Future[PixelResult] | None = None


class OcrPool(Generic[T]):
    """Images read by OCR in ``jobs`` worker processes, their results merged in order.

    Parameters
    ----------
    report : Report
        Where the results go: each image's findings at the place the one-process run would
        have added them (the findings added meanwhile come after them).
    jobs : int
        Worker processes; with 1 (or a set of one image), images are read in this process.
    work : callable
        Reads one task in a worker (a module-level function: it is sent by name).
    initializer, initargs
        Run once in each worker: load the OCR engine, keep what every task needs.
    counts : list of int
        Where each image's counts are added.
    """

    def __init__(self, report: Report, jobs: int, work: Callable[[T], PixelResult],
                 initializer: Callable[..., None], initargs: tuple[Any, ...],
                 counts: list[int]) -> None:
        self.report, self.jobs, self.work = report, jobs, work
        self.initializer, self.initargs = initializer, initargs
        self.counts = counts
        self._pending: deque[_Pending[T]] = deque()
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, rel: str, local: Callable[[], PixelResult], task: T) -> None:
        """Read one image (its findings go after those the report holds now): ``local``
        reads it in this process, ``task`` is what a worker is sent to read it."""
        entry = _Pending(rel, local, task, self.report.total)
        if self.jobs <= 1:
            self._apply(entry, local())
            return
        self._pending.append(entry)
        if self._pool is None and len(self._pending) < 2:
            return  # a set of one image is read in this process
        if self._pool is None:
            self._pool = self._new_pool()
        for waiting in self._pending:
            if waiting.future is None and waiting.local is not None:
                self._send(waiting)
        while len(self._pending) > self.jobs * IN_FLIGHT_PER_WORKER:
            self._settle_first()

    def finish(self) -> None:
        """Wait for every image and merge what is left; stop the workers."""
        try:
            while self._pending:
                if self._pool is None:
                    entry = self._pending.popleft()
                    assert entry.local is not None
                    self._apply(entry, entry.local())
                else:
                    self._settle_first()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers (images in flight are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: a fresh interpreter per worker (no fork of a process running an OCR engine).
        return ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=self.initializer, initargs=self.initargs)

    def _send(self, entry: _Pending[T]) -> None:
        """Give an image to the workers (if they cannot take it, it is read here)."""
        assert self._pool is not None
        try:
            entry.future = self._pool.submit(self.work, entry.task)
        except Exception as exc:  # noqa: BLE001  (no worker to be had: read in this process)
            log.warning("no OCR worker could take an image (%s): it is read in this process",
                        type(exc).__name__)
            return
        entry.local = None

    def _settle_first(self) -> None:
        entry = self._pending.popleft()
        if entry.future is None:  # the workers could not take it
            self._apply(entry, entry.local() if entry.local is not None
                        else pixel_failure(entry.rel, RuntimeError()))
            return
        try:
            result = entry.future.result()
        except BrokenProcessPool:
            result = self._again_alone(entry)
            assert self._pool is not None
            for waiting in self._pending:  # they died with the pool: read them again
                self._send(waiting)
        except Exception as exc:  # noqa: BLE001  (one odd image must not stop the run)
            result = pixel_failure(entry.rel, exc)
        self._apply(entry, result)

    def _again_alone(self, entry: _Pending[T]) -> PixelResult:
        """Read an image whose worker died once more, alone in a fresh pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        try:
            return self._pool.submit(self.work, entry.task).result()
        except BrokenProcessPool as exc:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return pixel_failure(entry.rel, exc)

    def _apply(self, entry: _Pending[T], result: PixelResult) -> None:
        """Merge one image's result at its place; move the places of the images after it."""
        from dcmanon.check.pixeltext import THUMBNAILS

        added = 0
        for finding in result.findings:
            added += self.report.add_at(entry.mark + added, finding)
        for later in self._pending:
            later.mark += added
        for picture in result.thumbnails:
            if len(self.report.thumbnails) >= THUMBNAILS:
                self.report.thumbnails_left_out += 1
            else:
                self.report.thumbnails.append(picture)
        self.report.thumbnails_left_out += result.left_out
        merge_counts(self.counts, result.counts)
