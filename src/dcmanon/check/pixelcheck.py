"""The pixel part of ``check --ocr``: each output's text read by OCR (:mod:`dcmanon.check.
pixeltext`) and compared with its original's identifiers, in this process or in worker
processes (:mod:`dcmanon.check.ocrpool`) with the same report.

What OCR reads is PHI: it is held in findings (masked by every report unless asked), goes
between processes only through the pool's pipes, and is never logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from dcmanon.check.findings import Finding, Report
from dcmanon.check.ocrpool import OcrPool, PixelResult, pixel_failure
from dcmanon.check.pairing import PixelIndex
from dcmanon.check.pixeltext import (
    MAX_FRAMES,
    PIXEL_ELEMENT,
    TextRead,
    add_thumbnail,
    count_read,
    distinct_lines,
    first_frame,
    frame_count,
    has_pixels,
    note_frames,
    read_image,
    read_overlays,
    require_ocr,
    text_finding,
    unread,
)
from dcmanon.errors import PixelError

if TYPE_CHECKING:
    from dcmanon.pixels.ocr import IdentifierMatcher

CheckTask = tuple[str, str, "str | None"]
"""What a worker is sent for one output: its path, relative path, and its original's."""

@dataclass
class PixelCheck:
    """The pixel part of ``check``: each output's text read and compared with its original.

    Parameters
    ----------
    identifiers : dict
        Each original's identifiers by relative path, as (kind, term) pairs.
    originals : dict
        Each original's path by relative path.
    max_frames : int
        Frames read per image (see :func:`frames_to_read`).
    show_values : bool
        The report will show values: the text read is not covered in the pictures, and the
        originals are pictured too.
    jobs : int
        Worker processes reading the images (1: this process; see
        :mod:`dcmanon.check.ocrpool`).
    """

    identifiers: dict[str, tuple[tuple[str, str], ...]]
    originals: dict[str, Path]
    max_frames: int = MAX_FRAMES
    show_values: bool = False
    counts: list[int] = field(default_factory=lambda: [0] * 5)
    """Images, frames, frames read, distinct frames read, images sampled."""
    by_pixels: int = 0
    """Outputs paired with their original by their pixels (:mod:`dcmanon.check.pairing`)."""
    jobs: int = 1
    """Worker processes reading the images (1: this process)."""
    _index: PixelIndex | None = field(default=None, repr=False)
    _pool: OcrPool[CheckTask] | None = field(default=None, repr=False)
    _matchers: dict[str, list[tuple[str, IdentifierMatcher]]] = field(default_factory=dict)

    def check(self, path: Path, ds: Dataset, rel: str, report: Report,
              paired: str | None) -> None:
        """Read the text in an output's pixels and report it (nothing without pixel data).
        ``paired``: the relative path of its original (None: not at the same path; then it is
        looked for by the output's pixels).

        With ``jobs`` above 1, the image is read in a worker process and its findings are
        put into ``report`` by :meth:`finish` (or as the pool drains) at the place they
        would have had: call :meth:`finish` before reading the report.
        """
        if not has_pixels(ds):
            return
        if paired is None and self.originals:
            if self._index is None:
                self._index = PixelIndex(self.originals, first_frame)
            paired = self._index.find(path, ds)
            self.by_pixels += paired is not None
        if self._pool is None:
            self._pool = OcrPool(report, self.jobs, check_in_worker, start_worker,
                                 (self.identifiers, self.originals, self.max_frames,
                                  self.show_values), self.counts)
        found = paired

        def here() -> PixelResult:
            return self.read_one(path, ds, rel, found)

        self._pool.submit(rel, here, (str(path), rel, paired))

    def read_one(self, path: Path, ds: Dataset, rel: str, paired: str | None) -> PixelResult:
        """What reading one output (paired with ``paired``) adds to a report; an image that
        fails gives an ``unreadable`` finding."""
        scratch, counts = Report("check"), [0] * 5
        try:
            self._read(path, ds, rel, scratch, paired, counts)
        except Exception as exc:  # noqa: BLE001  (one odd image must not stop the check)
            scratch.add(Finding("unreadable", rel, PIXEL_ELEMENT,
                                message=f"its pixels could not be read by OCR: {unread(exc)}"))
        return PixelResult.of(scratch, counts)

    def _read(self, path: Path, ds: Dataset, rel: str, report: Report, paired: str | None,
              counts: list[int]) -> None:
        source = self.originals.get(paired) if paired is not None else None
        original_ds = _header(source) if source is not None else None
        if original_ds is not None and _geometry(original_ds) != _geometry(ds):
            original_ds = None  # not the same picture: nothing to compare
        try:
            read = read_image(path, ds, max_frames=self.max_frames,
                              original=source if original_ds is not None else None)
        except PixelError:
            if source is None:
                raise
            read = read_image(path, ds, max_frames=self.max_frames)  # the original is odd
        count_read(counts, read)
        matchers = self._matchers_of(paired)
        left = self._report(read.lines, rel, matchers, report, PIXEL_ELEMENT)
        add_thumbnail(report, rel, ds, read, left, original_ds=original_ds,
                      show_values=self.show_values)
        try:
            overlays = read_overlays(ds, self.max_frames)
        except Exception as exc:  # noqa: BLE001  (one odd overlay must not stop the check)
            report.add(Finding("unreadable", rel, "(60xx,3000) OverlayData",
                               message=f"an overlay could not be read by OCR: {unread(exc)}"))
            return
        for element, lines in overlays:
            self._report(lines, rel, matchers, report, element)

    @staticmethod
    def _report(lines: list[TextRead], rel: str, matchers: list[tuple[str, IdentifierMatcher]],
                report: Report, element: str) -> list[TextRead]:
        """Report the lines read in one element; return those reported (every reading)."""
        from dcmanon.pixels.ocr import is_harmless

        where = "the pixels" if element == PIXEL_ELEMENT else "an overlay"
        left: list[TextRead] = []
        for line, readings in distinct_lines(lines):
            frames = len({t.frame for t in readings})
            kind = next((k for k, m in matchers if m.matches(line.text)), None)
            if kind is not None:
                report.add(text_finding("pixel-identifier", rel, line, frames, kind,
                                        f"an identifier of the originals in {where}", element))
            elif not is_harmless(line.text):
                report.add(text_finding("pixel-text", rel, line, frames, "text",
                                        f"text in {where} (not an identifier of the "
                                        "originals)", element))
            else:
                continue
            left.extend(readings)
        return left

    def _matchers_of(self, rel: str | None) -> list[tuple[str, IdentifierMatcher]]:
        """Matchers by kind (names first) of an original's identifiers; of every original's
        for an output paired with none."""
        from dcmanon.pixels.ocr import IdentifierMatcher

        key = rel if rel is not None else "\0all"
        if key not in self._matchers:
            pairs = self.identifiers.get(rel, ()) if rel is not None else tuple(
                p for terms in self.identifiers.values() for p in terms)
            found = []
            for kind in ("name", "id", "date"):
                matcher = IdentifierMatcher([t for k, t in pairs if k == kind])
                if not matcher.empty:
                    found.append((kind, matcher))
            if len(self._matchers) > 64:
                self._matchers.clear()
            self._matchers[key] = found
        return self._matchers[key]

    def finish(self, report: Report) -> None:
        """Wait for the images read in workers (their findings merged), stop the workers, and
        add the note on what was read."""
        self.close(drain=True)
        note_frames(report, self.counts)
        if self.by_pixels:
            report.notes.append(f"{self.by_pixels} output(s) without an original at the same "
                                "path were paired with one by their pixels")




    def close(self, drain: bool = False) -> None:
        """Stop the workers; with ``drain``, after merging what they read."""
        pool, self._pool = self._pool, None
        if pool is not None:
            if drain:
                pool.finish()
            else:
                pool.close()


