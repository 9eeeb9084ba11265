"""Free-text cleaning: remove identifiers from text while keeping its clinical meaning.

Two sources of identifiers: the values the same dataset holds (every person name and its
components, IDs, accession numbers, addresses, phone numbers, institution names, the patient's
dates in common spellings), and patterns that look like PHI wherever they come from (dates,
phone numbers, e-mail addresses, US social security numbers).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dcmanon.dicom.elements import character_sets
from dcmanon.phi.matching import compile_identifiers, is_no_space, replace_matches, search

PLACEHOLDER = "***"
MIN_COMPONENT = 3
"""Name components shorter than this are not searched for on their own (too many false hits);
in scripts written without spaces (CJK, Thai) every component is (see
:mod:`dcmanon.phi.matching` for how one-character ones are matched)."""

IDENTIFYING_KEYWORDS = (
    "PatientID", "OtherPatientIDs", "IssuerOfPatientID", "AccessionNumber", "StudyID",
    "PatientAddress", "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
    "PatientTelephoneNumbers", "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "StationName", "DeviceSerialNumber", "RequestedProcedureID", "ScheduledProcedureStepID",
    "PerformedProcedureStepID", "AdmissionID", "ServiceEpisodeID", "MedicalRecordLocator",
    "PersonAddress", "PersonTelephoneNumbers", "RegionOfResidence", "CountryOfResidence",
    "MilitaryRank", "BranchOfService", "PatientInsurancePlanCodeSequence", "OtherPatientIDs",
    "PlacerOrderNumberImagingServiceRequest", "FillerOrderNumberImagingServiceRequest",
)
_MONTHS = ("January February March April May June July August September October November "
           "December").split()
PHI_PATTERNS = [  # e-mail, SSN, phone, then dates (scan relies on this order)
    re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"),  # e-mail
    re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),  # US SSN
    re.compile(r"(?<![\w.])\+?\(?\d{2,4}\)?[\s.-]\d{3,4}[\s.-]\d{3,4}(\s*(x|ext\.?)\s*\d+)?\b"),
    re.compile(r"\b(19|20)\d{2}[-/.](0?[1-9]|1[0-2])[-/.](0?[1-9]|[12]\d|3[01])\b"),
    re.compile(r"\b(0?[1-9]|[12]\d|3[01])[-/.](0?[1-9]|1[0-2])[-/.](19|20)?\d{2}\b"),
    re.compile(r"\b(0?[1-9]|1[0-2])[-/.](0?[1-9]|[12]\d|3[01])[-/.](19|20)?\d{2}\b"),
    re.compile(r"\b(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\b"),
    re.compile(r"\b\d{1,2}\s+(" + "|".join(m[:3] for m in _MONTHS) + r")[a-z]*\.?,?\s+\d{4}\b",
               re.IGNORECASE),
    re.compile(r"\b(" + "|".join(m[:3] for m in _MONTHS) + r")[a-z]*\.?\s+\d{1,2}(st|nd|rd|th)?,?"
               r"\s+\d{4}\b", re.IGNORECASE),
]


@dataclass(frozen=True)
class Identifiers:
    """The identifying strings of one dataset, as one compiled pattern.

    Matching is script-independent (:mod:`dcmanon.phi.matching`): text and identifiers are
    compared NFKC-normalized, case-folded and without Latin, Greek and Cyrillic accents; names
    in scripts without spaces are found inside longer text; ``ids`` (IDs, numbers: every
    identifying value that is not a name or a date) are also found without their separators.
    """

    terms: tuple[str, ...]
    ids: tuple[str, ...] = ()
    """The terms that are also matched without their separators."""
    replacements: tuple[tuple[str, str], ...] = ()
    """(original, replacement) of terms a subject table maps: they read as the replacement
    in cleaned text, instead of the placeholder."""

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        # Compiled on first use: most files have no kept text to search.
        return compile_identifiers(self.terms, self.ids)

    @cached_property
    def _replacing(self) -> list[tuple[re.Pattern[str], str]]:
        found = []
        for original, new in self.replacements:
            pattern = compile_identifiers((original,), (original,) if original in self.ids
                                          else ())
            if pattern is not None:
                found.append((pattern, new))
        return found

    def scrub(self, text: str, patterns: bool = True) -> str:
        """Replace every known identifier (and, if ``patterns``, PHI-looking text)."""
        for pattern, new in self._replacing:
            text = replace_matches(pattern, text, new)
        if self._pattern is not None:
            text = replace_matches(self._pattern, text, PLACEHOLDER)
        if patterns:
            for regex in PHI_PATTERNS:
                text = regex.sub(PLACEHOLDER, text)
        return text

    def found_in(self, text: str) -> bool:
        """Whether the text holds a known identifier."""
        return self._pattern is not None and search(self._pattern, text)


def date_spellings(value: str) -> list[str]:
    """Common spellings of a DA value (``YYYYMMDD``) in free text."""
    try:
        date = dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return []
    d, m, y = date.day, date.month, date.year
    month = _MONTHS[m - 1]
    return [
        f"{y}{m:02d}{d:02d}", f"{y}-{m:02d}-{d:02d}", f"{y}/{m:02d}/{d:02d}",
        f"{d:02d}/{m:02d}/{y}", f"{m:02d}/{d:02d}/{y}", f"{d:02d}.{m:02d}.{y}",
        f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{d:02d}-{m:02d}-{y}", f"{d} {month} {y}",
        f"{d} {month[:3]} {y}", f"{month} {d}, {y}", f"{month[:3]} {d}, {y}",
    ]


def _person_terms(value: str) -> list[str]:
    terms = [value.replace("^", " ").strip()]
    for group in value.split("="):
        parts = [p.strip() for p in group.split("^") if p.strip()]
        if parts:
            terms.append(" ".join(parts))
            if len(parts) >= 2:
                terms.append(f"{parts[1]} {parts[0]}")
        for part in parts:
            terms.extend(w for w in re.split(r"[\s,.-]+", part)
                         if len(w) >= MIN_COMPONENT or is_no_space(w))
    return terms


def _values(element_value: object) -> Iterable[str]:
    if element_value is None:
        return []
    if isinstance(element_value, list | tuple | MultiValue):
        values: list[object] = list(element_value)
    else:
        values = [element_value]  # str, bytes, PersonName (which iterates its characters)...
    texts: list[str] = []
    for value in values:
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        texts.extend(t.strip() for t in text.split("\\") if t.strip())
    return texts


def collect_identifiers(ds: Dataset, extra_tags: frozenset[int] = frozenset()) -> Identifiers:
    """Gather the identifying strings of a dataset, at every depth.

    Every PN value (and its components), the values of :data:`IDENTIFYING_KEYWORDS` and of
    ``extra_tags`` (the elements a subject table maps), and every DA value in common
    spellings. Only those elements are decoded, on a copy, with the
    dataset's own character sets (an item's, where it declares its own): the dataset itself
    is not converted (that would be slow, and would change how later steps read it).
    """
    terms: list[str] = []
    ids: list[str] = []

    def visit(item: Dataset, inherited: list[str]) -> None:
        encoding = _encoding(item, inherited)
        for tag in list(item.keys()):
            raw = item.get_item(tag)
            vr = raw.VR or _dictionary_vr(int(tag))
            if vr == "SQ":
                for child in item[tag].value or ():
                    visit(child, encoding)
            elif is_identifying(int(tag), vr) or tag in extra_tags:
                element = convert_raw_data_element(raw, encoding=encoding, ds=item) if (
                    isinstance(raw, RawDataElement)) else raw
                found = identifier_terms(vr, element.value)
                terms.extend(found)
                if is_id(vr):
                    ids.extend(found)

    visit(ds, ["iso8859"])
    return Identifiers(tuple(terms), tuple(ids))


def _encoding(item: Dataset, inherited: list[str]) -> list[str]:
    """The Python codecs of an item's own Specific Character Set, else those it inherits."""
    if "SpecificCharacterSet" not in item:
        return inherited
    return list(character_sets(item))


