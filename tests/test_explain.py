"""``dcmanon explain FILE`` and ``dcmanon --dry-run``: what each rule will do, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner, Result

from dcmanon import cli, parse_config
from dcmanon.check.explain import explain_dataset, render_explain
from dcmanon.check.findings import mask
from dcmanon.config.loader import default_config
from dcmanon.header.engine import Engine
from dcmanon.testing import make_instance, make_patient, write_study_tree

KEY = "explain-tests-secret"
PATIENT = make_patient(0)
NESTED_NAME = ("(0040,0260) PerformedProtocolCodeSequence[0] > (0040,0440) "
               "ProtocolContextSequence[0] > (0040,A123) PersonName")


def run(*args: object) -> Result:
    result = CliRunner(env={"DCMANON_KEY": KEY}).invoke(cli.main, [str(a) for a in args])
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def one_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.dcm"
    make_instance(PATIENT).save_as(path, enforce_file_format=True)
    return path


def line_of(output: str, element: str) -> str:
    lines = [line for line in output.splitlines() if line.lstrip().startswith(element) or
             element in line]
    assert lines, element
    return lines[0]


def test_every_element_is_explained_with_its_action_and_profile_row(tmp_path: Path) -> None:
    ds = pydicom.dcmread(one_file(tmp_path))
    rows = explain_dataset(Engine(default_config(secret=KEY)), ds)
    by_element = {row.element: row for row in rows}
    assert by_element["(0010,0010) PatientName"].action == "pseudonym"
    assert by_element["(0010,0010) PatientName"].source.endswith("Table E.1-1 action P")
    assert by_element["(0008,0080) InstitutionName"].action == "remove"
    assert by_element["(0008,0060) Modality"].action == "keep"
    assert by_element["(0009,1001) Private"].action == "remove"
    assert by_element[NESTED_NAME].action == "dummy"
    assert by_element["(0002,0003) MediaStorageSOPInstanceUID"].source == \
        "file meta: follows SOPInstanceUID"
    assert by_element["(7FE0,0010) PixelData"].value == f"{64 * 64 * 2} bytes"
    assert by_element["(0040,0275) RequestAttributesSequence"].value == "1 item(s)"
    # Elements of a removed sequence go with it.
    assert not [r for r in rows if r.element.startswith("(0040,0275) RequestAttributesSequence[")]
    # Values are masked: first character and length.
    assert by_element["(0010,0010) PatientName"].value == mask(PATIENT.name)
    table = render_explain(rows)
    assert PATIENT.family_name not in table and PATIENT.patient_id not in table


def test_a_rule_is_named_by_its_index_and_selector(tmp_path: Path) -> None:
    config = parse_config({"rules": [{"tag": "PatientID", "method": "cryptoHash"},
                                     {"tag": "PN", "method": "redact"}],
                           "profile": "basic"}, secret=KEY)
    rows = explain_dataset(Engine(config), pydicom.dcmread(one_file(tmp_path)))
    by_element = {row.element: row for row in rows}
    assert by_element["(0010,0020) PatientID"].source.startswith("rules[0] ")
    assert '"PatientID"' in by_element["(0010,0020) PatientID"].source
    assert by_element["(0010,0010) PatientName"].source.startswith("rules[1] ")
    assert by_element[NESTED_NAME].action == "redact"


def test_explain_command_masks_values_unless_asked(tmp_path: Path) -> None:
    path = one_file(tmp_path)
    result = run("explain", path)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ELEMENT")
    name = line_of(result.stdout, "(0010,0010) PatientName")
    assert "PN" in name and "pseudonym" in name and mask(PATIENT.name) in name
    assert "Table E.1-1 action P" in name
    nested = line_of(result.stdout, "[0] (0040,A123) PersonName")
    assert nested.startswith("    [0] (0040,A123) PersonName")  # indented two levels
    for marker in (PATIENT.family_name, PATIENT.patient_id, PATIENT.phone):
        assert marker not in result.output
    shown = run("explain", path, "--show-values")
    assert PATIENT.name in line_of(shown.stdout, "(0010,0010) PatientName")


def test_explain_command_takes_the_main_configuration_options(tmp_path: Path) -> None:
    path = one_file(tmp_path)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rules": [{"tag": "ImageComments", "method": "keep"}],
                                  "profile": "basic"}), encoding="utf-8")
    result = run("explain", path, "-c", config)
    assert "rules[0]" in line_of(result.stdout, "(0020,4000) ImageComments")
    research = run("explain", path, "--profile", "research", "--option", "retain-uids")
    assert research.exit_code == 0
    assert "retain-uids" in line_of(research.stdout, "(0008,0018) SOPInstanceUID")
    assert "keep" in line_of(research.stdout, "(0008,0018) SOPInstanceUID")


def test_explain_command_errors(tmp_path: Path) -> None:
    assert run("explain", tmp_path / "missing.dcm").exit_code == 2
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM", encoding="utf-8")
    result = run("explain", text)
    assert result.exit_code == 1 and "not a DICOM file" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"rules": [{"tag": "PatientName", "method": "cryptohsh"}]}',
                   encoding="utf-8")
    assert run("explain", one_file(tmp_path), "-c", bad).exit_code == 2


def test_dry_run_on_a_file_prints_the_table_and_writes_nothing(tmp_path: Path) -> None:
    path = one_file(tmp_path)
    target = tmp_path / "out.dcm"
    result = run("-i", path, "-o", target, "--dry-run")
    assert result.exit_code == 0, result.output
    assert not target.exists()
    assert f"== {path}" in result.stdout
    assert "pseudonym" in line_of(result.stdout, "(0010,0010) PatientName")
    assert "nothing written" in result.stderr


def test_dry_run_on_a_folder_explains_every_file(tmp_path: Path) -> None:
    files = write_study_tree(tmp_path / "in", patients=1, studies=1, series=1, instances=3)
    result = run("-I", tmp_path / "in", "-O", tmp_path / "out", "--dry-run")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "out").exists()
    assert [line for line in result.stdout.splitlines() if line.startswith("== ")] == [
        f"== {f}" for f in files]
    assert "3 file(s) explained" in result.stderr
    assert run("-I", tmp_path / "in", "--dry-run").exit_code == 0  # no output needed


def test_dry_run_needs_an_input() -> None:
    result = run("--dry-run")
    assert result.exit_code == 2 and "needs an input" in result.output


def test_no_key_warning_only_where_pseudonyms_are_written(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Without a key, a run warns that its pseudonyms will not match other runs; explain and
    --dry-run write no pseudonym, so they do not."""
    monkeypatch.delenv("DCMANON_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    path = one_file(tmp_path)
    runner = CliRunner()
    explained = runner.invoke(cli.main, ["explain", str(path)])
    dry = runner.invoke(cli.main, ["-i", str(path), "-o", "out.dcm", "--dry-run"])
    written = runner.invoke(cli.main, ["-i", str(path), "-o", "out.dcm"])
    assert (explained.exit_code, dry.exit_code, written.exit_code) == (0, 0, 0)
    assert "random key" not in explained.stderr + dry.stderr
    assert "random key is used for this run" in written.stderr
