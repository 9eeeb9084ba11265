"""Golden values: every keyed output, for a fixed key and fixed inputs, written as literals.

dcmanon derives pseudonyms, UIDs, hashes and date offsets from a key and nothing else (HMAC-SHA256,
and the reference's dateShift algorithm): no table, no state. That is what lets a trial
de-identify new data next year and still link it to the data it de-identified this year. It
also means that any change to a derivation (a namespace, the message layout, a truncation
length, the purpose a method's key is derived for) silently breaks that link, while every test
that only checks consistency *within* a run stays green.

These values must never change within a major version. A change to any of them is a breaking
release: data de-identified by an earlier release would no longer link to new outputs. Do not
"update the goldens" to make a change pass; if a derivation really must change, that is a new
major version, and the release notes must say that earlier outputs no longer link.

Everything here is reproducible on any day and any machine: the date the 89-year rule is
measured against is fixed (``TODAY``), the inputs are built here (no factory whose defaults
could drift). Every value is synthetic, and the tests print none.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from dcmanon import Anonymizer, cli, parse_config
from dcmanon.config.loader import KEYED_METHODS
from dcmanon.keys import (
    derive_text_key,
    keyed_uid,
    patient_date_offset,
    patient_pseudonym,
    reference_date_shift,
)

SECRET = "dcmanon-golden-secret"
"""The project secret (``--key-file`` / ``DCMANON_KEY``) of every end-to-end case."""
TODAY = dt.date(2026, 1, 15)
"""The date the 89-year rule is measured against: fixed, so the outputs never depend on when
the test runs (the birth date below is 73 years old on this day, so it is shifted, not
dropped)."""

# --- the inputs ---------------------------------------------------------------------------

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_UID = "1.2.826.0.1.3680043.8.498.1001"
SERIES_UID = "1.2.826.0.1.3680043.8.498.1001.1"
SOP_UID = "1.2.826.0.1.3680043.8.498.1001.1.1.1"
REFERENCED_SOP_UID = "1.2.826.0.1.3680043.8.498.1001.1.1.2"
FRAME_OF_REFERENCE_UID = "1.2.826.0.1.3680043.8.498.1001.9"
PATIENT_ID = "MRN-0001"
PATIENT_NAME = "Müller^Jürgen"


def make_instance(patient_id: str | None = PATIENT_ID,
                  patient_name: str = PATIENT_NAME) -> FileDataset:
    """One CT instance (UTF-8), with identifiers, dates and a nested reference."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE)
    meta.MediaStorageSOPInstanceUID = UID(SOP_UID)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("golden.dcm", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = SOP_UID
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = SERIES_UID
    ds.FrameOfReferenceUID = FRAME_OF_REFERENCE_UID
    if patient_id is not None:
        ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19520314"
    ds.PatientSex = "M"
    ds.PatientAge = "072Y"
    ds.StudyDate = "20240115"
    ds.SeriesDate = "20240115"
    ds.ContentDate = "20240116"
    ds.AcquisitionDateTime = "20240115093000.123456"
    ds.StudyTime = "093000"
    ds.AccessionNumber = "ACC123456"
    ds.Modality = "CT"
    ds.ImageComments = "Kontrolle in 6 Monaten – Größe notiert"
    reference = Dataset()
    reference.ReferencedSOPClassUID = CT_IMAGE_STORAGE
    reference.ReferencedSOPInstanceUID = REFERENCED_SOP_UID
    ds.ReferencedImageSequence = [reference]
    return ds


def anonymize(tmp_path: Path, config: dict[str, Any], *, fast_path: bool,
              secret: str | None = SECRET, instance: FileDataset | None = None) -> Dataset:
    """Write the instance, anonymize the file through the public API, read the output."""
    source, target = tmp_path / "in.dcm", tmp_path / "out.dcm"
    (instance or make_instance()).save_as(source, enforce_file_format=True)
    anonymizer = Anonymizer(parse_config(config, secret=secret), today=TODAY,
                            fast_path=fast_path)
    result = anonymizer.anonymize_file(source, target)
    assert result.status == "done", result.error
    return pydicom.dcmread(target)


BOTH_PATHS = pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "pydicom"])
"""Plain files take a byte-level path; every golden holds on both."""


# --- dcmanon.keys, directly ---------------------------------------------------------------