def is_identifying(tag: int, vr: str) -> bool:
    """Whether :func:`collect_identifiers` gathers the values of this element."""
    return vr in ("PN", "DA") or tag in IDENTIFYING_TAGS


def is_id(vr: str) -> bool:
    """Whether the terms of an identifying element of this VR are also matched without their
    separators (IDs, numbers, addresses; not names or dates)."""
    return vr not in ("PN", "DA")


def identifier_terms(vr: str, value: object) -> list[str]:
    """The identifying strings in one element's value (as pydicom converts it)."""
    terms: list[str] = []
    for text in _values(value):
        if vr == "PN":
            terms.extend(_person_terms(text))
        elif vr == "DA":
            terms.extend(date_spellings(text))
        elif len(text) >= MIN_COMPONENT or (len(text) >= 2 and is_no_space(text)):
            terms.append(text)
    return terms


def dictionary_vr(tag: int) -> str:
    """The dictionary's VR of a tag (its first choice when ambiguous; UN when unknown)."""
    return _dictionary_vr(tag)


@lru_cache(maxsize=4096)
def _dictionary_vr(tag: int) -> str:
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "UN"


IDENTIFYING_TAGS = frozenset(t for t in map(tag_for_keyword, IDENTIFYING_KEYWORDS)
                              if t is not None)
"""The tags of :data:`IDENTIFYING_KEYWORDS`."""
