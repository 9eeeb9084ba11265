"""Residual-PHI check of a de-identified set against its originals (``dcmanon check``).

The identifiers of the originals are collected first: person names in all their component
forms, IDs and the other identifying values, dates in common spellings, UIDs, and the text of
every element the configuration does not keep (by default the PS3.15 Basic Profile; private
elements included). They are
then looked for in every output: each element value at any depth (private elements and the
file meta included), the raw bytes of the file outside pixel data, and its file and folder
names. Original dates and UIDs that survive in date and UID elements, and the referential
integrity of the set (study and series grouping, SOPInstanceUID = MediaStorageSOPInstanceUID,
references that resolve within the set), are reported too.

The library never prints: :func:`check` returns a :class:`~dcmanon.check.findings.Report`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset

from dcmanon.check.findings import (
    FREE_TEXT_VRS,
    ElementText,
    Finding,
    Report,
    TermIndex,
    iter_texts,
    tokens,
    uid_like,
)
from dcmanon.check.integrity import SetShape, instance_uid, integrity_findings
from dcmanon.check.pixelcheck import PixelCheck
from dcmanon.check.pixeltext import MAX_FRAMES, PIXEL_ELEMENT, require_ocr, unread
from dcmanon.check.rawscan import SHORT_TERM, TEXT_RUN, raw_texts, text_runs
from dcmanon.config.loader import Config, default_config
from dcmanon.dicom.tags import ElementPath
from dcmanon.errors import InputError, UsageError, describe_os_error
from dcmanon.header.engine import Engine
from dcmanon.io.discover import NOT_REGULAR, discover, files_of_set, is_dicom_candidate
from dcmanon.io.files import META_ELEMENTS_KEPT, read_dicom
from dcmanon.methods.profile_actions import DUMMY_TEXT
from dcmanon.phi.identifiers import IDENTIFYING_KEYWORDS, collect_identifiers, date_spellings

"""What ``check`` reports, in the order reports list them."""
PLACEHOLDERS = frozenset({"anonymous", "anonymized", "anon", "removed", "unknown", "none",
                          "null", "deleted", "redacted", "http anonymous invalid", "name",
                          "lastname", "firstname", "last", "first", "given", "family",
                          "middle"} |
                         {" ".join(tokens(v)) for v in DUMMY_TEXT.values()})
"""Values anonymizers and test data write: not identifiers, even when an original held one."""
VOCABULARY_KEYWORDS = frozenset({"CodeMeaning", "CodeValue", "CodingSchemeDesignator",
                                 "LongCodeValue", "URNCodeValue", "Manufacturer",
                                 "ManufacturerModelName", "SoftwareVersions"})
"""Kept elements whose words are vocabulary, the same for every patient."""
_IDENTIFYING = frozenset(IDENTIFYING_KEYWORDS)
_IMPLEMENTATION_UID = 0x00020012
_TEXT_TERM_VRS = FREE_TEXT_VRS | {"AE", "UR", "UN"}
_CREATOR = "private creator"
PAIRED_TIMES = {
    0x00080012: 0x00080013, 0x00080020: 0x00080030, 0x00080021: 0x00080031,
    0x00080022: 0x00080032, 0x00080023: 0x00080033, 0x00080024: 0x00080034,
    0x00080025: 0x00080035, 0x00181200: 0x00181201, 0x00321000: 0x00321001,
    0x00400002: 0x00400003, 0x00400244: 0x00400245, 0x00400250: 0x00400251,
    0x0040A121: 0x0040A122,
}
"""A date element and the time element beside it (StudyDate and StudyTime...)."""
_NUMERIC_TEXT_VRS = frozenset({"AS", "DS", "IS", "TM"})
"""Numbers and times: identifiers found there are chance hits (still seen for raw bytes)."""


def dates_in(value: str) -> list[str]:
    """The ``YYYYMMDD`` dates of a DA or DT value (ranges give two)."""
    return [part[:8] for part in value.split("-") if len(part) >= 8 and part[:8].isdigit()]


@dataclass
class Originals:
    """What the originals hold that must not reach the outputs.

    Parameters
    ----------
    config : Config
        The configuration the outputs were made with: the values of the elements it keeps
        are not identifiers (names, IDs, dates and UIDs always are).
    """

    config: Config
    terms: TermIndex = field(default_factory=TermIndex)
    uids: set[str] = field(default_factory=set)
    dates: set[str] = field(default_factory=set)
    dates_by_file: dict[str, frozenset[str]] = field(default_factory=dict)
    moments: set[str] = field(default_factory=set)
    """Dates with their time of day (``YYYYMMDD HHMMSS``, DT values): when an output keeps the
    time of day, its date is an original one only if the moment is too (a shifted date may
    fall on another patient's real date, never at the same moment)."""
    shape: SetShape = field(default_factory=SetShape)
    kept: set[str] = field(default_factory=set)
    """Values of elements the configuration keeps (not identifiers, whatever else holds them)."""
    vocabulary: set[str] = field(default_factory=set)
    """Kept values of coded and vendor elements: words in them are not identifiers."""
    files: int = 0
    unreadable: list[str] = field(default_factory=list)
    pixels: bool = False
    """Keep each original's identifiers and path, to compare the text of the outputs' pixels."""
    identifiers: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    """With ``pixels``: (kind, term) pairs of each original, by relative path."""
    paths: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._engine = Engine(self.config)

    def add(self, ds: Dataset, rel: str) -> None:
        """Collect the identifiers of one original."""
        actions = {(d.path, d.tag): d.action for d in self._engine.explain(ds)}
        texts = list(iter_texts(ds))
        file_dates: set[str] = set()
        ids: set[tuple[str, ...]] = set()
        date_terms: set[str] = set()
        for et in texts:
            if et.vr == "UI":
                if et.tag != _IMPLEMENTATION_UID:
                    self.uids.update(v.strip("\0 ") for v in et.texts if instance_uid(v))
                continue
            if et.vr in ("DA", "DT"):
                for value in et.texts:
                    for date in dates_in(value):
                        file_dates.add(date)
                        date_terms.update(date_spellings(date))
                continue
            if keyword_for_tag(et.tag) in _IDENTIFYING:
                ids.update(tokens(t) for t in et.texts)
            action = _action(et, actions)
            if et.vr in _TEXT_TERM_VRS and action not in _KEPT:
                for text in et.texts:
                    self.terms.add(text, "text")
            elif et.vr in FREE_TEXT_VRS | {"CS"} and action == "keep":
                vocabulary = et.vr == "CS" or keyword_for_tag(et.tag) in VOCABULARY_KEYWORDS
                (self.vocabulary if vocabulary else self.kept).update(et.texts)
        found = []
        for term in collect_identifiers(ds).terms:
            kind = "date" if term in date_terms else "id" if tokens(term) in ids else "name"
            self.terms.add(term, kind)
            found.append((kind, term))
        if self.pixels:
            found.extend(("date", d) for d in file_dates)  # and their two-digit-year spellings
            self.identifiers[rel] = tuple(dict.fromkeys(found))
        for term in date_terms:
            self.terms.add(term, "date")
        self.dates |= file_dates
        self.dates_by_file[rel] = frozenset(file_dates)
        self.moments.update(m for _, _, m in _moments(texts) if m)
        self.shape.add(rel, ds, texts)
        self.files += 1

    def finish(self) -> int:
        """Forget placeholders and the values the configuration keeps; return how many went."""
        before = self.terms.size
        for value in self.kept | self.vocabulary:
            self.terms.discard(value)
            vocabulary = value in self.vocabulary
            for match in self.terms.find(value):
                # "Observer" (a name) in the code meaning "Recording Observer's Name"; "TOSHIBA"
                # (a station name) in "TOSHIBA_MEC" (a manufacturer): words, not identifiers.
                if vocabulary or (match.kind in ("id", "text")
                                  and not any(c.isdigit() for c in match.term)):
                    self.terms.discard(match.term)
        for value in PLACEHOLDERS:
            self.terms.discard(value)
        self.dates.discard("19000101")
        for rel, pairs in self.identifiers.items():  # what the configuration keeps is no leak
            self.identifiers[rel] = tuple((k, t) for k, t in pairs
                                          if (t in self.terms) or (k == "date" and t.isdigit()
                                                                   and t in self.dates))
        return before - self.terms.size


_KEPT = ("keep", "clean", _CREATOR)


def _moments(texts: list[ElementText]) -> Iterator[tuple[ElementText, str, str]]:
    """Each DA or DT value with its moment: DA + the time beside it, DT as it is ("": none)."""
    times = {(et.path, et.tag): et.texts[0].strip() for et in texts if et.vr == "TM"}
    for et in texts:
        for value in et.texts:
            if et.vr == "DT":
                yield et, value, value.strip() if len(value.strip()) > 8 else ""
            elif et.vr == "DA":
                time = times.get((et.path, PAIRED_TIMES.get(et.tag, -1)), "")
                yield et, value, f"{value.strip()} {time}" if time else ""


def _action(et: ElementText, actions: dict[tuple[ElementPath, int], str]) -> str:
    """What the configuration does to the element (``remove`` inside a removed sequence)."""
    group, element = et.tag >> 16, et.tag & 0xFFFF
    if group & 1 and 0x10 <= element <= 0xFF:
        return _CREATOR  # private creators name vendors, not people
    if group == 0x0002:
        return "keep" if et.tag in META_ELEMENTS_KEPT else "remove"
    return actions.get((et.path, et.tag), "remove")


def collect_originals(root: Path, config: Config, pixels: bool = False) -> Originals:
    """Read every DICOM file under ``root`` and collect its identifiers (with ``pixels``,
    each one's identifiers and path too: see :attr:`Originals.pixels`)."""
    originals = Originals(config, pixels=pixels)
    if root.is_file():
        items: Iterable[object] = [root]
        base = root.parent
    else:
        items, base = discover(root), root
    for item in items:
        if not isinstance(item, Path):
            continue  # skipped: not DICOM, or a link leading out of the folder
        rel = item.relative_to(base).as_posix()
        if pixels:
            originals.paths[rel] = item
        try:
            originals.add(read_dicom(item), rel)
        except Exception:  # noqa: BLE001  (unreadable or odd: its identifiers are unknown, which is reported)
            originals.unreadable.append(rel)
    return originals


def check(original: str | os.PathLike[str], anonymized: str | os.PathLike[str], *,
          config: Config | None = None, ignore: Iterable[str] = (), ocr: bool = False,
          ocr_frames: int = MAX_FRAMES, show_values: bool = False, jobs: int = 1,
          progress: Callable[[str], None] | None = None) -> Report:
    """Look for the identifiers of ``original`` in ``anonymized`` (files or folders).

    Parameters
    ----------
    original, anonymized : path
        The originals and the de-identified outputs: two folders, or two files.
    config : Config, optional
        The configuration the outputs were made with (default: the PS3.15 Basic Profile). The
        text of the elements it keeps is not looked for; names, IDs, dates and UIDs always are.
    ignore : iterable of str
        Categories not to count (e.g. ``original-uid`` when UIDs were retained on purpose).
    ocr : bool
        Also read the text in the outputs' pixels with OCR (:mod:`dcmanon.check.pixeltext`):
        ``pixel-identifier`` and ``pixel-text`` findings, and pictures of the images whose
        pixels were cleaned or hold text (``report.thumbnails``).
    ocr_frames : int
        Frames read per image at most (evenly sampled beyond; 0: every frame).
    show_values : bool
        The report will show values: with ``ocr``, its pictures show the text read and the
        originals' pixels too (by default the text read is covered, and no original shown).
    jobs : int
        With ``ocr``: worker processes reading the pixels (1: this process). The report is
        the same whatever their number (:mod:`dcmanon.check.ocrpool`).
    progress : callable, optional
        Called with each output's relative path as it is checked.

    Returns
    -------
    Report
        Every finding, with counts by category and by element; ``passed`` when none.

    Raises
    ------
    UsageError
        If a path is missing, or the two are the same or nested in each other.
    MissingExtraError
        If ``ocr`` and the OCR engine is not installed (``dcmanon[ocr]``).
    """
    if ocr:
        require_ocr()
    source, target = Path(original), Path(anonymized)
    for path in (source, target):
        if not path.exists():
            raise UsageError(f"{path}: not found")
    a, b = source.resolve(), target.resolve()
    if a == b or (source.is_dir() and b.is_relative_to(a)) or (
            target.is_dir() and a.is_relative_to(b)):
        raise UsageError("the original and the anonymized set must be apart (not the same "
                         "folder, nor one inside the other)")
    report = Report("check", ignored=frozenset(ignore))
    originals = collect_originals(source, config or default_config(secret="dcmanon check"),
                                  pixels=ocr)
    dropped = originals.finish()
    pixels = PixelCheck(originals.identifiers, originals.paths, ocr_frames,
                        show_values, jobs=jobs) if ocr else None
    single = next(iter(originals.paths), None) if source.is_file() and target.is_file() \
        else None
    for rel in originals.unreadable:
        report.add(Finding("unreadable", rel, message="an original could not be read: its "
                                                      "identifiers were not looked for"))
    try:
        outputs = SetShape()
        paired = 0
        checked_names: set[str] = set()
        for path, rel, regular in files_of_set(target):
            if progress is not None:
                progress(rel)
            if not regular:
                report.add(not_checked(rel))
                continue
            paired += rel in originals.dates_by_file
            _check_names(rel, originals.terms, report, checked_names)
            ds: Dataset | None = None
            if is_dicom_candidate(path):
                try:
                    ds = read_dicom(path)
                except InputError:
                    report.add(Finding("unreadable", rel, message="an output could not be "
                                       "read as DICOM: its raw bytes were still searched"))
            try:
                seen = _check_dataset(ds, rel, originals, report, outputs) \
                    if ds is not None else set()
            except Exception as exc:  # noqa: BLE001  (one odd file must not stop the check)
                report.add(Finding("unreadable", rel, message="its values could not all be "
                                   f"read (unexpected {type(exc).__name__}): raw bytes still "
                                   "searched"))
                seen = set()
            _check_raw(path, ds, rel, originals, seen, report)
            if pixels is not None and ds is not None:
                _check_pixels(pixels, path, ds, rel, single or rel, report)
            report.files_checked += 1
        if pixels is not None:
            pixels.close(drain=True)  # the findings of the images still in the workers
    finally:
        if pixels is not None:
            pixels.close()  # stopped early (an error, Ctrl-C): no waiting
    for finding in integrity_findings(originals.shape, outputs):
        report.add(finding)
    report.notes.append(f"{originals.files} original(s) read; {originals.terms.size} "
                        f"identifiers, {len(originals.uids)} UIDs and {len(originals.dates)} "
                        "dates looked for")
    if dropped:
        report.notes.append(f"{dropped} value(s) not looked for: placeholders, or values that "
                            "elements the profile keeps also hold")
    if pixels is not None:
        pixels.finish(report)
    if paired:
        report.notes.append(f"{paired} output(s) have an original at the same relative path: "
                            "their dates were compared with that original's only")
    return report


def _check_pixels(pixels: PixelCheck, path: Path, ds: Dataset, rel: str, paired: str,
                  report: Report) -> None:
    try:
        pixels.check(path, ds, rel, report, paired if paired in pixels.originals else None)
    except Exception as exc:  # noqa: BLE001  (one odd image must not stop the check)
        report.add(Finding("unreadable", rel, PIXEL_ELEMENT,
                           message=f"its pixels could not be read by OCR: {unread(exc)}"))


def _check_names(rel: str, terms: TermIndex, report: Report, checked: set[str]) -> None:
    parts = rel.split("/")
    for depth, name in enumerate(parts):
        where = "/".join(parts[:depth + 1])
        if where in checked:
            continue
        checked.add(where)
        for match in terms.find_in_name(name):
            report.hidden_names.add(name)
            what = "folder name" if depth < len(parts) - 1 else "file name"
            report.add(Finding("file-name", where, what, match.kind, match.found,
                               f"a {what} holds an identifier of the originals"))


def _check_dataset(ds: Dataset, rel: str, originals: Originals, report: Report,
                   outputs: SetShape) -> set[str]:
    """Report the identifiers in the element values; return every identifier seen there."""
    seen: set[str] = set()
    dates = originals.dates_by_file.get(rel, originals.dates)
    texts = list(iter_texts(ds))
    for et, value, moment in _moments(texts):
        for date in dates_in(value):
            if date in dates and (not moment or moment in originals.moments):
                report.add(Finding("original-date", rel, et.where, "date", date,
                                   "an original date survived"))
    for et in texts:
        for text in et.texts:
            matches = originals.terms.find(text)
            uids = [u for u in uid_like(text) if u in originals.uids]
            seen.update(m.term for m in matches)
            seen.update(uids)
            if et.vr == "UI":
                value = text.strip("\0 ")
                seen.add(value)
                if value in originals.uids:
                    report.add(Finding("original-uid", rel, et.where, "uid", value,
                                       "an original UID survived"))
            elif et.vr in ("DA", "DT"):
                seen.update(dates_in(text))
            elif et.vr not in _NUMERIC_TEXT_VRS:
                for match in matches:
                    report.add(Finding(et.category, rel, et.where, match.kind, match.found,
                                       "an identifier of the originals"))
                for uid in uids:
                    report.add(Finding(et.category, rel, et.where, "uid", uid,
                                       "an original UID in a text value"))
    outputs.add(rel, ds, texts)
    return seen


def _check_raw(path: Path, ds: Dataset | None, rel: str, originals: Originals,
               seen: set[str], report: Report) -> None:
    """Search the bytes of the file (pixel data excepted) for what the values did not show."""
    reported: set[str] = set()
    try:
        for text, locate in raw_texts(path, ds):
            for offset, run in text_runs(text):
                for match in originals.terms.find(run):
                    if match.term in seen or match.term in reported or (
                            len(match.found) < SHORT_TERM and len(run) < TEXT_RUN):
                        continue
                    reported.add(match.term)
                    report.add(Finding("raw-bytes", rel, locate(offset + match.start),
                                       match.kind, match.found, "an identifier in the bytes "
                                       "of the file, outside any text value"))
            for uid in uid_like(text):
                if uid in originals.uids and uid not in seen and uid not in reported:
                    reported.add(uid)
                    report.add(Finding("raw-bytes", rel, locate(text.find(uid)), "uid", uid,
                                       "an original UID in the bytes of the file"))
    except OSError as exc:
        report.add(Finding("unreadable", rel, message=f"could not be read "
                                                      f"({describe_os_error(exc)})"))


def not_checked(rel: str) -> Finding:
    """An output that is not a regular file: never opened, so nothing proves it clean."""
    return Finding("unreadable", rel, message=f"{NOT_REGULAR}: not checked")