DERIVED_KEYS = {
    "cryptoHash": "52ce03f5376c7abbaf0190c8a4e6f944",
    "dateShift": "f790ea2bbb7afe09f1461067dd6116e8",
    "encrypt": "459e725e64446ef279f415516a16cfef",
    "refreshUID": "6e9a19bd63f159d00e99646d6d345ff3",
    "patient": "422efa8ff4b715a8f0f614085bc0d4fd",
}
"""``derive_text_key(SECRET, purpose)`` for every purpose the configuration loader derives a key
for: each keyed method (by its name) and the profile's patient pseudonyms and date offsets."""


def test_every_purpose_the_loader_derives_a_key_for_has_a_golden() -> None:
    # A keyed method added later must get its golden here too.
    assert {method.value for method in KEYED_METHODS} | {"patient"} == set(DERIVED_KEYS)


@pytest.mark.parametrize(("purpose", "expected"), DERIVED_KEYS.items())
def test_derive_text_key(purpose: str, expected: str) -> None:
    assert derive_text_key(SECRET, purpose) == expected


def test_derive_text_key_from_a_non_ascii_secret() -> None:
    assert derive_text_key("clé-secrète-✓", "patient") == "c514cfc1250e76c242b76909bdab5c0f"


@pytest.mark.parametrize(("key", "original", "expected"), [
    ("golden-uid-key", STUDY_UID, "2.25.100880013911764801644706398910786363569"),
    ("golden-uid-key", SOP_UID, "2.25.241057393151400542080730777512296269098"),
    ("golden-uid-key", "1.2.3", "2.25.110326548413719188183444239880863387383"),
    ("golden-uid-key", CT_IMAGE_STORAGE, "2.25.112968790000457232218901142924848165298"),
    ("golden-uid-key", "1.2.3.ü", "2.25.155573539676420828294478989368421998742"),
    ("clé-✓", "1.2.3.4.5", "2.25.204395769853620607980508871094089820067"),
    (DERIVED_KEYS["refreshUID"], STUDY_UID, "2.25.223897002345496575294735416900616259263"),
])
def test_keyed_uid(key: str, original: str, expected: str) -> None:
    assert keyed_uid(key, original) == expected


@pytest.mark.parametrize(("key", "patient_id", "prefix", "expected"), [
    ("golden-patient-key", "MRN-0001", None, "ANON-L3E4DM7M5J"),
    ("golden-patient-key", "MRN-0002", None, "ANON-NHGHCNWJBP"),
    ("golden-patient-key", "Müller^Jürgen", None, "ANON-W7YHTH3IHZ"),
    ("golden-patient-key", "山田^太郎", None, "ANON-RRUIGA3CM3"),
    ("clé-✓", "MRN-0001", None, "ANON-I3ICZQFEYB"),
    ("golden-patient-key", "MRN-0001", "TRIAL7-", "TRIAL7-L3E4DM7M5J"),
    ("golden-patient-key", "Müller^Jürgen", "", "W7YHTH3IHZ"),
])
def test_patient_pseudonym(key: str, patient_id: str, prefix: str | None,
                           expected: str) -> None:
    if prefix is None:  # the default prefix, as the profile uses it
        assert patient_pseudonym(key, patient_id) == expected
    else:
        assert patient_pseudonym(key, patient_id, prefix) == expected


@pytest.mark.parametrize(("key", "patient_id", "range_days", "expected"), [
    ("golden-patient-key", "MRN-0001", None, 337),
    ("golden-patient-key", "MRN-0002", None, -135),
    ("golden-patient-key", "MRN-0003", None, -363),
    ("golden-patient-key", "Müller^Jürgen", None, -75),
    ("golden-patient-key", "山田^太郎", None, 270),
    ("clé-✓", "MRN-0001", None, 225),
    ("golden-patient-key", "MRN-0001", 30, 22),
    ("golden-patient-key", "MRN-0002", 1, -1),
])
def test_patient_date_offset(key: str, patient_id: str, range_days: int | None,
                             expected: int) -> None:
    if range_days is None:  # the default range, as the profile uses it
        assert patient_date_offset(key, patient_id) == expected
    else:
        assert patient_date_offset(key, patient_id, range_days) == expected


@pytest.mark.parametrize(("prefix", "key", "day_range", "expected"), [
    (STUDY_UID, "golden-date-key", 50, 9),
    (SERIES_UID, "golden-date-key", 50, 39),
    (SOP_UID, "golden-date-key", 50, -23),
    (SOP_UID, "golden-date-key", 365, -232),
    ("", "golden-date-key", 50, -9),
    (STUDY_UID, "clé-de-dates-✓", 50, 28),
    ("Ünïcode-präfix", "golden-date-key", 7, 3),
])
def test_reference_date_shift(prefix: str, key: str, day_range: int, expected: int) -> None:
    assert reference_date_shift(prefix, key, day_range) == expected


