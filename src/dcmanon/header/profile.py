"""Carry out a profile's action codes on elements no rule selected.

The codes are :class:`dcmanon.profiles.ProfileCode`.
"""

from __future__ import annotations

from pydicom._uid_dict import UID_dictionary
from pydicom.dataset import Dataset

from dcmanon.config.loader import Config
from dcmanon.config.selectors import ElementRef
from dcmanon.dicom.dates import DateFormatError, parse_age
from dcmanon.dicom.values import ElementData
from dcmanon.keys import keyed_uid, patient_date_offset, patient_pseudonym
from dcmanon.methods.base import Action, FileContext, Outcome
from dcmanon.methods.profile_actions import (
    clean,
    dummy,
    pseudonym,
    shift_patient_dates,
    year_only,
)
from dcmanon.phi.identifiers import Identifiers
from dcmanon.profiles import Option, Profile, ProfileCode

_KEPT = frozenset({ProfileCode.KEEP, ProfileCode.UNLISTED, ProfileCode.SCRUB})
SCRUBBED_VRS = frozenset({"LO", "LT", "SH", "ST", "UT", "UC", "PN"})
VALUE_LIMITS = {"AE": 16, "AS": 4, "CS": 16, "DA": 18, "DS": 16, "DT": 54, "IS": 12, "TM": 28,
                "UI": 64}
"""PS3.5 Table 6.2-1: the longest value of each VR kept without being read (DA, DT and TM as
ranges). A longer one is damage: a corrupted length makes it swallow the elements after it."""
SHORTEST_LIMIT = min(VALUE_LIMITS.values())
UNSEARCHED_LENGTH = 64 * 1024
"""A value over its limit and longer than this is not searched but removed (both paths: one
reads it later, or not at all)."""
AGGREGATED_AGE = "090Y"
"""HIPAA: ages over 89 are aggregated into a single category of 90 or older."""
PATIENT_BIRTH_DATE = 0x00100030
OLDEST_KEPT_AGE = 89


class ProfileActions:
    """The actions of one configuration's profile, with its keys."""

    def __init__(self, config: Config) -> None:
        assert config.profile is not None
        self.profile: Profile = config.profile
        self.uid_key = config.uid_key
        self.patient_key = config.patient_key
        self.prefix = config.pseudonym_prefix
        self.retain_uids = Option.RETAIN_UIDS in self.profile.options
        self.age_brackets = config.age_brackets

    def describe(self) -> str:
        """Name the profile in messages."""
        return self.profile.describe()

    def code(self, ref: ElementRef, sop_class_uid: str) -> ProfileCode:
        """The action code for an element of an instance of ``sop_class_uid``."""
        return self.profile.action(ref.tag, ref.vr, ref.creator, ref.parents, sop_class_uid)

    def keeps_unread(self, code: ProfileCode, vr: str) -> bool:
        """Whether :meth:`apply` keeps an element with this code and VR whatever its value
        (so the value need not be decoded)."""
        if code not in _KEPT:
            return False
        if vr == "UI":
            return code is not ProfileCode.UNLISTED or self.retain_uids
        return vr != "AS" and vr not in SCRUBBED_VRS

    def apply(self, code: ProfileCode, data: ElementData, context: FileContext) -> Outcome:
        """Apply a code to one non-sequence element."""
        if code is ProfileCode.REMOVE:
            return Action.REMOVE
        if code in _KEPT:
            return self._kept(data, context, refresh_uids=code is ProfileCode.UNLISTED)
        if code is ProfileCode.EMPTY:
            return _empty(data)
        if code is ProfileCode.UID or (
                data.vr == "UI" and code in (ProfileCode.DUMMY, ProfileCode.CLEAN)):
            return self._uids(data)
        if code is ProfileCode.DUMMY:
            return dummy(data)
        if code is ProfileCode.CLEAN:
            return clean(data, context.identifiers)
        if code is ProfileCode.PSEUDONYM:
            return pseudonym(data, patient_pseudonym(self.patient_key, context.patient_id,
                                                     self.prefix))
        if code is ProfileCode.SHIFT:
            days = patient_date_offset(self.patient_key, context.patient_id)
            return shift_patient_dates(data, days)
        if code is ProfileCode.YEAR:
            years = year_only(data)
            if data.tag == PATIENT_BIRTH_DATE and any(
                    t and context.today.year - int(t[:4]) > OLDEST_KEPT_AGE
                    for t in years.texts or ()):
                # Safe Harbor: no year of a date that shows an age over 89 (the patient may
                # be 90 today): the birth date is emptied (Type 2).
                return years.with_texts([])
            return years
        raise AssertionError(f"unknown profile action {code}")

    def _uids(self, data: ElementData) -> ElementData:
        return data.with_texts([keyed_uid(self.uid_key, t) if t else t
                                for t in data.texts or ()])

    def _kept(self, data: ElementData, context: FileContext, refresh_uids: bool) -> Outcome:
        texts = data.texts
        if texts is None:
            return Action.KEEP
        if data.vr == "UI" and refresh_uids and not self.retain_uids:
            # Registered UIDs (SOP classes, transfer syntaxes...) identify nothing; every other
            # UID is an instance UID, replaced so that no input UID survives.
            if any(t and t not in UID_dictionary for t in texts):
                return data.with_texts([t if (not t or t in UID_dictionary)
                                        else keyed_uid(self.uid_key, t) for t in texts])
            return Action.KEEP
        if data.vr == "AS":
            return aggregate_ages(data, self.age_brackets)
        if data.vr in SCRUBBED_VRS and any(context.identifiers.found_in(t) for t in texts):
            return data.with_texts([context.identifiers.scrub(t, patterns=False)
                                    for t in texts])
        return Action.KEEP


