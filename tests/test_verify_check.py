"""``dcmanon check``: every leak planted into an otherwise clean output set is found.

A synthetic set is de-identified with the default profile (its outputs under neutral names),
which check reports as clean; then one leak per category is planted into a copy of the
outputs and check must report exactly that category, with values masked unless asked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydicom.dataset import Dataset, FileDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, generate_uid

from dcmanon import cli
from dcmanon.check.findings import Report, mask
from dcmanon.check.report_text import render_text, report_dict
from dcmanon.check.verify import check
from dcmanon.phi.identifiers import date_spellings
from tests.verify_sets import Sets, edit, make_sets, original


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Sets:
    return make_sets(tmp_path_factory.mktemp("clean"))


@pytest.fixture
def sets(clean: Sets, tmp_path: Path) -> Sets:
    return clean.copy(tmp_path / "out")


def run(*args: object) -> Result:
    result = CliRunner().invoke(cli.main, [str(a) for a in args])
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def family(ds: Dataset) -> str:
    return str(ds.PatientName).split("^")[0]


# --- the clean set -------------------------------------------------------------------------


def test_the_clean_set_passes(clean: Sets) -> None:
    report = check(clean.original, clean.anonymized)
    assert report.passed, render_text(report, show_values=True)
    assert report.files_checked == len(clean.originals)
    assert report.by_category == {}


def test_a_mirrored_tree_renames_its_identifying_folder_names(clean: Sets,
                                                               tmp_path: Path) -> None:
    """The default folder mode mirrors the input tree, the patients' identifiers in folder
    names replaced by their pseudonyms (issue 11): nothing is left for check to find."""
    assert run("-I", clean.original, "-O", tmp_path / "mirror", "--key-file",
               write_key(tmp_path)).exit_code == 0
    report = check(clean.original, tmp_path / "mirror")
    assert dict(report.by_category) == {}
    assert report.hidden_names == set()


def write_key(folder: Path) -> Path:
    path = folder / "key.txt"
    path.write_text("k", encoding="utf-8")
    return path


# --- one planted leak per category ---------------------------------------------------------

Plant = Callable[[Sets], str]
"""Plants one leak into the outputs; returns the planted value."""


def plant_top_level_text(sets: Sets) -> str:
    ds = original(sets)
    value = f"{ds.PatientName.given_name} {ds.PatientName.family_name}"
    edit(sets.output(0), lambda out: setattr(out, "PatientComments", f"called {value}"))
    return value


def plant_date_in_text(sets: Sets) -> str:
    value = date_spellings(str(original(sets).StudyDate))[3]  # DD/MM/YYYY
    edit(sets.output(0), lambda out: setattr(out, "ImageComments", f"seen on {value}"))
    return value


def plant_nested(sets: Sets) -> str:
    value = str(original(sets).PatientName)

    def change(out: FileDataset) -> None:
        out.PerformedProtocolCodeSequence[0].ProtocolContextSequence[0].PersonName = value

    edit(sets.output(0), change)
    return value


def plant_private(sets: Sets) -> str:
    value = str(original(sets).PatientID)

    def change(out: FileDataset) -> None:
        out.private_block(0x0011, "LEAKY VENDOR 1.0", create=True).add_new(0x01, "LO", value)

    edit(sets.output(0), change)
    return value


def plant_file_meta(sets: Sets) -> str:
    value = family(original(sets)).upper()[:16]
    edit(sets.output(0), lambda out: setattr(out.file_meta, "SourceApplicationEntityTitle",
                                             value))
    return value


def plant_file_name(sets: Sets) -> str:
    value = family(original(sets))
    sets.output(0).rename(sets.anonymized / f"{value}_0000.dcm")
    return value


def plant_trailing_padding(sets: Sets) -> str:
    value = str(original(sets).AccessionNumber)
    data = b"\0" * 16 + value.encode() + b"\0" * 16
    edit(sets.output(0), lambda out: out.add_new(0xFFFCFFFC, "OB", data))
    return value


def plant_ob_value(sets: Sets) -> str:
    value = str(original(sets).PatientName).replace("^", " ")
    data = b"%PDF-1.4 report for " + value.encode() + b"\n%%EOF\n"
    edit(sets.output(0), lambda out: out.add_new(0x00420011, "OB", data))
    return value


def plant_original_date(sets: Sets) -> str:
    value = str(original(sets).StudyDate)
    edit(sets.output(0), lambda out: setattr(out, "StudyDate", value))
    return value


def plant_original_uid(sets: Sets) -> str:
    value = str(original(sets).SOPInstanceUID)

    def change(out: FileDataset) -> None:
        out.SOPInstanceUID = value
        out.file_meta.MediaStorageSOPInstanceUID = value

    edit(sets.output(0), change)
    return value


def plant_uid_in_text(sets: Sets) -> str:
    value = str(original(sets).StudyInstanceUID)
    edit(sets.output(0), lambda out: setattr(out, "ImageComments", f"prior: {value}"))
    return value


def plant_split_series(sets: Sets) -> str:
    edit(sets.output(0), lambda out: setattr(out, "SeriesInstanceUID", generate_uid(None)))
    return ""


def plant_media_storage_mismatch(sets: Sets) -> str:
    edit(sets.output(0), lambda out: setattr(out.file_meta, "MediaStorageSOPInstanceUID",
                                             generate_uid(None)))
    return ""


def plant_dangling_reference(sets: Sets) -> str:
    def change(out: FileDataset) -> None:
        item = Dataset()
        item.ReferencedSOPClassUID = CTImageStorage
        item.ReferencedSOPInstanceUID = generate_uid(None)
        out.ReferencedImageSequence = Sequence([item])

    edit(sets.output(0), change)
    return ""


CASES: list[tuple[Plant, str, str, str]] = [
    # plant, category, kind, where (part of the element or location)
    (plant_top_level_text, "element", "name", "(0010,4000) PatientComments"),
    (plant_date_in_text, "element", "date", "(0020,4000) ImageComments"),
    (plant_uid_in_text, "element", "uid", "(0020,4000) ImageComments"),
    (plant_nested, "nested", "name",
     "(0040,0260) PerformedProtocolCodeSequence[0] > (0040,0440) ProtocolContextSequence[0] > "
     "(0040,A123) PersonName"),
    (plant_private, "private", "id", "(0011,1001) Private"),
    (plant_file_meta, "file-meta", "name", "(0002,0016) SourceApplicationEntityTitle"),
    (plant_file_name, "file-name", "name", "file name"),
    (plant_trailing_padding, "raw-bytes", "id", "in (FFFC,FFFC) DataSetTrailingPadding"),
    (plant_ob_value, "raw-bytes", "name", "in (0042,0011) EncapsulatedDocument"),
    (plant_original_date, "original-date", "date", "(0008,0020) StudyDate"),
    (plant_original_uid, "original-uid", "uid", "(0008,0018) SOPInstanceUID"),
    (plant_split_series, "integrity", "uid", "SeriesInstanceUID"),
    (plant_media_storage_mismatch, "integrity", "uid", "(0002,0003) MediaStorageSOPInstanceUID"),
    (plant_dangling_reference, "integrity", "uid",
     "(0008,1140) ReferencedImageSequence[0] > (0008,1155) ReferencedSOPInstanceUID"),
]


@pytest.mark.parametrize(("plant", "category", "kind", "where"), CASES,
                         ids=[c[0].__name__.removeprefix("plant_") for c in CASES])
def test_a_planted_leak_is_found(sets: Sets, plant: Plant, category: str, kind: str,
                                 where: str) -> None:
    value = plant(sets)
    report = check(sets.original, sets.anonymized)
    assert not report.passed
    assert set(report.by_category) == {category}, render_text(report, show_values=True)
    assert any(f.kind == kind and where in f.element for f in report.findings), \
        [(f.kind, f.element) for f in report.findings]
    if value:
        assert any(value.lower() in f.value.lower() or f.value.lower() in value.lower()
                   for f in report.findings if f.value)
        assert_masked(report, value)


def assert_masked(report: Report, value: str) -> None:
    """No rendering shows the value unless asked; --show-values does."""
    masked_text = render_text(report) + json.dumps(report_dict(report))
    assert value not in masked_text
    assert value.lower() not in masked_text.lower()
    shown = render_text(report, show_values=True) + json.dumps(report_dict(report, True))
    assert any(f.value in shown for f in report.findings if f.value)


def test_the_original_uid_is_found_in_the_file_meta_too(sets: Sets) -> None:
    plant_original_uid(sets)
    report = check(sets.original, sets.anonymized)
    elements = sorted(f.element for f in report.findings)
    assert elements == ["(0002,0003) MediaStorageSOPInstanceUID", "(0008,0018) SOPInstanceUID"]


def test_a_name_in_a_file_name_hides_the_path_in_every_report(sets: Sets) -> None:
    value = plant_file_name(sets)
    edit(sets.anonymized / f"{value}_0000.dcm",
         lambda out: setattr(out, "StudyDate", str(original(sets).StudyDate)))
    report = check(sets.original, sets.anonymized)
    assert report.by_category == {"file-name": 1, "original-date": 1}
    assert value not in render_text(report) and value not in json.dumps(report_dict(report))
    assert f"{value}_0000.dcm" in render_text(report, show_values=True)


def test_every_category_planted_at_once(sets: Sets) -> None:
    for plant in (plant_nested, plant_private, plant_file_meta, plant_trailing_padding,
                  plant_original_date, plant_media_storage_mismatch):
        plant(sets)
    plant_file_name(sets)  # last: the others edit output 0 under its first name
    report = check(sets.original, sets.anonymized)
    assert set(report.by_category) == {"nested", "private", "file-meta", "file-name",
                                       "raw-bytes", "original-date", "integrity"}
    assert report.by_element["(0002,0016) SourceApplicationEntityTitle"] == 1


def test_ignored_categories_are_not_counted(sets: Sets) -> None:
    plant_original_uid(sets)
    assert check(sets.original, sets.anonymized, ignore=["original-uid"]).passed


def test_an_unreadable_output_is_a_finding(sets: Sets) -> None:
    sets.output(1).write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 10)
    report = check(sets.original, sets.anonymized)
    assert "unreadable" in report.by_category


def test_the_sets_must_be_apart(clean: Sets) -> None:
    from dcmanon.errors import UsageError

    with pytest.raises(UsageError):
        check(clean.original, clean.original)
    with pytest.raises(UsageError):
        check(clean.original, clean.original / os.listdir(clean.original)[0])


def test_single_files_can_be_checked(sets: Sets) -> None:
    assert check(sets.originals[0], sets.output(0)).passed
    plant_original_date(sets)
    assert check(sets.originals[0], sets.output(0)).by_category == {"original-date": 1}


def test_shifted_dates_are_not_mistaken_for_original_ones(tmp_path: Path) -> None:
    """Research profile: dates shifted per patient, time of day kept. With many patients a
    shifted date falls on another patient's real date; the time of day tells them apart."""
    from dcmanon import Anonymizer
    from dcmanon.config.loader import default_config
    from dcmanon.testing import write_study_tree

    config = default_config(secret="k", profile="research")
    originals = write_study_tree(tmp_path / "in", patients=20, studies=2, series=1,
                                 instances=2)
    anonymizer = Anonymizer(config)
    for index, path in enumerate(originals):
        assert anonymizer.anonymize_file(path, tmp_path / "out" / f"{index:04d}.dcm").status \
            == "done"
    assert check(tmp_path / "in", tmp_path / "out", config=config).passed
    # An unshifted date (with its original time of day, which the profile keeps) is found.
    source = original(Sets(tmp_path / "in", tmp_path / "out", originals))
    edit(tmp_path / "out" / "0000.dcm", lambda out: setattr(out, "StudyDate",
                                                            str(source.StudyDate)))
    report = check(tmp_path / "in", tmp_path / "out", config=config)
    assert [f.element for f in report.findings] == ["(0008,0020) StudyDate"]


