"""``--profile safe-harbor``: HIPAA's Safe Harbor method, 45 CFR 164.514(b)(2).

The expectations come from the regulation's text, not from the code: (b)(2)(i) lists 18 kinds
of identifiers to remove (one test each below: a value planted where DICOM holds that kind is
gone from the output's bytes); (b)(2)(i)(C) keeps the year of dates and ages up to 89, and
aggregates ages over 89 "into a single category of age 90 or older"; sex is not among the 18.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom import dcmread
from pydicom.dataset import Dataset, FileDataset
from pydicom.sequence import Sequence

from dcmanon import Anonymizer, parse_config
from dcmanon.cli import main
from dcmanon.header.trial import age_at
from dcmanon.testing import make_instance, make_patient

TODAY = dt.date(2026, 11, 22)
SECRET = "safe-harbor-test-secret-of-32-characters-at-least"
MARKER = "QX7731Z"
"""A planted identifier: no output may hold it, in any spelling the scrub knows."""


def _instance() -> FileDataset:
    ds = make_instance(make_patient(4, seed=3), seed=3)
    ds.ImageComments = "routine"  # the factory's comment names the patient
    return ds


def _run(ds: FileDataset, tmp_path: Path, **config: object) -> tuple[FileDataset, bytes]:
    source, target = tmp_path / "in.dcm", tmp_path / "out.dcm"
    ds.save_as(source, enforce_file_format=True)
    settings = {"profile": "safe-harbor", **config}
    result = Anonymizer(parse_config(settings, secret=SECRET), today=TODAY).anonymize_file(
        source, target)
    assert result.status == "done", result.error
    return dcmread(target), target.read_bytes()


def _sequence_item(ds: Dataset, keyword: str, **values: object) -> None:
    item = Dataset()
    for name, value in values.items():
        setattr(item, name, value)
    setattr(ds, keyword, Sequence([item]))


def _plant(keyword: str, value: str = MARKER) -> Callable[[Dataset], None]:
    return lambda ds: setattr(ds, keyword, value)


# (b)(2)(i)(A)-(R): each kind, with the DICOM elements a value of that kind is written in.
IDENTIFIER_KINDS: dict[str, Callable[[Dataset], None]] = {
    "A names": lambda ds: (setattr(ds, "PatientName", f"{MARKER}^Jo"),
                           setattr(ds, "OtherPatientNames", f"{MARKER}^Ann"),
                           setattr(ds, "PatientMotherBirthName", f"{MARKER}^Mo")),
    "B geographic subdivisions": lambda ds: (
        setattr(ds, "PatientAddress", f"1 {MARKER} Street, Springfield"),
        setattr(ds, "RegionOfResidence", MARKER)),
    "C dates (but the year)": lambda ds: (
        setattr(ds, "StudyDate", "20190713"), setattr(ds, "PatientBirthDate", "19700615"),
        setattr(ds, "ImageComments", f"seen by {MARKER}")),
    "D telephone numbers": _plant("PatientTelephoneNumbers", f"+1 555 {MARKER}"),
    "E fax numbers": _plant("PersonTelephoneNumbers", f"fax {MARKER}"),
    "F e-mail addresses": _plant("PatientTelecomInformation", f"{MARKER}@example.org"),
    "G social security numbers": _plant("OtherPatientIDs", MARKER),
    "H medical record numbers": lambda ds: (setattr(ds, "PatientID", MARKER),
                                            setattr(ds, "IssuerOfPatientID", MARKER)),
    "I health plan beneficiary numbers": lambda ds: _sequence_item(
        ds, "PatientInsurancePlanCodeSequence", CodeValue=MARKER, CodingSchemeDesignator="99X",
        CodeMeaning=f"plan {MARKER}"),
    "J account numbers": lambda ds: (setattr(ds, "AdmissionID", MARKER),
                                     setattr(ds, "MedicalRecordLocator", MARKER)),
    "K certificate/license numbers": _plant("PatientComments", f"licence {MARKER}"),
    "L vehicle identifiers": _plant("AdditionalPatientHistory", f"plate {MARKER}"),
    "M device identifiers and serial numbers": lambda ds: (
        setattr(ds, "DeviceSerialNumber", MARKER), setattr(ds, "StationName", MARKER)),
    "N web URLs": _plant("RetrieveURL", f"https://{MARKER}.example.org/"),
    "O IP addresses": _plant("NetworkID", f"10.0.0.7 {MARKER}"),
    "P biometric identifiers (voice prints)": lambda ds: (
        ds.add_new(0x50002000, "CS", "VOICE"), ds.add_new(0x50003000, "OW", MARKER.encode())),
    "Q full-face photographs": lambda ds: (
        setattr(ds, "PatientIdentityRemoved", "NO"),
        setattr(ds, "DerivationDescription", f"photo of {MARKER}")),
    "R any other unique number or code": lambda ds: (
        setattr(ds, "AccessionNumber", MARKER), setattr(ds, "StudyID", MARKER[:16]),
        ds.private_block(0x0011, "ACME", create=True).add_new(0x01, "LO", MARKER)),
}


def test_every_one_of_the_eighteen_kinds_has_a_case() -> None:
    assert len(IDENTIFIER_KINDS) == 18
    assert [k.split()[0] for k in IDENTIFIER_KINDS] == list("ABCDEFGHIJKLMNOPQR")


@pytest.mark.parametrize("kind", list(IDENTIFIER_KINDS))
def test_each_identifier_kind_is_gone(kind: str, tmp_path: Path) -> None:
    ds = _instance()
    IDENTIFIER_KINDS[kind](ds)
    planted = tmp_path / "planted.dcm"
    ds.save_as(planted, enforce_file_format=True)
    assert MARKER.encode() in planted.read_bytes()
    _, data = _run(ds, tmp_path)
    assert MARKER.encode() not in data
    assert MARKER.lower().encode() not in data.lower()


def test_full_face_photographs_are_flagged_for_review(tmp_path: Path) -> None:
    # (Q) lives in pixels, which the profile does not read: the output says it needs eyes.
    ds = _instance()
    ds.Modality = "XC"  # external-camera photography
    source = tmp_path / "photo.dcm"
    ds.save_as(source, enforce_file_format=True)
    result = Anonymizer(parse_config({"profile": "safe-harbor"}, secret=SECRET),
                        today=TODAY).anonymize_file(source, tmp_path / "out.dcm")
    assert any("XC" in flag for flag in result.flags)


def test_dates_keep_their_year_only_as_whole_dates(tmp_path: Path) -> None:
    ds = _instance()
    ds.StudyDate, ds.ContentDate = "20190713", "20191231"
    ds.AcquisitionDateTime = "20190713101530.25+0100"
    ds.InstanceCreationDate = "20200101"
    out, _ = _run(ds, tmp_path)
    assert (out.StudyDate, out.ContentDate) == ("20190101", "20190101")
    assert out.AcquisitionDateTime == "20190101"  # DT: the same whole date, no time
    assert out.InstanceCreationDate == "20200101"
    assert "StudyTime" not in out or not out.StudyTime  # times go, as in the Basic Profile
    assert out.LongitudinalTemporalInformationModified == "REMOVED"


@pytest.mark.parametrize(("age", "expected"), [
    ("093Y", "090Y"), ("090Y", "090Y"), ("089Y", "089Y"), ("045Y", "045Y"), ("006M", "006M"),
])
def test_ages_over_89_are_one_category_and_the_others_stay(tmp_path: Path, age: str,
                                                           expected: str) -> None:
    ds = _instance()
    ds.PatientAge = age
    out, _ = _run(ds, tmp_path)
    assert out.PatientAge == expected
    assert out.PatientSex == ds.PatientSex  # sex is not one of the 18 identifiers


def test_the_birth_year_goes_when_it_shows_an_age_over_89(tmp_path: Path) -> None:
    ds = _instance()
    ds.PatientBirthDate = "19300301"  # 96 on TODAY
    out, _ = _run(ds, tmp_path)
    assert out.PatientBirthDate == ""  # Type 2: present, empty
    ds.PatientBirthDate = "19700615"
    out, _ = _run(ds, tmp_path)
    assert out.PatientBirthDate == "19700101"


def test_a_missing_age_is_computed_from_the_birth_date_and_the_study_date(
        tmp_path: Path) -> None:
    ds = _instance()
    del ds.PatientAge
    ds.PatientBirthDate, ds.StudyDate = "19700615", "20150614"  # the day before 45
    out, _ = _run(ds, tmp_path)
    assert out.PatientAge == "044Y"
    ds.StudyDate = "20150615"
    out, _ = _run(ds, tmp_path)
    assert out.PatientAge == "045Y"
    ds.PatientBirthDate = "19200101"  # 95 at the study: one category
    out, _ = _run(ds, tmp_path)
    assert out.PatientAge == "090Y"


@pytest.mark.parametrize(("age", "size", "expected"), [
    ("045Y", 5, "045Y"), ("049Y", 5, "045Y"), ("050Y", 5, "050Y"), ("037Y", 10, "030Y"),
    ("089Y", 5, "085Y"), ("093Y", 5, "090Y"), ("011M", 5, "000Y"),
])
def test_age_brackets(tmp_path: Path, age: str, size: int, expected: str) -> None:
    ds = _instance()
    ds.PatientAge = age
    out, _ = _run(ds, tmp_path, ageBrackets=size)
    assert out.PatientAge == expected


def test_computed_ages_follow_the_calendar() -> None:
    # PS3.5 AS: nnnD, nnnW, nnnM or nnnY; whole units elapsed.
    assert age_at("20000229", "20010228") == "011M"
    assert age_at("20000229", "20010301") == "001Y"
    assert age_at("20240110", "20240111") == "001D"
    assert age_at("20240110", "20240109") is None
    assert age_at("2024", "20240109") is None


def test_the_command_line_takes_the_profile_and_the_brackets(tmp_path: Path) -> None:
    ds = _instance()
    ds.PatientAge, ds.StudyDate = "047Y", "20190713"
    source = tmp_path / "in.dcm"
    ds.save_as(source, enforce_file_format=True)
    target = tmp_path / "out.dcm"
    (tmp_path / "key").write_text(SECRET)
    result = CliRunner().invoke(main, ["-i", str(source), "-o", str(target), "--profile",
                                       "safe-harbor", "--age-brackets", "5", "--key-file",
                                       str(tmp_path / "key")])
    assert result.exit_code == 0, result.output
    out = dcmread(target)
    assert (out.PatientAge, out.StudyDate) == ("045Y", "20190101")
    assert "safe-harbor" in out.DeidentificationMethod


def test_research_computes_a_missing_age_too_and_basic_does_not(tmp_path: Path) -> None:
    # Retain Patient Characteristics keeps PatientAge (K) and empties the birth date (Z).
    ds = _instance()
    del ds.PatientAge
    ds.PatientBirthDate, ds.StudyDate = "19700615", "20150615"
    out, _ = _run(ds, tmp_path, profile="research")
    assert (out.PatientAge, out.PatientBirthDate) == ("045Y", "")
    out, _ = _run(ds, tmp_path, profile="basic")
    assert "PatientAge" not in out