# --- end to end: the default profile (PS3.15 Basic), keys from the project secret ---------

PSEUDONYM = "ANON-KLV4Z6SXIK"
"""The pseudonym of PATIENT_ID under SECRET."""
BASIC_UIDS = {
    "StudyInstanceUID": "2.25.223897002345496575294735416900616259263",
    "SeriesInstanceUID": "2.25.303362360292423957920230037421801655526",
    "SOPInstanceUID": "2.25.314114330438896508297712897616751687363",
    "FrameOfReferenceUID": "2.25.216669721784627824000004025928539806334",
}
BASIC_REFERENCED_SOP_UID = "2.25.333064479234817536864164764678585272925"


@BOTH_PATHS
def test_basic_profile_pseudonym_and_uids(tmp_path: Path, fast_path: bool) -> None:
    out = anonymize(tmp_path, {"profile": "basic"}, fast_path=fast_path)
    assert (out.PatientID, str(out.PatientName)) == (PSEUDONYM, PSEUDONYM)
    assert {keyword: out[keyword].value for keyword in BASIC_UIDS} == BASIC_UIDS
    reference = out.ReferencedImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == BASIC_REFERENCED_SOP_UID
    assert out.file_meta.MediaStorageSOPInstanceUID == BASIC_UIDS["SOPInstanceUID"]


@BOTH_PATHS
def test_safe_harbor_trial_subject_id_computed_age_and_years(tmp_path: Path,
                                                             fast_path: bool) -> None:
    # The subject ID defaults to the pseudonym; the age is computed (born 1952-03-14, studied
    # 2024-01-15: 71 whole years); dates keep their year. Trials rely on all three.
    instance = make_instance()
    del instance.PatientAge
    out = anonymize(tmp_path, {"profile": "safe-harbor", "clinicalTrial": {
        "sponsorName": "Acme", "protocolID": "P-1"}}, fast_path=fast_path, instance=instance)
    assert (out.PatientID, out.ClinicalTrialSubjectID) == (PSEUDONYM, PSEUDONYM)
    assert out.PatientAge == "071Y"
    assert (out.PatientBirthDate, out.StudyDate, out.AcquisitionDateTime) == (
        "19520101", "20240101", "20240101")
    assert {keyword: out[keyword].value for keyword in BASIC_UIDS} == BASIC_UIDS


@BOTH_PATHS
def test_basic_profile_with_a_pseudonym_prefix(tmp_path: Path, fast_path: bool) -> None:
    out = anonymize(tmp_path, {"profile": "basic", "pseudonymPrefix": "TRIAL7-"},
                    fast_path=fast_path)
    assert (out.PatientID, str(out.PatientName)) == ("TRIAL7-KLV4Z6SXIK", "TRIAL7-KLV4Z6SXIK")


@BOTH_PATHS
def test_basic_profile_without_patient_id_keys_the_pseudonym_by_name(
        tmp_path: Path, fast_path: bool) -> None:
    out = anonymize(tmp_path, {"profile": "basic"}, fast_path=fast_path,
                    instance=make_instance(patient_id=None))
    assert "PatientID" not in out
    assert str(out.PatientName) == "ANON-ERFSEIFZLZ"


# --- end to end: modified dates (one keyed offset per patient) ----------------------------

MODIFIED_DATES = {
    # MRN-0001: 196 days earlier; MRN-0003: 275 days later (time of day kept).
    "MRN-0001": {"PatientID": PSEUDONYM, "StudyDate": "20230703", "SeriesDate": "20230703",
                 "ContentDate": "20230704", "AcquisitionDateTime": "20230703093000.123456"},
    "MRN-0003": {"PatientID": "ANON-NQU7L254EP", "StudyDate": "20241016",
                 "SeriesDate": "20241016", "ContentDate": "20241017",
                 "AcquisitionDateTime": "20241016093000.123456"},
}


@BOTH_PATHS
@pytest.mark.parametrize("config", [
    {"profile": "research"},
    {"profile": "basic", "options": ["retain-longitudinal-modified-dates"]},
], ids=["research", "basic+modified-dates"])
@pytest.mark.parametrize("patient_id", sorted(MODIFIED_DATES))
def test_modified_dates_per_patient(tmp_path: Path, fast_path: bool, config: dict[str, Any],
                                    patient_id: str) -> None:
    out = anonymize(tmp_path, config, fast_path=fast_path,
                    instance=make_instance(patient_id=patient_id))
    expected = MODIFIED_DATES[patient_id]
    assert {keyword: out[keyword].value for keyword in expected} == expected


