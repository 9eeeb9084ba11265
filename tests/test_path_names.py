"""Identifying path names (issue 11 §2): in the mirror layout, folder and file names that hold
an identifier of the file under them get that identifier's pseudonym, the one the file carries.
"""

from __future__ import annotations

import json
import re
import shutil
from copy import deepcopy
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dcmanon import Anonymizer, parse_config
from dcmanon.batch.names import PathRenamer
from dcmanon.batch.run import BatchOptions, run_folder
from dcmanon.check.verify import check
from dcmanon.cli.folder import summary_line
from dcmanon.cli.main import main
from dcmanon.testing import make_instance, make_patient, write_study_tree

KEY = "test-path-names-secret"


def anonymizer(config: dict[str, object] | None = None) -> Anonymizer:
    # pixels off: pydicom's media export holds DERIVED images that would want OCR
    return Anonymizer(parse_config(config or {"profile": "basic"}, secret=KEY), pixels="off")


def renamer(config: dict[str, object] | None = None) -> PathRenamer:
    return PathRenamer(anonymizer(config), "path-key")


def identity(**values: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.1"
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def pseudonym_of(ds: Dataset, config: dict[str, object] | None = None) -> str:
    copy = deepcopy(ds)
    anonymizer(config).anonymize_dataset(copy)
    return str(copy.PatientID)


def outputs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# --- matching -----------------------------------------------------------------------------


def test_a_patient_id_token_gets_the_pseudonym_the_file_carries() -> None:
    ds = identity(PatientID="QZ-71000", PatientName="Zorbington^Fennick")
    new = pseudonym_of(ds)
    assert re.fullmatch(r"ANON-[A-Z2-7]{10}", new)
    result = renamer().rename_with("QZ-71000_CT/qz-71000/IM1.dcm", ds)
    assert result.path == f"{new}_CT/{new}/IM1.dcm"
    assert result.components == 2


def test_numbers_count_only_where_no_digit_touches_them() -> None:
    ds = identity(PatientID="71000", PatientName="Zorbington^Fennick")
    new = pseudonym_of(ds)
    assert renamer().rename_with("971000/710001/1.dcm", ds).components == 0
    assert renamer().rename_with("MRN71000x/71000.dcm", ds).path == \
        f"MRN{new}x/{new}.dcm"


def test_name_components_birth_dates_and_accession_numbers() -> None:
    ds = identity(PatientID="QZ-71000", PatientName="Zorbington^Fennick",
                  PatientBirthDate="19700131", AccessionNumber="ACQ991")
    new = pseudonym_of(ds)
    result = renamer().rename_with(
        "ZORBINGTON_fennick/1970-01-31/acq991/StudyOfZorbington.dcm", ds)
    family, date, accession, name = result.path.split("/")
    assert family == f"{new}_{new}"
    assert re.fullmatch(r"DOB-[A-Z2-7]{10}", date)  # the profile removes the birth date
    assert re.fullmatch(r"ACC-[A-Z2-7]{10}", accession)  # and empties the accession number
    assert name == f"StudyOf{new}.dcm"  # long names are found inside words
    assert result.components == 4
    again = renamer().rename_with("acq991", ds).path
    assert again == accession  # keyed: the same token everywhere


def test_short_names_are_found_as_words_only() -> None:
    ds = identity(PatientID="QZ-71000", PatientName="Li^Zed")
    assert renamer().rename_with("Zedonk/Li/1.dcm", ds).path == "Zedonk/Li/1.dcm"  # < 3
    ds = identity(PatientID="QZ-71000", PatientName="Ung^Zed")
    new = pseudonym_of(ds)
    assert renamer().rename_with("Zedonk/ZED/1.dcm", ds).path == f"Zedonk/{new}/1.dcm"


def test_what_a_configuration_writes_is_what_the_path_gets() -> None:
    config: dict[str, object] = {"rules": [
        {"tag": "AccessionNumber", "method": "substitute", "params": {"replaceWith": "ACCX"}},
        {"tag": "PatientBirthDate", "method": "dateShift"},
        {"tag": "PatientID", "method": "cryptoHash"},
    ], "parameters": {"dateShiftKey": "k", "cryptoHashKey": "k"}}
    ds = identity(PatientID="QZ-71000", AccessionNumber="ACQ991", PatientBirthDate="19700131")
    copy = deepcopy(ds)
    anonymizer(config).anonymize_dataset(copy)
    path = renamer(config).rename_with("QZ-71000/ACQ991/1970-01-31", ds).path
    shifted = str(copy.PatientBirthDate)
    assert path == (f"{copy.PatientID}/ACCX/"
                    f"{shifted[:4]}-{shifted[4:6]}-{shifted[6:]}")


def test_a_kept_identifier_keeps_its_name() -> None:
    config: dict[str, object] = {"rules": [{"tag": "PatientName", "method": "redact"}]}
    ds = identity(PatientID="QZ-71000")  # unmatched elements are kept
    assert renamer(config).rename_with("QZ-71000/1.dcm", ds).components == 0


def test_a_placeholder_gives_a_keyed_token() -> None:
    config: dict[str, object] = {"rules": [{"tag": "PatientID", "method": "keep"}],
                                 "profile": "basic"}  # kept text loses its identifiers: ***
    ds = identity(PatientID="QZ-71000")
    assert re.fullmatch(r"ANON-[A-Z2-7]{10}/1.dcm",
                        renamer(config).rename_with("QZ-71000/1.dcm", ds).path)


def test_a_random_method_gives_a_keyed_token() -> None:
    config: dict[str, object] = {"rules": [{"tag": "PatientID", "method": "encrypt"}],
                                 "parameters": {"encryptKey": "0123456789abcdef"}}
    ds = identity(PatientID="QZ-71000")
    first = renamer(config).rename_with("QZ-71000", ds).path
    assert first == renamer(config).rename_with("QZ-71000", ds).path
    assert first.startswith("ANON-") and "/" not in first


# --- folder runs --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("names") / "in"
    write_study_tree(root, patients=2, studies=1, series=2, instances=2)
    return root


def test_a_mirror_run_renames_patient_folders_consistently(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = tmp_path / "run.jsonl"
    batch = run_folder(anonymizer(), tree, out, options=BatchOptions(jobs=1, report=report))
    assert batch.summary.done == 8 and batch.summary.failed == 0
    folders = {}
    for path in outputs(out):
        ds = pydicom.dcmread(path)
        top = path.relative_to(out).parts[0]
        assert top == "_".join([str(ds.PatientID)] * 3)  # family_given_MRN
        folders[str(ds.PatientID)] = top
    assert len(folders) == 2
    for index in range(2):
        patient = make_patient(index)
        for path in out.rglob("*"):
            name = path.name.lower()
            for term in (patient.patient_id, patient.family_name, patient.given_name):
                assert term.lower() not in name
    assert batch.summary.renamed == 2
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert records[-1]["renamed"] == 2
    assert all(r["renamed"] == 1 for r in records[:-1])
    line = summary_line(batch)
    assert "2 path component(s) renamed" in line
    text = report.read_text().split('"target"')  # targets hold no original name
    for index in range(2):
        assert all(make_patient(index).family_name not in part.split('"status"')[0]
                   for part in text[1:])


def test_workers_name_the_outputs_alike(tree: Path, tmp_path: Path) -> None:
    serial = run_folder(anonymizer(), tree, tmp_path / "one", options=BatchOptions(jobs=1))
    parallel = run_folder(anonymizer(), tree, tmp_path / "two",
                          options=BatchOptions(jobs=2, min_parallel=1, chunk_size=1))
    assert serial.summary.done == parallel.summary.done == 8
    names = [[p.relative_to(root).as_posix() for p in outputs(root)]
             for root in (tmp_path / "one", tmp_path / "two")]
    assert names[0] == names[1]


def test_a_rerun_resumes_under_the_renamed_names(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_folder(anonymizer(), tree, out, options=BatchOptions(jobs=1))
    again = run_folder(anonymizer(), tree, out, options=BatchOptions(jobs=1))
    assert (again.summary.done, again.summary.existing, again.summary.failed) == (0, 8, 0)


def test_the_command_line_counts_renamed_components(tree: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["-I", str(tree), "-O", str(tmp_path / "out"), "-j", "1",
                                       "--key-file", str(_key_file(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "2 path component(s) renamed" in result.stderr
    for index in range(2):
        patient = make_patient(index)
        for text in (result.stdout, result.stderr):
            assert patient.family_name not in text and patient.patient_id not in text


def _key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key"
    path.write_text(KEY)
    return path


# --- pydicom's test export ----------------------------------------------------------------


def dicomdir_tests() -> Path:
    found = get_testdata_file("DICOMDIR", download=False)
    if found is None:
        pytest.skip("pydicom's test data has no DICOMDIR")
    return Path(str(found)).parent


def dicomdir_export(tmp_path: Path) -> Path:
    """pydicom's dicomdirtests: a DICOMDIR and patient folders named by PatientID."""
    source = dicomdir_tests()
    target = tmp_path / "media"
    shutil.copytree(source, target)
    return target


def original_terms(root: Path) -> set[str]:
    terms: set[str] = set()
    for path in outputs(root):
        ds = pydicom.dcmread(path, force=True)
        if "PatientID" in ds and ds.PatientID:
            terms.add(str(ds.PatientID).lower())
        if "PatientName" in ds and ds.PatientName:
            name = ds.PatientName
            terms.update(p.lower() for p in (name.family_name, name.given_name) if p)
    return terms


def test_pydicom_dicomdir_export_has_no_identifying_name_left(tmp_path: Path) -> None:
    media = dicomdir_export(tmp_path)
    terms = original_terms(media)
    names = {p.name.lower() for p in media.rglob("*")}
    assert terms & names  # the export does name folders after patients
    out = tmp_path / "out"
    batch = run_folder(anonymizer(), media, out, options=BatchOptions(jobs=1))
    assert batch.summary.failed == 0
    assert batch.summary.renamed >= len(terms & names)
    for path in out.rglob("*"):
        assert path.name.lower() not in terms
    report = check(media, out)
    assert report.by_category["file-name"] == 0


def test_a_name_too_long_with_hashes_takes_keyed_tokens() -> None:
    config: dict[str, object] = {"rules": [{"tag": "PatientID", "method": "cryptoHash"}],
                                 "parameters": {"cryptoHashKey": "k"}}
    ds = identity(PatientID="QZ-71000")
    hashed = pseudonym_of(ds, config)
    assert len(hashed) == 64
    short = renamer(config).rename_with("QZ-71000", ds).path
    assert short == hashed
    long = renamer(config).rename_with("_".join(["QZ-71000"] * 4), ds).path
    assert re.fullmatch(r"(ANON-[A-Z2-7]{10}_){3}ANON-[A-Z2-7]{10}", long)


def test_a_patient_folder_holding_another_patients_file_is_renamed_for_all(
        tmp_path: Path) -> None:
    """77654033/ holds a file of 77654033 and one of someone else (in a subfolder): both end
    up under the renamed folder, and no output name is the original."""
    first, second = make_patient(0), make_patient(1)
    folder = tmp_path / "in" / first.patient_id
    (folder / "CT").mkdir(parents=True)
    make_instance(first, 0, 0, 0).save_as(folder / "a.dcm", enforce_file_format=True)
    make_instance(second, 0, 0, 0).save_as(folder / "CT" / "b.dcm", enforce_file_format=True)
    make_instance(second, 0, 0, 1).save_as(folder / "c.dcm", enforce_file_format=True)
    out = tmp_path / "out"
    batch = run_folder(anonymizer(), tmp_path / "in", out, options=BatchOptions(jobs=1))
    assert batch.summary.done == 3 and batch.summary.renamed == 2
    written = sorted(p.relative_to(out).as_posix() for p in outputs(out))
    pseudonym = written[0].split("/")[0]
    assert written == [f"{pseudonym}/CT/b.dcm", f"{pseudonym}/a.dcm", f"{pseudonym}/c.dcm"]
    assert str(pydicom.dcmread(out / pseudonym / "a.dcm").PatientID) == pseudonym
    assert not any(first.patient_id in p.as_posix() for p in out.rglob("*"))
    again = run_folder(anonymizer(), tmp_path / "in", out, options=BatchOptions(jobs=1))
    assert again.summary.failed == 0
    assert sorted(p.relative_to(out).as_posix() for p in outputs(out)) == written


def test_file_set_names_stay_file_ids() -> None:
    ds = identity(PatientID="77654033", PatientName="Doe^Archibald")
    new = pseudonym_of(ds)
    result = renamer().rename_with("77654033/CR1/6154", ds, file_ids=True)
    assert result.path == f"{new[-8:]}/CR1/6154"
    assert re.fullmatch(r"[A-Z0-9_]{8}", result.path.split("/")[0])
    config: dict[str, object] = {"rules": [{"tag": "PatientID", "method": "substitute",
                                            "params": {"replaceWith": "--"}}]}
    dashes = renamer(config).rename_with("77654033/CR1", ds, file_ids=True).path
    assert re.fullmatch(r"[A-Z2-7]{8}/CR1", dashes)  # nothing left of "--": a keyed token