def _empty(data: ElementData) -> ElementData:
    if data.texts is not None:
        return data.with_texts([])
    if data.numbers is not None:
        return data.with_numbers([])
    if data.fragments is not None:
        return ElementData(data.tag, "OB", data=b"")
    return ElementData(data.tag, data.vr, data=b"")


def aggregate_ages(data: ElementData, brackets: int | None = None) -> Outcome:
    """Ages over 89 become ``090Y``; with ``brackets`` = N, the others become the first year
    of their N-year bracket (``045Y`` for 45 to 49 with N = 5; ages in days, weeks or months
    count as their whole years). A value that is not an age is kept as it is."""
    ages = []
    for text in data.texts or ():
        try:
            years = parse_age(text).years
        except DateFormatError:
            ages.append(text)
            continue
        if years > OLDEST_KEPT_AGE:
            ages.append(AGGREGATED_AGE)
        elif brackets:
            ages.append(f"{years // brackets * brackets:03d}Y")
        else:
            ages.append(text)
    return data.with_texts(ages) if ages != list(data.texts or ()) else Action.KEEP


def drop_orphan_creators(ds: Dataset) -> None:
    """Remove private creators whose block no longer holds any element."""
    tags = list(ds.keys())
    used = {(t >> 16, (t & 0xFFFF) >> 8) for t in tags if t >> 16 & 1 and t & 0xFFFF >= 0x1000}
    for tag in tags:
        group, element = tag >> 16, tag & 0xFFFF
        if group & 1 and 0x10 <= element <= 0xFF and (group, element) not in used:
            del ds[tag]


def swallows_identifier(vr: str, value: bytes | None, length: int,
                        identifiers: Identifiers, charsets: tuple[str, ...]) -> bool:
    """Whether a value kept unread is longer than its VR allows and may carry an identifier.

    Such a value holds the bytes of the elements a corrupted length made it swallow (the
    patient's name among them): it is searched for the dataset's identifiers in its character
    sets; one too large to search (or not read: ``value`` None) is assumed to hold one.
    """
    limit = VALUE_LIMITS.get(vr)
    if limit is None or length <= limit:
        return False
    if value is None or length > UNSEARCHED_LENGTH:
        return True
    if all(len(part) <= limit for part in value.split(b"\\")):
        return False  # several values, each within the limit
    return any(identifiers.found_in(value.decode(codec, "replace"))
               for codec in dict.fromkeys((*charsets, "utf-8")))