# --- end to end: Microsoft-format rules ----------------------------------------------------

RULES: list[dict[str, Any]] = [
    {"tag": "PatientID", "method": "cryptoHash"},
    {"tag": "PatientName", "method": "cryptoHash"},
    {"tag": "AccessionNumber", "method": "cryptoHash",
     "params": {"matchInputStringLength": True}},
    {"tag": "ImageComments", "method": "cryptoHash", "params": {"cryptoHashType": "Sha512"}},
    {"tag": "StudyDate", "method": "dateShift", "params": {"dateShiftScope": "StudyInstance"}},
    {"tag": "SeriesDate", "method": "dateShift",
     "params": {"dateShiftScope": "SeriesInstance"}},
    {"tag": "ContentDate", "method": "dateShift", "params": {"dateShiftScope": "SopInstance"}},
    {"tag": "PatientBirthDate", "method": "dateShift"},  # the default scope: SopInstance
    {"tag": "AcquisitionDateTime", "method": "dateShift",
     "params": {"dateShiftScope": "StudyInstance", "dateShiftRange": 365}},
    {"tag": "StudyInstanceUID", "method": "refreshUID"},
    {"tag": "SeriesInstanceUID", "method": "refreshUID"},
    {"tag": "SOPInstanceUID", "method": "refreshUID"},
    {"tag": "ReferencedSOPInstanceUID", "method": "refreshUID"},
]
PARAMETERS = {"cryptoHashKey": "golden-hash-key", "dateShiftKey": "clé-de-dates-✓",
              "refreshUIDKey": "golden-uid-key"}

RULE_OUTPUTS = {
    # Keys from the "parameters" section (they win over the project secret, also given).
    "parameters": {
        "PatientID": "0b31556f08eb358077f0fdfcbf44b235d4a825d7a39225cd823018a0b3359c14",
        "PatientName": "26cada19f0d534d3eb73b9c54a3ce5d19550f536bf1eabc51becc4380049cd70",
        "AccessionNumber": "376072608",
        "ImageComments": "0afd7cb0a71793d6f4ba5dc186146cf761e271700b088bf3828301fe6aaff648"
                         "cb552cde96d157bcc491d26f7de6132e09f450c6a85c8cced72cd66059e9d1e1",
        "StudyDate": "20240212",
        "SeriesDate": "20231206",
        "ContentDate": "20240129",
        "PatientBirthDate": "19520327",
        "AcquisitionDateTime": "20231207000000.000000",
        "StudyInstanceUID": "2.25.100880013911764801644706398910786363569",
        "SeriesInstanceUID": "2.25.58938383305409201673088251447578809467",
        "SOPInstanceUID": "2.25.241057393151400542080730777512296269098",
        "ReferencedSOPInstanceUID": "2.25.243539887749694053657218128541189368087",
    },
    # No key in the configuration: each method's key is derived from the project secret.
    "secret": {
        "PatientID": "c8ca128aaf427df6308df92c6f903a19c1b4392e64f18472de56c87c94794098",
        "PatientName": "4ea1df40d7fa29171348c79d199c32577b846df29c61de21cde4940bd1218fd0",
        "AccessionNumber": "774217088",
        "ImageComments": "3921ea6e7960bf74901af1c2bcc9db5059f9e9cef375a397373d6f9595db75c0"
                         "d0501d711377a74a16e90e07f3ac22276d5164900a514dd565a70e809a07ab0d",
        "StudyDate": "20231209",
        "SeriesDate": "20240205",
        "ContentDate": "20231202",
        "PatientBirthDate": "19520129",
        "AcquisitionDateTime": "20241124000000.000000",
        "StudyInstanceUID": "2.25.223897002345496575294735416900616259263",
        "SeriesInstanceUID": "2.25.303362360292423957920230037421801655526",
        "SOPInstanceUID": "2.25.314114330438896508297712897616751687363",
        "ReferencedSOPInstanceUID": "2.25.333064479234817536864164764678585272925",
    },
}


def _rule_outputs(out: Dataset) -> dict[str, str]:
    found = {keyword: str(out[keyword].value) for keyword in RULE_OUTPUTS["secret"]
             if keyword != "ReferencedSOPInstanceUID"}
    found["ReferencedSOPInstanceUID"] = str(
        out.ReferencedImageSequence[0].ReferencedSOPInstanceUID)
    return found


