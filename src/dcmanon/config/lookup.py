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
from pathlib import Path

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
    return parse_subject_table(text, source=source,
                               digest=hashlib.sha256(data).hexdigest())


def parse_subject_table(text: str, *, source: str = "subject table",
                        digest: str | None = None) -> SubjectTable:
    """Parse a subject table given as text (see :func:`load_subject_table`)."""
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
    if digest is None:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return SubjectTable(by_tag, source, digest, rows)


def _element(keyword: str) -> tuple[int, int] | None:
    """The tag and the longest value of a text element, None for anything else."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    vr = dictionary_VR(tag)
    limit = MAX_LENGTH.get(vr)
    return None if limit is None else (tag, limit)
