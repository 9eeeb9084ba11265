"""Subject tables: the replacement a trial assigned to each original identifier.

A CSV file with the header ``keyword,original,replacement``, one row per identifier: rows for
PatientID (the trial's subject IDs) and for any other text element (AccessionNumber...). It is
parsed once per process into one dictionary per element; a million rows load in a few seconds.
Its values are identifiers: no message ever quotes one (problems name the file and the line).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass, field
from enum import Enum
from itertools import compress
from operator import methodcaller
from pathlib import Path
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

from dcmanon.errors import ConfigError, ConfigProblem

PATIENT_ID_TAG = 0x00100020
HEADER = ("keyword", "original", "replacement")
MAX_LENGTH = {"AE": 16, "CS": 16, "LO": 64, "PN": 64, "SH": 16, "UC": 1024, "LT": 10240,
              "ST": 1024, "UT": 65536}
"""The text VRs a table may replace, with the longest value each allows."""
MAX_PROBLEMS = 20
"""A broken table reports this many problems at most (a wrong file may have millions)."""


class MissingPolicy(str, Enum):
    """What happens to a patient whose PatientID the table does not list."""

    FAIL = "fail"
    """Its files fail (``MissingPolicy``) and are not written."""
    PSEUDONYM = "pseudonym"
    """Its files get the keyed pseudonym, as without a table."""


@dataclass(frozen=True, eq=False)
class SubjectTable:
    """Replacements by element tag, then by original value.

    Two tables are equal when their files had the same bytes (compared by digest: a table
    of a million rows is not compared entry by entry).

    Examples
    --------
    >>> table = parse_subject_table("keyword,original,replacement\\nPatientID,MRN-1,SUBJ-001\\n")
    >>> table.replacement(0x00100020, "MRN-1")
    'SUBJ-001'
    >>> table.replacement(0x00100020, "MRN-2") is None
    True
    """

    by_tag: dict[int, dict[str, str]] = field(repr=False)
    source: str
    digest: str
    rows: int

    @property
    def tags(self) -> frozenset[int]:
        """The elements the table has rows for."""
        return frozenset(self.by_tag)

    @property
    def lists_patients(self) -> bool:
        """Whether the table maps PatientID (then a patient it does not list is missing)."""
        return PATIENT_ID_TAG in self.by_tag

    def replacement(self, tag: int, original: str) -> str | None:
        """The replacement of ``original`` in element ``tag``, None when it is not listed."""
        table = self.by_tag.get(tag)
        return None if table is None else table.get(original)

    def replacements_of(self, terms: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        """(original, replacement) for each of ``terms`` the table lists, in any element."""
        found: dict[str, str] = {}
        for term in terms:
            for table in self.by_tag.values():
                new = table.get(term)
                if new is not None:
                    found.setdefault(term, new)
                    break
        return tuple(found.items())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SubjectTable) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        # Workers get the file's name and digest, not a million rows with every chunk: each
        # process loads the table once (the same file, checked by its digest) and keeps it.
        return _restore, (self.source, self.digest)


_LOADED: dict[str, SubjectTable] = {}
"""The tables this process loaded, by digest (the last few): a worker parses a table once,
whatever the number of chunks it is sent."""
_KEEP_LOADED = 2


def _remember(table: SubjectTable) -> SubjectTable:
    if table.digest not in _LOADED and len(_LOADED) >= _KEEP_LOADED:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[table.digest] = table
    return table


def _restore(source: str, digest: str) -> SubjectTable:
    """A pickled table: the one this process has, else its file again (unchanged)."""
    table = _LOADED.get(digest)
    if table is None:
        table = load_subject_table(source)
        if table.digest != digest:
            raise ConfigError([ConfigProblem("", "the subject table changed during the run")],
                              source)
    return table


def load_subject_table(path: str | os.PathLike[str]) -> SubjectTable:
    """Read a subject table (UTF-8 CSV, header ``keyword,original,replacement``).

    Raises
    ------
    ConfigError
        If the file cannot be read or any row is wrong: each problem names the line and what
        is wrong, never a value.
    """
    source = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read the subject table: "
                                             f"{exc.strerror or type(exc).__name__}")],
                          source) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError([ConfigProblem(f"line {line}", "not UTF-8 text")], source) from None
    digest = hashlib.sha256(data).hexdigest()
    known = _LOADED.get(digest)
    if known is not None and known.source == source:
        return known
    return _remember(parse_subject_table(text, source=source, digest=digest))


def parse_subject_table(text: str, *, source: str = "subject table",
                        digest: str | None = None) -> SubjectTable:
    """Parse a subject table given as text (see :func:`load_subject_table`)."""
    if digest is None:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    quick = _parse_plain(text)
    if quick is not None:
        return SubjectTable(quick[0], source, digest, quick[1])
    problems: list[ConfigProblem] = []

    def problem(line: int, message: str) -> None:
        if len(problems) < MAX_PROBLEMS:
            problems.append(ConfigProblem(f"line {line}", message))

    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ConfigError([ConfigProblem("line 1", f"not CSV ({exc})")], source) from None
    if header is None or tuple(h.strip().lower() for h in header) != HEADER:
        raise ConfigError([ConfigProblem("line 1", "the header must be "
                                         "keyword,original,replacement")], source)
    by_tag: dict[int, dict[str, str]] = {}
    limits: dict[str, tuple[int, int] | None] = {}
    rows = 0
    try:
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != 3:
                problem(line, f"{len(row)} fields, expected 3 (keyword,original,replacement)")
                continue
            keyword, original, replacement = row[0].strip(), row[1].strip(), row[2].strip()
            if keyword not in limits:
                limits[keyword] = _element(keyword)
            element = limits[keyword]
            if element is None:
                # A DICOM keyword is safe to name; anything else may be a shifted value.
                problem(line, f"{keyword} is not a text element "
                        f"({', '.join(sorted(MAX_LENGTH))})" if tag_for_keyword(keyword)
                        else "the first field is not a DICOM keyword")
                continue
            tag, limit = element
            if not original or not replacement:
                problem(line, "the original and the replacement must not be empty")
                continue
            if "\\" in replacement or len(replacement) > limit:
                problem(line, f"the replacement does not fit {keyword} (at most {limit} "
                        "characters, no backslash)")
                continue
            table = by_tag.setdefault(tag, {})
            if original in table:
                if table[original] != replacement:
                    problem(line, f"the original is listed again for {keyword} with another "
                            "replacement")
                continue
            table[original] = replacement
            rows += 1
    except csv.Error as exc:
        problem(reader.line_num, f"not CSV ({exc})")
    if problems:
        raise ConfigError(problems, source)
    return SubjectTable(by_tag, source, digest, rows)


def _parse_plain(text: str) -> tuple[dict[int, dict[str, str]], int] | None:
    """A table without quotes, spaces, backslashes, blank lines or problems, parsed by
    C-level passes over the whole text (no Python loop per row); None for anything else,
    which the careful parser then reads line by line to say what is wrong where."""
    if any(c in text for c in '"\\ \t'):
        return None
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or tuple(lines[0].lower().split(",")) != HEADER:
        return None
    lines = lines[1:]
    if set(map(methodcaller("count", ","), lines)) - {2}:
        return None  # a line of other than three fields, or a blank one
    rows = len(lines)
    joined = ",".join(lines)
    del lines  # (peak memory: each copy of a million rows costs tens of MiB)
    fields = joined.split(",")
    del joined
    keywords, originals, replacements = fields[0::3], fields[1::3], fields[2::3]
    if not all(originals) or not all(replacements):
        return None
    by_tag: dict[int, dict[str, str]] = {}
    for keyword in set(keywords):
        element = _element(keyword)
        if element is None or element[0] in by_tag:
            return None
        chosen = zip(originals, replacements, strict=True)
        if len(by_tag) or len(set(keywords)) > 1:
            chosen = compress(chosen, map(keyword.__eq__, keywords))  # type: ignore[assignment]
        table = dict(chosen)
        if max(map(len, table.values()), default=0) > element[1]:
            return None
        by_tag[element[0]] = table
    if sum(map(len, by_tag.values())) != rows:
        return None  # an original listed twice: the careful parser tells the two apart
    return by_tag, rows


def _element(keyword: str) -> tuple[int, int] | None:
    """The tag and the longest value of a text element, None for anything else."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    vr = dictionary_VR(tag)
    limit = MAX_LENGTH.get(vr)
    return None if limit is None else (tag, limit)
