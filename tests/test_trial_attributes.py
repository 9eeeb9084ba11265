"""The ``clinicalTrial`` section: PS3.3 Clinical Trial Subject (C.7.1.3), Study (C.7.2.3) and
Series (C.7.3.2) attributes on every output, after the profile (which would remove them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.uid import ImplicitVRLittleEndian

from dcmanon import Anonymizer, parse_config
from dcmanon.errors import ConfigError
from dcmanon.testing import make_instance, make_patient

TODAY = dt.date(2026, 11, 22)
SECRET = "trial-attributes-secret-of-32-characters-or-more"
TRIAL = {"sponsorName": "Acme Pharma", "protocolID": "ACME-301", "protocolName": "Lung 301",
         "siteID": "S07", "siteName": "Site Seven", "timePointID": "BASELINE",
         "timePointDescription": "before the first dose", "coordinatingCenterName": "CRO One"}
# PS3.3: (keyword, tag, Type) of the modules' attributes dcmanon writes.
MODULE_ATTRIBUTES = [
    ("ClinicalTrialSponsorName", 0x00120010, "1"), ("ClinicalTrialProtocolID", 0x00120020, "1"),
    ("ClinicalTrialProtocolName", 0x00120021, "2"), ("ClinicalTrialSiteID", 0x00120030, "2"),
    ("ClinicalTrialSiteName", 0x00120031, "2"), ("ClinicalTrialSubjectID", 0x00120040, "1C"),
    ("ClinicalTrialTimePointID", 0x00120050, "2"),
    ("ClinicalTrialCoordinatingCenterName", 0x00120060, "2"),
]


def _anonymize(tmp_path: Path, settings: dict[str, object], fast: bool = True,
               implicit: bool = False) -> Any:
    source, target = tmp_path / "in.dcm", tmp_path / f"out-{fast}.dcm"
    ds = make_instance(make_patient(6, seed=2), seed=2)
    ds.ClinicalTrialSponsorName = "an input value the profile removes"
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(source, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    result = Anonymizer(parse_config(settings, secret=SECRET), today=TODAY,
                        fast_path=fast).anonymize_file(source, target)
    assert result.status == "done", result.error
    return dcmread(target)


@pytest.mark.parametrize("profile", ["basic", "safe-harbor", "research"])
def test_every_output_carries_the_trial_attributes(tmp_path: Path, profile: str) -> None:
    out = _anonymize(tmp_path, {"profile": profile, "clinicalTrial": TRIAL})
    for keyword, tag, type_ in MODULE_ATTRIBUTES:
        assert tag in out, keyword
        if type_ == "1":
            assert str(out[tag].value)
    assert out.ClinicalTrialSponsorName == "Acme Pharma"
    assert out.ClinicalTrialTimePointDescription == "before the first dose"
    # The subject ID defaults to the patient's identifier in the output.
    assert out.ClinicalTrialSubjectID == out.PatientID != ""


def test_the_subject_id_defaults_to_the_table_replacement(tmp_path: Path) -> None:
    patient = make_patient(6, seed=2)
    table = tmp_path / "t.csv"
    table.write_text(f"keyword,original,replacement\nPatientID,{patient.patient_id},S-0001\n")
    out = _anonymize(tmp_path, {"profile": "basic", "clinicalTrial": TRIAL,
                                "lookup": str(table)})
    assert out.ClinicalTrialSubjectID == "S-0001"


def test_a_given_subject_id_wins_and_type_2_attributes_are_written_empty(
        tmp_path: Path) -> None:
    out = _anonymize(tmp_path, {"profile": "basic", "clinicalTrial": {
        "sponsorName": "Acme", "protocolID": "P1", "subjectID": "SUBJ-9"}})
    assert out.ClinicalTrialSubjectID == "SUBJ-9"
    assert out.ClinicalTrialSiteID == ""
    assert "ClinicalTrialTimePointDescription" not in out


@pytest.mark.parametrize("implicit", [False, True])
def test_both_paths_write_the_same_file(tmp_path: Path, implicit: bool) -> None:
    settings = {"profile": "basic", "clinicalTrial": TRIAL}
    _anonymize(tmp_path, settings, fast=True, implicit=implicit)
    _anonymize(tmp_path, settings, fast=False, implicit=implicit)
    assert (tmp_path / "out-True.dcm").read_bytes() == (tmp_path / "out-False.dcm").read_bytes()
    fast = Anonymizer(parse_config(settings, secret=SECRET), today=TODAY)._fast
    assert fast is not None
    fast.anonymize(str(tmp_path / "in.dcm"))  # taken by the fast path (NotPlain otherwise)


@pytest.mark.parametrize(("section", "location", "what"), [
    ({"protocolID": "P1"}, "clinicalTrial.sponsorName", "missing"),
    ({"sponsorName": "", "protocolID": "P1"}, "clinicalTrial.sponsorName", "empty"),
    ({"sponsorName": "A", "protocolID": "P1", "siteId": "x" * 65}, "clinicalTrial.siteId",
     "longer than 64"),
    ({"sponsorName": "A", "protocolID": "P1", "sponsor": "B"}, "clinicalTrial.sponsor",
     "unknown field"),
    ("Acme", "clinicalTrial", "must be an object"),
])
def test_a_wrong_section_is_refused(section: object, location: str, what: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"profile": "basic", "clinicalTrial": section})
    assert any(p.location == location and what in p.message for p in caught.value.problems), \
        caught.value.problems


def test_the_worked_example_of_the_docs_runs(tmp_path: Path) -> None:
    import re

    from click.testing import CliRunner

    from dcmanon.cli import main

    page = (Path(__file__).parents[1] / "docs" / "trials.md").read_text(encoding="utf-8")
    (tmp_path / "subjects.csv").write_text(re.search(r"```csv\n(.*?)```", page, re.S)[1])
    (tmp_path / "trial.json").write_text(re.search(r"```jsonc\n(.*?)```", page, re.S)[1])
    ds = make_instance(make_patient(6, seed=2), seed=2)
    ds.PatientID, ds.PatientAge = "MRN00412", "047Y"
    inputs = tmp_path / "in"
    inputs.mkdir()
    ds.save_as(inputs / "a.dcm", enforce_file_format=True)
    (tmp_path / "key").write_text(SECRET)
    result = CliRunner().invoke(main, ["-I", str(inputs), "-O", str(tmp_path / "out"), "-c",
                                       str(tmp_path / "trial.json"), "--key-file",
                                       str(tmp_path / "key"), "--age-brackets", "5"])
    assert result.exit_code == 0, result.output
    out = dcmread(tmp_path / "out" / "a.dcm")
    assert out.PatientID == out.ClinicalTrialSubjectID == "301-07-001"
    assert (out.ClinicalTrialProtocolID, out.ClinicalTrialSiteID) == ("ACME-301", "07")
    assert out.PatientAge == "045Y"
    assert out.StudyDate.endswith("0101")
