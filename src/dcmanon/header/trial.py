"""What a clinical trial adds to the engine: the subject table's replacements at every depth,
unlisted patients, ages computed from the birth date, and the trial's attributes.

The table and the attributes are plain data of the configuration
(:mod:`dcmanon.config.lookup`, :mod:`dcmanon.config.trial`); this module applies them, the same
way on pydicom's path and the byte-level one (which calls :meth:`TrialSteps.replace` through the
engine's ``outcome``).
"""

from __future__ import annotations

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset

from dcmanon.config.loader import Config
from dcmanon.config.lookup import PATIENT_ID_TAG, MissingPolicy
from dcmanon.dicom.dates import DateFormatError, parse_da
from dcmanon.dicom.elements import Encoding, decode_element, encode_element
from dcmanon.errors import LookupMissing
from dcmanon.phi.identifiers import Identifiers
from dcmanon.profiles import ProfileCode

PATIENT_AGE, PATIENT_BIRTH_DATE = 0x00101010, 0x00100030


class TrialSteps:
    """The trial parts of one configuration (see the module's description)."""

    def __init__(self, config: Config) -> None:
        self.table = config.lookup
        self.policy = config.lookup_missing
        self.trial = config.clinical_trial
        self.lookup_tags = self.table.tags if self.table is not None else frozenset()
        profile = config.profile
        # An age is computed where the profile keeps PatientAge but not the birth date.
        self.computes_age = profile is not None and profile.action(
            PATIENT_AGE, "AS", None, (), "") is ProfileCode.KEEP and profile.action(
            PATIENT_BIRTH_DATE, "DA", None, (), "") is not ProfileCode.KEEP

    @staticmethod
    def of(config: Config) -> TrialSteps | None:
        """The trial steps of ``config``, None when it has none."""
        steps = TrialSteps(config)
        if steps.table is None and steps.trial is None and not steps.computes_age:
            return None
        return steps

    def check_patient(self, patient_id: str) -> None:
        """Refuse a patient the table does not list (unless unlisted ones get pseudonyms).

        Raises
        ------
        LookupMissing
            Naming the table, never the patient.
        """
        table = self.table
        if table is None or not table.lists_patients or self.policy is MissingPolicy.PSEUDONYM:
            return
        if table.replacement(PATIENT_ID_TAG, patient_id.strip()) is None:
            raise LookupMissing(f"the patient's PatientID is not in the subject table "
                                f"{table.source} (--lookup-missing pseudonym gives unlisted "
                                "patients the keyed pseudonym)")

    def replace(self, raw: DataElement | RawDataElement, tag: int, vr: str,
                encoding: Encoding) -> RawDataElement | None:
        """The element with the table's replacements, when the table lists every one of its
        values (None: the element takes its usual action, which leaks no unlisted value)."""
        assert self.table is not None
        data = decode_element(raw, vr, None, encoding)
        texts = data.texts or ()
        new = [self.table.replacement(tag, t.strip()) if t.strip() else "" for t in texts]
        if not texts or any(n is None for n in new):
            return None
        return encode_element(data.with_texts([n or "" for n in new]), raw, None, encoding)

    def with_replacements(self, identifiers: Identifiers) -> Identifiers:
        """``identifiers`` that also know the replacement of each listed original: kept text
        then reads the subject's new identifier where the original was."""
        if self.table is None:
            return identifiers
        pairs = self.table.replacements_of(identifiers.terms)
        if not pairs:
            return identifiers
        return Identifiers(identifiers.terms, identifiers.ids, pairs)

    def age_to_add(self, age: str, birth_date: str, study_date: str) -> str | None:
        """The PatientAge to add to a dataset with these values (None: none to add): when
        it has none and the profile keeps ages but not birth dates."""
        if not self.computes_age or age.strip(" \0"):
            return None
        return age_at(birth_date, study_date)

    def add_age(self, ds: Dataset) -> None:
        """Set PatientAge from the birth date and the study date (see :meth:`age_to_add`),
        before the walk, which then aggregates it as any kept age."""
        age = self.age_to_add(*(str(ds.get(k, "") or "") for k in (
            "PatientAge", "PatientBirthDate", "StudyDate")))
        if age is not None:
            ds.PatientAge = age

    def stamp(self, ds: Dataset) -> None:
        """Write the trial's attributes (after the profile: it does not remove them)."""
        if self.trial is None:
            return
        patient = str(ds.get("PatientID", "") or "")
        for keyword, value in self.trial.elements(patient):
            setattr(ds, keyword, value)


def age_at(birth: str, on: str) -> str | None:
    """The AS value of an age from a birth date to a date (both DA), None when either is
    missing or invalid, or the date comes before the birth.

    Whole years from the first birthday on (``045Y``); before it, whole months (``011M``);
    before one month, days (``020D``), as PS3.5 writes ages.

    Examples
    --------
    >>> age_at("19700615", "20150614"), age_at("19700615", "20150615")
    ('044Y', '045Y')
    >>> age_at("20240110", "20240305"), age_at("20240110", "20240130")
    ('001M', '020D')
    """
    try:
        born, day = parse_da(birth.strip()), parse_da(on.strip())
    except DateFormatError:
        return None
    if day < born:
        return None
    years = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    if years >= 1:
        return f"{min(years, 999):03d}Y"
    months = (day.year - born.year) * 12 + day.month - born.month - (day.day < born.day)
    if months >= 1:
        return f"{months:03d}M"
    return f"{(day - born).days:03d}D"


__all__ = ["TrialSteps", "age_at"]
