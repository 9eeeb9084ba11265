"""Look for signs of PHI in a de-identified set without its originals (``dcmanon scan``).

Without the originals there is nothing to compare with, so the scan looks for what PHI looks
like: person names (PN values that are not pseudonyms or placeholders; ``Family^Given``,
titles and cue words such as ``patient:`` in free text), dates, telephone numbers, e-mail
addresses, social security numbers and postal addresses in text values; private elements;
PatientIdentityRemoved missing or not ``YES``; and images that may carry burned-in text
(BurnedInAnnotation ``YES``, or a modality that often does).

Patterns err on the side of reporting: a finding is something to look at, not proof. The
e-mail, telephone, SSN and date patterns are those :mod:`dcmanon.phi.identifiers` cleans free
text with.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset

from dcmanon.check.findings import FREE_TEXT_VRS, ElementText, Finding, Report, iter_texts, tokens
from dcmanon.check.ocrpool import OcrPool, PixelResult, pixel_failure
from dcmanon.check.pixeltext import (
    MAX_FRAMES,
    PIXEL_ELEMENT,
    TextRead,
    add_thumbnail,
    count_read,
    distinct_lines,
    has_pixels,
    note_frames,
    read_image,
    read_overlays,
    require_ocr,
    text_finding,
    unread,
)
from dcmanon.check.verify import PLACEHOLDERS, not_checked
from dcmanon.dicom.tags import describe_path
from dcmanon.dicom.walk import iter_refs, quiet_pydicom
from dcmanon.errors import InputError, UsageError
from dcmanon.header.record import burned_in_flags
from dcmanon.io.discover import files_of_set, is_dicom_candidate
from dcmanon.io.files import read_dicom
from dcmanon.phi.identifiers import PHI_PATTERNS as SCRUB_PATTERNS

"""What ``scan`` reports, in the order reports list them."""
TECHNICAL_KEYWORDS = frozenset({"SoftwareVersions", "ImplementationVersionName",
                                "ManufacturerModelName", "CodeValue", "ContextIdentifier",
                                "MappingResource", "CodingSchemeVersion",
                                "ContextGroupVersion", "DeidentificationMethod"})
"""Elements whose text is versions and codes: numbers there are not dates or phones."""
_NAME_WORD = r"[A-Z][a-z'\-]+"
NAME_PATTERNS = (
    re.compile(r"(?<![\w^])[A-Za-z][A-Za-z'\-]+\^[A-Za-z][A-Za-z'\-]*"),  # DICOM PN syntax
    re.compile(rf"\b(?:Dr|Mr|Mrs|Ms|Miss|Mx|Prof|Doctor)\.?\s+{_NAME_WORD}"
               rf"(?:\s+{_NAME_WORD})?"),
    re.compile(rf"\b(?i:patient|pt|name|for|by|dear|signed|physician|surgeon|radiologist)"
               rf"\s*[:=]?\s+{_NAME_WORD}\s+{_NAME_WORD}"),
)
"""Person names in free text: ``Doe^John``; titles; a cue word before two capitalized words."""
PHONE_PATTERNS = (
    re.compile(r"\b(?i:phone|telephone|tel|call|ph|fax|mobile|cell)\b\.?:?\s*"
               r"\+?\(?\d[\d()\s.\-]{5,}\d"),
    re.compile(r"(?<![\w.\-])\d{3}-\d{4}\s*(?:x|ext\.?)\s*\d+\b"),
)
"""Telephone numbers the scrub patterns miss: after a cue word, or with an extension."""
ADDRESS_PATTERNS = (
    re.compile(r"\b\d{1,5}\s+(?:[A-Z][A-Za-z'\-]+\s+){1,4}(?:Street|St|Road|Rd|Avenue|Ave|"
               r"Lane|Ln|Drive|Dr|Way|Close|Terrace|Boulevard|Blvd|Court|Ct|Plaza|Place|Pl|"
               r"Square|Sq|Highway|Hwy|Parkway|Pkwy|Strasse|Straße|Weg|Allee|Platz)\b"),
    re.compile(r"\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b"),  # US state and ZIP code
    re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b"),  # UK postcode
    re.compile(r"\bP\.?\s?O\.?\s+Box\s+\d+", re.IGNORECASE),
)
_SSN = re.compile(r"\d{3}-\d{2}-\d{4}")
_DATE_PATTERNS = SCRUB_PATTERNS[3:]
_PSEUDONYM = re.compile(r"[A-Z0-9]+-[A-Z2-7]{6,}")


def pattern_kind(text: str) -> str:
    """Name what a match of the scrub patterns is: e-mail, SSN, date or telephone number."""
    if "@" in text:
        return "email"
    if _SSN.fullmatch(text):
        return "id-number"
    if any(p.fullmatch(text) for p in _DATE_PATTERNS):
        return "date"
    return "phone"


def text_findings(text: str) -> list[tuple[str, str]]:
    """(category, matched text) of every sign of PHI in one free-text value, not overlapping."""
    hits: list[tuple[int, int, str]] = []
    for pattern in SCRUB_PATTERNS:
        hits.extend((m.start(), m.end(), pattern_kind(m.group())) for m in pattern.finditer(text))
    for pattern in PHONE_PATTERNS:
        hits.extend((m.start(), m.end(), "phone") for m in pattern.finditer(text))
    for pattern in NAME_PATTERNS:
        hits.extend((m.start(), m.end(), "name") for m in pattern.finditer(text))
    for pattern in ADDRESS_PATTERNS:
        hits.extend((m.start(), m.end(), "address") for m in pattern.finditer(text))
    found: list[tuple[str, str]] = []
    end = -1
    for start, stop, kind in sorted(hits, key=lambda h: (h[0], -h[1])):
        if start >= end:
            found.append((kind, text[start:stop]))
            end = stop
    return found


def pseudonymous(value: str) -> bool:
    """Whether a PN value looks like a pseudonym or a placeholder rather than a name."""
    text = value.strip()
    if not text or any(c.isdigit() for c in text) or _PSEUDONYM.fullmatch(text):
        return True
    words = tokens(text)
    return all(w in PLACEHOLDERS or len(w) < 2 for w in words)


def scan_dataset(ds: Dataset, rel: str, report: Report, burned_in: bool = True) -> None:
    """Add the findings of one dataset to ``report`` (``burned_in``: with the images that may
    hold text, which OCR's reading replaces)."""
    for et in iter_texts(ds):
        _scan_element(et, rel, report)
    with quiet_pydicom():
        for path, tag, _vr in iter_refs(ds):
            if tag >> 16 & 1 and not 0x10 <= tag & 0xFFFF <= 0xFF:
                report.add(Finding("private-element", rel, describe_path(path, tag),
                                   message="a private element (its content is not known)"))
        removed = str(ds.get("PatientIdentityRemoved", "") or "").strip().upper()
        flags = burned_in_flags(ds)
    if removed != "YES":
        report.add(Finding("identity-not-removed", rel, "(0012,0062) PatientIdentityRemoved",
                           message="PatientIdentityRemoved is " +
                                   ("not YES" if removed else "missing")))
    for flag in flags if burned_in else ():
        element = "(0028,0301) BurnedInAnnotation" if flag.startswith("BurnedIn") \
            else "(0008,0060) Modality"
        report.add(Finding("burned-in", rel, element, message=f"pixels may hold text: {flag}"))


def _scan_element(et: ElementText, rel: str, report: Report) -> None:
    if et.vr == "PN":
        for value in et.texts:
            for group in value.split("="):
                if not pseudonymous(group.replace("^", " ")):
                    report.add(Finding("name", rel, et.where, "name", group,
                                       "a person name that is not a pseudonym"))
        return
    if et.vr not in FREE_TEXT_VRS and et.vr != "UN":
        return
    technical = keyword_for_tag(et.tag) in TECHNICAL_KEYWORDS
    for value in et.texts:
        for kind, found in text_findings(value):
            if technical and kind in ("date", "phone"):
                continue
            report.add(Finding(kind, rel, et.where, kind, found,
                               f"free text that looks like {_ARTICLE[kind]}"))


_ARTICLE = {"name": "a person name", "date": "a date", "phone": "a telephone number",
            "email": "an e-mail address", "id-number": "a social security number",
            "address": "a postal address"}


def scan(target: str | os.PathLike[str], *, ignore: Iterable[str] = (), ocr: bool = False,
         ocr_frames: int = MAX_FRAMES, show_values: bool = False, jobs: int = 1,
         progress: Callable[[str], None] | None = None) -> Report:
    """Scan a de-identified file or folder for signs of PHI.

    Parameters
    ----------
    target : path
        A file, or a folder read recursively (files that are not DICOM are counted, not read).
    ignore : iterable of str
        Categories not to count (e.g. ``burned-in`` once the pixels were checked by eye).
    ocr : bool
        Read the text in the pixels with OCR (:mod:`dcmanon.check.pixeltext`): each line
        that is not allow-listed is a ``pixel-text`` finding, and replaces the ``burned-in``
        warning of the images read; pictures of the images with text (``report.thumbnails``).
    ocr_frames : int
        Frames read per image at most (evenly sampled beyond; 0: every frame).
    show_values : bool
        The report will show values: the pictures show the text read (by default covered).
    jobs : int
        With ``ocr``: worker processes reading the pixels (1: this process). The report is
        the same whatever their number (:mod:`dcmanon.check.ocrpool`).
    progress : callable, optional
        Called with each file's relative path as it is scanned.

    Returns
    -------
    Report
        Every finding, with counts by category and by element; ``passed`` when none.

    Raises
    ------
    UsageError
        If ``target`` does not exist.
    MissingExtraError
        If ``ocr`` and the OCR engine is not installed (``dcmanon[ocr]``).
    """
    if ocr:
        require_ocr()
    root = Path(target)
    if not root.exists():
        raise UsageError(f"{root}: not found")
    report = Report("scan", ignored=frozenset(ignore))
    other = 0
    counts = [0] * 5  # images, frames, frames read, distinct, images sampled
    options = (ocr_frames, show_values)
    pool: OcrPool[tuple[str, str]] | None = OcrPool(
        report, jobs, scan_in_worker, start_worker, options, counts) if ocr else None
    try:
        for path, rel, regular in files_of_set(root):
            if progress is not None:
                progress(rel)
            if not regular:
                report.add(not_checked(rel))
                continue
            if not is_dicom_candidate(path):
                other += 1
                continue
            try:
                ds = read_dicom(path)
                scan_dataset(ds, rel, report, burned_in=not (ocr and has_pixels(ds)))
                if pool is not None and has_pixels(ds):
                    pool.submit(rel, partial(scan_pixels, path, ds, rel, options),
                                (str(path), rel))
            except InputError:
                report.add(Finding("unreadable", rel, message="could not be read as DICOM"))
                continue
            except Exception as exc:  # noqa: BLE001  (one odd file must not stop the scan)
                report.add(Finding("unreadable", rel, message=_unexpected(exc)))
            report.files_checked += 1
        if pool is not None:
            pool.finish()  # the findings of the images still in the workers
    finally:
        if pool is not None:
            pool.close()  # stopped early (an error, Ctrl-C): no waiting
    if other:
        report.notes.append(f"{other} file(s) are not DICOM and were not read")
    if ocr:
        note_frames(report, counts)
        report.notes.append("images whose pixels OCR read have no burned-in warning: what "
                            "was read replaces it")
    return report


def _unexpected(exc: Exception) -> str:
    return f"could not be scanned (unexpected {type(exc).__name__})"


def scan_pixels(path: Path, ds: Dataset, rel: str, options: tuple[int, bool]) -> PixelResult:
    """What reading the pixels of one image adds to a scan's report (``options``: frames
    read at most, values shown); an image that fails gives an ``unreadable`` finding."""
    scratch, counts = Report("scan"), [0] * 5
    try:
        _scan_pixels(path, ds, rel, scratch, options, counts)
    except Exception as exc:  # noqa: BLE001  (one odd image must not stop the scan)
        scratch.add(Finding("unreadable", rel, message=_unexpected(exc)))
    return PixelResult.of(scratch, counts)


_OPTIONS: tuple[int, bool] | None = None
"""The options of a worker process (see :func:`start_worker`)."""


def start_worker(max_frames: int, show_values: bool) -> None:
    """Initialize a worker process: load the OCR engine once, keep the options."""
    global _OPTIONS  # one per process: set by the pool's initializer
    require_ocr()
    _OPTIONS = (max_frames, show_values)


def scan_in_worker(task: tuple[str, str]) -> PixelResult:
    """Read the pixels of one image in a worker: from its path (and relative path)."""
    path, rel = task
    assert _OPTIONS is not None
    try:
        ds = read_dicom(Path(path))
    except Exception as exc:  # noqa: BLE001  (one odd image must not stop the scan)
        return pixel_failure(rel, exc)
    return scan_pixels(Path(path), ds, rel, _OPTIONS)


def _scan_pixels(path: Path, ds: Dataset, rel: str, report: Report,
                 options: tuple[int, bool], counts: list[int]) -> None:
    from dcmanon.pixels.ocr import is_harmless

    try:
        read = read_image(path, ds, max_frames=options[0])
    except Exception as exc:  # noqa: BLE001  (one odd image must not stop the scan)
        report.add(Finding("unreadable", rel, PIXEL_ELEMENT,
                           message=f"its pixels could not be read by OCR: {unread(exc)}"))
        return
    count_read(counts, read)
    left = [line for line in read.lines if not is_harmless(line.text)]
    _report_text(left, rel, report, PIXEL_ELEMENT)
    add_thumbnail(report, rel, ds, read, left, show_values=options[1])
    try:
        overlays = read_overlays(ds, options[0])
    except Exception as exc:  # noqa: BLE001  (one odd overlay must not stop the scan)
        report.add(Finding("unreadable", rel, "(60xx,3000) OverlayData",
                           message=f"an overlay could not be read by OCR: {unread(exc)}"))
        return
    for element, lines in overlays:
        _report_text([t for t in lines if not is_harmless(t.text)], rel, report, element)


def _report_text(lines: list[TextRead], rel: str, report: Report, element: str) -> None:
    where = "the pixels" if element == PIXEL_ELEMENT else "an overlay"
    for line, readings in distinct_lines(lines):
        frames = len({t.frame for t in readings})
        kinds = [kind for kind, _ in text_findings(line.text)]
        kind = kinds[0] if kinds else "text"
        report.add(text_finding("pixel-text", rel, line, frames, kind, f"text in {where}" + (
            f" that looks like {_ARTICLE[kind]}" if kind in _ARTICLE else ""), element))