@BOTH_PATHS
@pytest.mark.parametrize("keys", sorted(RULE_OUTPUTS))
def test_rules_crypto_hash_date_shift_and_refresh_uid(tmp_path: Path, fast_path: bool,
                                                      keys: str) -> None:
    config: dict[str, Any] = {"rules": RULES}
    if keys == "parameters":
        config["parameters"] = PARAMETERS
    out = anonymize(tmp_path, config, fast_path=fast_path)
    assert _rule_outputs(out) == RULE_OUTPUTS[keys]
    assert out.file_meta.MediaStorageSOPInstanceUID == RULE_OUTPUTS[keys]["SOPInstanceUID"]


# --- encrypt: what an earlier release encrypted with the project secret still decrypts ----

ENCRYPTED_COMMENT = "3/u1UkFOKipqmydLWgTFKB1RQEe6W9kJxQA2uTxQxBdnYOuDsPkIp4XN9/yQYrWM"
"""PatientComments ``Allergie: Pénicilline`` encrypted (AES key derived from SECRET for
``encrypt``; its random IV makes every encryption differ, so what is pinned is that this one
decrypts)."""


def test_a_value_encrypted_with_the_project_secret_decrypts(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rules": [{"tag": "PatientComments", "method": "encrypt"}]}))
    key_file = tmp_path / "project.key"
    key_file.write_text(SECRET + "\n")
    instance = make_instance()
    instance.PatientComments = ENCRYPTED_COMMENT
    instance.save_as(tmp_path / "in.dcm", enforce_file_format=True)
    result = CliRunner().invoke(cli.main, [
        "decrypt", "-i", str(tmp_path / "in.dcm"), "-o", str(tmp_path / "out.dcm"),
        "-c", str(config), "--key-file", str(key_file)], env={"DCMANON_KEY": None})
    assert result.exit_code == 0, result.stderr
    assert pydicom.dcmread(tmp_path / "out.dcm").PatientComments == "Allergie: Pénicilline"


# --- separate processes --------------------------------------------------------------------

CHILD = """
import datetime, json, sys
from dcmanon import Anonymizer, parse_config
config = parse_config(json.loads(sys.argv[1]))  # the secret: $DCMANON_KEY
anonymizer = Anonymizer(config, today=datetime.date.fromisoformat(sys.argv[2]))
result = anonymizer.anonymize_file(sys.argv[3], sys.argv[4])
sys.exit(0 if result.status == "done" else f"{result.error_class}: {result.error}")
"""
EVERY_KEY = {"profile": "research", "rules": [
    {"tag": "AccessionNumber", "method": "cryptoHash",
     "params": {"matchInputStringLength": True}},
    {"tag": "ContentDate", "method": "dateShift", "params": {"dateShiftScope": "SopInstance"}},
    {"tag": "ReferencedSOPInstanceUID", "method": "refreshUID"},
]}
"""Every derivation at once: per-method keys for the rules, the profile's UID key and patient
key (pseudonym, modified dates) for the rest."""


def test_the_same_secret_gives_the_same_file_in_separate_processes(tmp_path: Path) -> None:
    """Each process derives every key from the secret afresh (nothing is handed over, unlike
    batch workers, which receive the parent's configuration), under its own hash seed."""
    source = tmp_path / "in.dcm"
    make_instance().save_as(source, enforce_file_format=True)
    here = tmp_path / "here.dcm"
    result = Anonymizer(parse_config(EVERY_KEY, secret=SECRET),
                        today=TODAY).anonymize_file(source, here)
    assert result.status == "done", result.error
    for seed in ("0", "4242"):
        there = tmp_path / f"process-{seed}.dcm"
        env = {**os.environ, "DCMANON_KEY": SECRET, "PYTHONHASHSEED": seed}
        child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(EVERY_KEY),
                                TODAY.isoformat(), str(source), str(there)],
                               capture_output=True, text=True, env=env, check=False,
                               timeout=300)
        assert child.returncode == 0, child.stderr
        assert there.read_bytes() == here.read_bytes()
    out = pydicom.dcmread(here)  # the file all processes agree on holds the goldens
    assert (out.PatientID, out.StudyDate) == (PSEUDONYM, MODIFIED_DATES[PATIENT_ID]["StudyDate"])
    assert out.StudyInstanceUID == BASIC_UIDS["StudyInstanceUID"]
    assert {keyword: str(out[keyword].value) for keyword in ("AccessionNumber", "ContentDate")
            } == {keyword: RULE_OUTPUTS["secret"][keyword]
                  for keyword in ("AccessionNumber", "ContentDate")}
    reference = out.ReferencedImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == RULE_OUTPUTS["secret"]["ReferencedSOPInstanceUID"]
