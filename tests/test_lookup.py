"""Subject tables (``--lookup``): the trial's replacements at every depth and in kept text;
patients the table does not list fail, or get the keyed pseudonym when asked; a broken table
is refused before any file is read, naming the line and never a value."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom import dcmread
from pydicom.dataset import Dataset

from dcmanon import Anonymizer, parse_config
from dcmanon.cli import main
from dcmanon.config.lookup import load_subject_table, parse_subject_table
from dcmanon.errors import ConfigError
from dcmanon.testing import FakePatient, make_instance, make_patient

TODAY = dt.date(2026, 11, 22)
SECRET = "lookup-test-secret-of-more-than-32-characters"
LISTED, UNLISTED = make_patient(1, seed=5), make_patient(2, seed=5)
SUBJECT = "TRIAL-0042"
KEEP_NESTED = [  # so that the nested copies reach the output, where the table must reach them
    {"tag": "OtherPatientIDsSequence", "method": "keep"},
    {"tag": "RequestAttributesSequence", "method": "keep"},
    {"tag": "ImageComments", "method": "keep"},
]


def _table(tmp_path: Path, patient: FakePatient = LISTED) -> Path:
    accession = str(make_instance(patient, seed=5).AccessionNumber)
    path = tmp_path / "subjects.csv"
    path.write_text("keyword,original,replacement\n"
                    f"PatientID,{patient.patient_id},{SUBJECT}\n"
                    f"PatientID,{patient.other_patient_id},{SUBJECT}-B\n"
                    f"AccessionNumber,{accession},ACC-42-1\n", encoding="utf-8")
    return path


def _texts(ds: Dataset) -> list[str]:
    """Every text value of a dataset, at every depth."""
    found: list[str] = []
    for element in ds.iterall():
        if element.VR not in ("SQ", "OB", "OW", "UN") and element.value is not None:
            found.append(str(element.value))
    return found


def _write_inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, patient in (("listed", LISTED), ("unlisted", UNLISTED)):
        make_instance(patient, seed=5).save_as(folder / f"{name}.dcm", enforce_file_format=True)
    return folder


def _cli(tmp_path: Path, *extra: str) -> tuple[int, str, Path]:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"profile": "basic", "rules": KEEP_NESTED}))
    key = tmp_path / "key"
    key.write_text(SECRET)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["-I", str(_write_inputs(tmp_path)), "-O", str(out),
                                       "-c", str(config), "--key-file", str(key),
                                       "--lookup", str(_table(tmp_path)), *extra])
    return result.exit_code, result.output, out


def test_listed_patients_carry_their_subject_ids_at_every_depth_and_in_kept_text(
        tmp_path: Path) -> None:
    code, output, out = _cli(tmp_path)
    assert code == 1, output  # the unlisted patient failed
    ds = dcmread(out / "listed.dcm")
    assert ds.PatientID == SUBJECT
    assert ds.OtherPatientIDsSequence[0].PatientID == f"{SUBJECT}-B"
    assert ds.RequestAttributesSequence[0].AccessionNumber == "ACC-42-1"
    assert f"MRN {SUBJECT})" in ds.ImageComments  # the original's place, with the new ID
    texts = "\n".join(_texts(ds))
    for original in (LISTED.patient_id, LISTED.other_patient_id):
        assert original not in texts
        assert original.encode() not in (out / "listed.dcm").read_bytes()


def test_an_unlisted_patient_fails_with_a_reason_and_is_not_written(tmp_path: Path) -> None:
    code, output, out = _cli(tmp_path)
    assert code == 1
    assert not (out / "unlisted.dcm").exists()
    assert "unlisted.dcm" in output and "not in the subject table" in output
    for value in (UNLISTED.patient_id, LISTED.patient_id, SUBJECT):
        assert value not in output


def test_unlisted_patients_get_the_keyed_pseudonym_when_asked(tmp_path: Path) -> None:
    code, output, out = _cli(tmp_path, "--lookup-missing", "pseudonym")
    assert code == 0, output
    pseudonym = str(dcmread(out / "unlisted.dcm").PatientID)
    assert pseudonym.startswith("ANON-") and pseudonym != UNLISTED.patient_id
    assert dcmread(out / "listed.dcm").PatientID == SUBJECT


def test_the_error_class_is_lookup_missing(tmp_path: Path) -> None:
    source = tmp_path / "in.dcm"
    make_instance(UNLISTED, seed=5).save_as(source, enforce_file_format=True)
    config = parse_config({"profile": "basic", "lookup": str(_table(tmp_path))}, secret=SECRET)
    for fast in (True, False):
        result = Anonymizer(config, today=TODAY, fast_path=fast).anonymize_file(
            source, tmp_path / "out.dcm")
        assert (result.status, result.error_class) == ("failed", "LookupMissing")
        assert not (tmp_path / "out.dcm").exists()


def test_a_relative_table_in_the_configuration_is_read_beside_it(tmp_path: Path) -> None:
    _table(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"profile": "basic",
                                                      "lookup": "subjects.csv"}))
    from dcmanon import load_config

    config = load_config(tmp_path / "config.json", secret=SECRET)
    assert config.lookup is not None and config.lookup.rows == 3


@pytest.mark.parametrize(("text", "line", "what"), [
    ("original,keyword,replacement\nPatientID,A1,B1\n", "line 1", "header"),
    ("keyword,original,replacement\nPatientID,SECRET-1\n", "line 2", "2 fields"),
    ("keyword,original,replacement\nPatientID,SECRET-1,S1\nSECRET-2,SECRET-3,S2\n",
     "line 3", "not a DICOM keyword"),
    ("keyword,original,replacement\nPatientID,SECRET-1,S1\nPatientID,SECRET-1,S2\n",
     "line 3", "listed again"),
    ("keyword,original,replacement\nPatientID,SECRET-1,\n", "line 2", "empty"),
    ("keyword,original,replacement\nPatientID,SECRET-1," + "S" * 65 + "\n", "line 2",
     "does not fit"),
    ("keyword,original,replacement\nRows,SECRET-1,S1\n", "line 2", "not a text element"),
    ('keyword,original,replacement\nPatientID,"SECRET-1,S1\n', "line", "not CSV"),
])
def test_a_broken_table_names_the_line_and_never_a_value(tmp_path: Path, text: str, line: str,
                                                         what: str) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_subject_table(path)
    message = str(caught.value)
    assert str(path) in message and line in message and what in message, message
    assert "SECRET" not in message


def test_a_broken_table_is_a_configuration_error_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("keyword,original,replacement\nPatientID,SECRET-1\n")
    result = CliRunner().invoke(main, ["-I", str(_write_inputs(tmp_path)), "-O",
                                       str(tmp_path / "out"), "--lookup",
                                       str(tmp_path / "t.csv")])
    assert result.exit_code == 2
    assert "line 2" in result.output and "SECRET" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_table_compares_by_content_and_survives_pickling(tmp_path: Path) -> None:
    import pickle

    config = parse_config({"profile": "basic", "lookup": str(_table(tmp_path))}, secret=SECRET)
    anonymizer = Anonymizer(config, today=TODAY)
    copy = pickle.loads(pickle.dumps(anonymizer))
    assert copy.same_as(anonymizer)
    assert copy.config.lookup is not None
    assert copy.config.lookup.replacement(0x00100020, LISTED.patient_id) == SUBJECT


def test_many_rows_parse_into_lookups() -> None:
    rows = "".join(f"PatientID,MRN{n:08d},SUBJ-{n:06d}\n" for n in range(50_000))
    table = parse_subject_table("keyword,original,replacement\n" + rows)
    assert table.rows == 50_000
    assert table.replacement(0x00100020, "MRN00049999") == "SUBJ-049999"
    assert table.replacement(0x00100020, "MRN00050000") is None


@pytest.mark.parametrize("missing", ["pseudonym", "fail"])
def test_both_paths_write_the_same_bytes_with_a_table(tmp_path: Path, missing: str) -> None:
    from tests.test_fastpath import _inputs

    inputs = _inputs(tmp_path)
    first = dcmread(inputs[-1], stop_before_pixels=True)  # a synthetic patient's file
    originals = {"PatientID": ["MRN-PLANTED-77", make_patient(3, seed=7).patient_id,
                               make_patient(3, seed=7).other_patient_id],
                 "AccessionNumber": [str(first.get("AccessionNumber", "")) or "A"]}
    for path in inputs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # some test files are broken on purpose
            try:
                accession = dcmread(path, stop_before_pixels=True).get("AccessionNumber")
            except Exception:
                continue
        if accession:
            originals["AccessionNumber"].append(str(accession))
    originals["IssuerOfPatientID"] = ["FAKE GENERAL MRN"]  # removed by the profile, unlisted
    rows = [f"{k},{v},NEW-{k[:3]}-{n}" for k, vs in originals.items()
            for n, v in enumerate(dict.fromkeys(vs)) if v and "," not in v]
    table = tmp_path / "t.csv"
    table.write_text("keyword,original,replacement\n" + "\n".join(rows) + "\n")
    config = parse_config({"profile": "basic", "lookup": str(table), "lookupMissing": missing,
                           "rules": KEEP_NESTED}, secret=SECRET)
    fast = Anonymizer(config, today=TODAY)
    slow = Anonymizer(config, today=TODAY, fast_path=False)
    done, differences = 0, []
    for index, source in enumerate(inputs):
        a, b = tmp_path / f"fast{index}.dcm", tmp_path / f"slow{index}.dcm"
        by_fast, by_slow = fast.anonymize_file(source, a), slow.anonymize_file(source, b)
        if (by_fast.status, by_fast.error_class) != (by_slow.status, by_slow.error_class):
            differences.append(f"{source.name}: {by_fast.status} vs {by_slow.status}")
        elif by_slow.status == "done":
            done += 1
            if a.read_bytes() != b.read_bytes():
                differences.append(f"{source.name}: outputs differ")
    assert not differences, "\n".join(differences)
    assert done >= (3 if missing == "fail" else 60)


def test_the_quick_and_the_careful_parser_read_the_same_table() -> None:
    from dcmanon.config import lookup

    text = ("keyword,original,replacement\r\nPatientID,MRN1,S1\r\nAccessionNumber,A1,X1\r\n"
            "PatientID,MRN2,S2\r\n")
    quick = lookup._parse_plain(text)
    assert quick is not None
    careful = parse_subject_table(text + "PatientID,MRN3,S 3\n")  # a space: careful parser
    assert careful.rows == quick[1] + 1
    for tag, table in quick[0].items():
        assert {k: careful.by_tag[tag][k] for k in table} == table
    # Anything the quick parser cannot vouch for goes to the careful one.
    for odd in ("keyword,original,replacement\nPatientID,MRN1,S1,extra\n",
                "keyword,original,replacement\nPatientID,MRN1,S1\nPatientID,MRN1,S2\n",
                "keyword,original,replacement\nPatientID,MRN1,S1\n\nPatientID,MRN2,S2\n"):
        assert lookup._parse_plain(odd) is None


def test_a_worker_process_loads_the_table_from_its_file(tmp_path: Path) -> None:
    import pickle
    import subprocess
    import sys

    table = load_subject_table(_table(tmp_path))
    shipped = pickle.dumps(table)
    assert LISTED.patient_id.encode() not in shipped  # a name and a digest, not the rows
    code = ("import pickle, sys; t = pickle.loads(sys.stdin.buffer.read()); "
            f"print(t.replacement(0x00100020, {LISTED.patient_id!r}))")
    run = subprocess.run([sys.executable, "-c", code], input=shipped, capture_output=True,
                         check=True)
    assert run.stdout.decode().strip() == SUBJECT


def test_a_dry_run_with_a_table_explains_listed_patients_and_names_unlisted_ones(
        tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["-I", str(_write_inputs(tmp_path)), "--dry-run",
                                       "--lookup", str(_table(tmp_path))])
    assert result.exit_code == 1
    assert "listed.dcm" in result.output and "PatientID" in result.output
    assert "unlisted.dcm" in result.output and "not in the subject table" in result.output
    for value in (UNLISTED.patient_id, LISTED.patient_id, SUBJECT):
        assert value not in result.output