_WORKER: PixelCheck | None = None
"""The state of a worker process (see :func:`start_worker`)."""


def start_worker(identifiers: dict[str, tuple[tuple[str, str], ...]],
                 originals: dict[str, Path], max_frames: int, show_values: bool) -> None:
    """Initialize a worker process: load the OCR engine once, keep what every image needs."""
    global _WORKER  # one per process: set by the pool's initializer
    require_ocr()
    _WORKER = PixelCheck(identifiers, originals, max_frames, show_values)


def check_in_worker(task: CheckTask) -> PixelResult:
    """Read one output in a worker: from its path (see :data:`CheckTask`)."""
    from dcmanon.io.files import read_dicom

    path, rel, paired = task
    assert _WORKER is not None
    try:
        ds = read_dicom(Path(path))
    except Exception as exc:  # noqa: BLE001  (one odd image must not stop the check)
        return pixel_failure(rel, exc)
    return _WORKER.read_one(Path(path), ds, rel, paired)


def _geometry(ds: Dataset) -> tuple[int, str, str]:
    return frame_count(ds), str(ds.get("Rows")), str(ds.get("Columns"))


def _header(path: Path) -> Dataset | None:
    """An original's header (None when it cannot be read: it is not compared)."""
    from dcmanon.io.files import read_dicom

    try:
        ds = read_dicom(path)
    except Exception:  # noqa: BLE001  (unreadable originals are reported by the check)
        return None
    return ds if has_pixels(ds) else None