# --- the command ----------------------------------------------------------------------------


def test_check_exit_codes_and_reports(sets: Sets, tmp_path: Path) -> None:
    result = run("check", "--original", sets.original, "--anonymized", sets.anonymized)
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output

    value = plant_nested(sets)
    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    result = run("check", "--original", sets.original, "--anonymized", sets.anonymized,
                 "--json", json_path, "--html", html_path)
    assert result.exit_code == 1
    assert "FAIL" in result.output and "[nested]" in result.output
    for text in (result.output, json_path.read_text(), html_path.read_text()):
        assert value not in text and mask(value) in text
    data = json.loads(json_path.read_text())
    assert data["verdict"] == "FAIL" and data["by_category"] == {"nested": 1}
    assert data["findings"][0]["value"] == mask(value)

    shown = run("check", "--original", sets.original, "--anonymized", sets.anonymized,
                "--show-values")
    assert value in shown.output
    ignored = run("check", "--original", sets.original, "--anonymized", sets.anonymized,
                  "--ignore", "nested")
    assert ignored.exit_code == 0


def test_check_usage_errors_exit_2(sets: Sets, tmp_path: Path) -> None:
    assert run("check", "--original", sets.original).exit_code == 2
    assert run("check", "--original", tmp_path / "missing", "--anonymized",
               sets.anonymized).exit_code == 2
    same = run("check", "--original", sets.original, "--anonymized", sets.original)
    assert same.exit_code == 2 and "apart" in same.output
    assert run("check", "--original", sets.original, "--anonymized", sets.anonymized,
               "--ignore", "nonsense").exit_code == 2


def test_check_takes_the_configuration_the_outputs_were_made_with(sets: Sets,
                                                                   tmp_path: Path) -> None:
    result = run("check", "--original", sets.original, "--anonymized", sets.anonymized,
                 "--profile", "basic", "--key-file", write_key(tmp_path))
    assert result.exit_code == 0, result.output
