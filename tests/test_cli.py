"""The command line, end to end: options, modes, exit codes, messages, what is (not) written.

Most runs use click's CliRunner on ``dcmanon.cli.main`` (the real command, in-process: an
exception escaping it would have been a traceback, and every run checks there was none); a few
run ``python -m dcmanon`` in a subprocess to check the real process exit codes and stderr.
Inputs are synthetic (``dcmanon.testing``); the reference's configurations (tests/data/microsoft)
are used where the brief names them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pydicom
import pytest
from click.testing import CliRunner, Result

from dcmanon import cli
from dcmanon.testing import make_instance, make_patient, write_study_tree
from tests.conformance.vectors import require_reference

KEY = "test-cli-project-secret-of-32-characters"

CONFIG: dict[str, Any] = {
    "rules": [
        {"tag": "xxx9,xxxx", "method": "remove"},
        {"tag": "ImageComments", "method": "remove"},
        {"tag": "PatientID", "method": "cryptoHash"},
        {"tag": "PN", "method": "redact"},
        {"tag": "DA", "method": "dateShift"},
        {"tag": "DT", "method": "dateShift"},
        {"tag": "StudyInstanceUID", "method": "refreshUID"},
        {"tag": "SeriesInstanceUID", "method": "refreshUID"},
        {"tag": "SOPInstanceUID", "method": "refreshUID"},
        {"tag": "FrameOfReferenceUID", "method": "refreshUID"},
        {"tag": "ReferencedSOPInstanceUID", "method": "refreshUID"},
    ],
}

PLANTED_NAME = "Zzyzxquorp^Plantedname"
BAD_DATE = "2021XQ15"


# --- helpers -------------------------------------------------------------------------------


def run(*args: object, key: str | None = KEY) -> Result:
    """Run the real command in-process; never an escaped exception, never a traceback."""
    runner = CliRunner(env={"DCMANON_KEY": key})
    result = runner.invoke(cli.main, [str(a) for a in args])
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr
    return result


def run_process(*args: object, cwd: Path,
                key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dcmanon`` in a subprocess (real exit status, real stderr)."""
    env = {name: value for name, value in os.environ.items() if name != "DCMANON_KEY"}
    if key is not None:
        env["DCMANON_KEY"] = key
    proc = subprocess.run([sys.executable, "-m", "dcmanon", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def write_config(folder: Path, config: dict[str, Any] | None = None,
                 name: str = "config.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(CONFIG if config is None else config), encoding="utf-8")
    return path


def one_file(path: Path, index: int = 0, **values: Any) -> Path:
    """A synthetic instance at ``path``, with ``values`` set (keyword = value)."""
    ds = make_instance(make_patient(index))
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("dcmanon: error:")]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def no_part_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.startswith(".dcmanon-")]


# --- help ----------------------------------------------------------------------------------


def test_help_reads_like_a_man_page() -> None:
    result = run("--help")
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("Usage:")
    for param in cli.main.params:
        if isinstance(param, click.Option):
            for name in param.opts:
                assert name in text, name
            assert param.help, f"{param.name} has no help"
    for part in ("dcmanon -i in.dcm -o out.dcm -c config.json",
                 "dcmanon -I in_dir -O out_dir -c config.json",
                 "Exit status:", "0  every file anonymized", "1  some files failed",
                 "2  usage or configuration error", "$DCMANON_KEY", "decrypt",
                 "./configuration.json", "never copied"):
        assert part in text, part
    assert "-h, --help" in text


def test_decrypt_help_lists_its_options() -> None:
    result = run("decrypt", "--help")
    assert result.exit_code == 0
    for param in cli.main.commands["decrypt"].params:
        for name in param.opts:
            assert name in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert "0.1.0" in result.stdout


# --- one file, a folder --------------------------------------------------------------------


def test_one_file(tmp_path: Path) -> None:
    source = one_file(tmp_path / "in.dcm")
    before = source.read_bytes()
    result = run("-i", source, "-o", tmp_path / "out" / "out.dcm", "-c", write_config(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    original, out = pydicom.dcmread(source), pydicom.dcmread(tmp_path / "out" / "out.dcm")
    assert out.PatientName == "" and out.ReferringPhysicianName == ""
    assert out.PatientID != original.PatientID and "ImageComments" not in out
    assert out.SOPInstanceUID.startswith("2.25.")
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.RequestAttributesSequence[0].StudyInstanceUID == out.StudyInstanceUID
    assert source.read_bytes() == before  # the input is never modified
    assert no_part_files(tmp_path)


def test_folder_is_mirrored_recursively_with_a_summary(tmp_path: Path) -> None:
    inputs = write_study_tree(tmp_path / "in", patients=2, studies=1, series=2, instances=2)
    (tmp_path / "in" / "notes.txt").write_text("not DICOM: skipped, never copied")
    one_file(tmp_path / "in" / "extra" / "IMG0001", index=5)  # no .dcm name, DICM marker
    before = snapshot(tmp_path / "in")
    result = run("-I", tmp_path / "in", "-O", tmp_path / "out", "-c", write_config(tmp_path))
    assert result.exit_code == 0, result.stderr
    expected = {str(p.relative_to(tmp_path / "in")) for p in inputs} | {"extra/IMG0001"}
    written = {f for f in tree(tmp_path / "out") if (tmp_path / "out" / f).is_file()}
    # Patient folders (Family_Given_MRN) are named after the new PatientID instead.
    renamed = set()
    for f in written - {"extra/IMG0001"}:
        pid = str(pydicom.dcmread(tmp_path / "out" / f).PatientID)
        folder, rest = f.split("/", 1)
        assert folder == "_".join([pid] * 3)
        renamed.add(rest)
    assert renamed == {f.split("/", 1)[1] for f in expected - {"extra/IMG0001"}}
    assert len(written) == len(expected)
    assert not (tmp_path / "out" / "notes.txt").exists()
    summary = result.stderr.strip().splitlines()
    assert len(summary) == 1
    assert summary[0].startswith("dcmanon: 9 anonymized, 0 failed, 1 skipped, 2 path "
                                 "component(s) renamed (they held identifiers) in ")
    assert result.stdout == ""
    assert snapshot(tmp_path / "in") == before
    # One study per patient: its files share one new StudyInstanceUID.
    first = sorted(written)[0].split("/")[0]
    studies = {pydicom.dcmread(tmp_path / "out" / f).StudyInstanceUID for f in written
               if f.startswith(first + "/")}
    assert len(studies) == 1
    assert no_part_files(tmp_path)


def test_empty_folder_warns(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    result = run("-I", tmp_path / "in", "-O", tmp_path / "out", "-c", write_config(tmp_path))
    assert result.exit_code == 0
    assert "no DICOM file found" in result.stderr
    assert not (tmp_path / "out").exists()


# --- exit status 1: some files failed ------------------------------------------------------


def test_corrupt_files_among_good_ones(tmp_path: Path) -> None:
    inputs = write_study_tree(tmp_path / "in", patients=1, studies=1, series=2, instances=2)
    data = inputs[0].read_bytes()
    truncated = tmp_path / "in" / "truncated.dcm"
    truncated.write_bytes(data[: len(data) - 1000])  # cut inside the pixel data
    garbage = tmp_path / "in" / "sub" / "garbage.dcm"
    garbage.parent.mkdir()
    garbage.write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 2)
    before = snapshot(tmp_path / "in")
    proc = run_process("-I", tmp_path / "in", "-O", tmp_path / "out", "-c",
                       write_config(tmp_path), cwd=tmp_path)
    assert proc.returncode == 1
    errors = error_lines(proc.stderr)
    assert len(errors) == 2
    assert any(str(truncated) in line and "truncated" in line for line in errors)
    assert any(str(garbage) in line for line in errors)
    assert "4 anonymized, 2 failed" in proc.stderr
    written = {p.relative_to(tmp_path / "in").parts[1:] for p in inputs}
    # (the patient folder is renamed: its name holds the patient's identifiers)
    assert {Path(f).parts[1:] for f in tree(tmp_path / "out")
            if (tmp_path / "out" / f).is_file()} == written
    assert not (tmp_path / "out" / "truncated.dcm").exists()
    assert not (tmp_path / "out" / "sub").exists()  # nothing, not even its folder
    assert no_part_files(tmp_path)
    assert snapshot(tmp_path / "in") == before


def test_non_dicom_file_given_with_i(tmp_path: Path) -> None:
    source = tmp_path / "report.dcm"
    source.write_text("Patient Zzyzxquorp, seen on 2021-03-15\n")
    proc = run_process("-i", source, "-o", tmp_path / "out" / "x.dcm", "-c",
                       write_config(tmp_path), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == f"dcmanon: error: {source}: not a DICOM file\n"
    assert "Zzyzxquorp" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_truncated_file_fails_with_a_clear_line(tmp_path: Path) -> None:
    data = one_file(tmp_path / "whole.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:-501])
    result = run("-i", tmp_path / "cut.dcm", "-o", tmp_path / "out.dcm", "-c",
                 write_config(tmp_path))
    assert result.exit_code == 1
    assert error_lines(result.stderr) == [
        f"dcmanon: error: {tmp_path / 'cut.dcm'}: truncated (the file ends inside an element)"]
    assert not (tmp_path / "out.dcm").exists()


def test_missing_input_file(tmp_path: Path) -> None:
    result = run("-i", tmp_path / "missing.dcm", "-o", tmp_path / "out.dcm", "-c",
                 write_config(tmp_path))
    assert result.exit_code == 1
    assert "missing.dcm: input file not found" in result.stderr
    assert not (tmp_path / "out.dcm").exists()


def test_missing_input_folder(tmp_path: Path) -> None:
    result = run("-I", tmp_path / "missing", "-O", tmp_path / "out", "-c",
                 write_config(tmp_path))
    assert result.exit_code == 2
    assert "input folder not found" in result.stderr
    assert not (tmp_path / "out").exists()


def run_unprivileged(*args: object, cwd: Path) -> tuple[int, str]:
    """Run the command where file modes apply: in-process for a normal user; as root (CI),
    in a subprocess without the capabilities that let root read any file (setpriv)."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        result = run(*args)
        return result.exit_code, result.stderr
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("running as root needs setpriv (util-linux) to test unreadable files")
    env = {**os.environ, "DCMANON_KEY": KEY}
    proc = subprocess.run([setpriv, "--inh-caps=-dac_override,-dac_read_search",
                           "--bounding-set=-dac_override,-dac_read_search",
                           sys.executable, "-m", "dcmanon", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stderr


def test_unreadable_input_file(tmp_path: Path) -> None:
    source = one_file(tmp_path / "in.dcm")
    source.chmod(0)
    try:
        code, stderr = run_unprivileged("-i", source, "-o", tmp_path / "out.dcm", "-c",
                                        write_config(tmp_path), cwd=tmp_path)
    finally:
        source.chmod(0o644)
    assert code == 1
    assert "permission denied" in stderr
    assert not (tmp_path / "out.dcm").exists()


def test_unreadable_subfolder_is_reported(tmp_path: Path) -> None:
    one_file(tmp_path / "in" / "a.dcm")
    locked = tmp_path / "in" / "locked"
    one_file(locked / "b.dcm", index=1)
    locked.chmod(0)
    try:
        code, stderr = run_unprivileged("-I", tmp_path / "in", "-O", tmp_path / "out", "-c",
                                        write_config(tmp_path), cwd=tmp_path)
    finally:
        locked.chmod(0o755)
    assert code == 1
    assert any("locked" in line and "cannot list" in line for line in error_lines(stderr))
    assert (tmp_path / "out" / "a.dcm").exists()


# --- exit status 2: usage or configuration error, nothing written -------------------------


def test_no_arguments() -> None:
    result = run()
    assert result.exit_code == 2
    assert "-i FILE -o FILE, or -I FOLDER -O FOLDER" in result.stderr


def test_unknown_option(tmp_path: Path) -> None:
    result = run("-i", "a.dcm", "-o", "b.dcm", "--bogus")
    assert result.exit_code == 2
    assert "--bogus" in result.stderr


def test_bad_configuration_lists_every_problem(tmp_path: Path) -> None:
    one_file(tmp_path / "in" / "a.dcm")
    config = write_config(tmp_path, {
        "rules": [
            {"tag": "PatientName", "method": "cryptohsh"},
            {"tag": "(0010,00ZZ)", "method": "redact"},
            {"tag": "DA", "method": "dateShift", "colour": "red"},
        ],
        "defaultSetings": {},
    })
    for args in (["-I", tmp_path / "in", "-O", tmp_path / "out"],
                 ["-i", tmp_path / "in" / "a.dcm", "-o", tmp_path / "out" / "a.dcm"]):
        result = run(*args, "-c", config)
        assert result.exit_code == 2
        lines = result.stderr.splitlines()
        assert lines[0] == f"dcmanon: {config}: 4 problems"
        problems = lines[1:]
        assert len(problems) == 4
        assert any(p.startswith("  rules[0].method:") and "cryptoHash" in p for p in problems)
        assert any(p.startswith("  rules[1].tag:") for p in problems)
        assert any(p.startswith("  rules[2]") and "colour" in p for p in problems)
        assert any("defaultSetings" in p and "defaultSettings" in p for p in problems)
        assert not (tmp_path / "out").exists()


def test_configuration_that_is_not_json(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{ rules: [ ", encoding="utf-8")
    result = run("-i", one_file(tmp_path / "a.dcm"), "-o", tmp_path / "out.dcm", "-c", config)
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr
    assert not (tmp_path / "out.dcm").exists()


def test_default_configuration_is_read_from_the_current_folder(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DCMANON_KEY", "test-secret")
    source = one_file(tmp_path / "in.dcm")
    # No configuration anywhere: the built-in PS3.15 Basic Profile.
    result = run("-i", source, "-o", "default.dcm")
    assert result.exit_code == 0, result.stderr
    output = pydicom.dcmread(tmp_path / "default.dcm")
    assert output.PatientIdentityRemoved == "YES"
    assert output.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    write_config(tmp_path, name="configuration.json")
    result = run("-i", source, "-o", "out.dcm")
    assert result.exit_code == 0, result.stderr
    assert pydicom.dcmread(tmp_path / "out.dcm").PatientName == ""


def test_output_folder_inside_input_folder(tmp_path: Path) -> None:
    write_study_tree(tmp_path / "in", patients=1, studies=1, series=1, instances=1)
    before = snapshot(tmp_path / "in")
    result = run("-I", tmp_path / "in", "-O", tmp_path / "in" / "anon", "-c",
                 write_config(tmp_path))
    assert result.exit_code == 2
    assert "inside the input folder" in result.stderr
    assert snapshot(tmp_path / "in") == before
    assert not (tmp_path / "in" / "anon").exists()


def test_input_folder_inside_output_folder(tmp_path: Path) -> None:
    write_study_tree(tmp_path / "data" / "in", patients=1, studies=1, series=1, instances=1)
    result = run("-I", tmp_path / "data" / "in", "-O", tmp_path / "data", "-c",
                 write_config(tmp_path))
    assert result.exit_code == 2
    assert "inside the output folder" in result.stderr


@pytest.mark.parametrize("spelling", ["same", "dot", "link"])
def test_same_input_and_output_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    spelling: str) -> None:
    monkeypatch.chdir(tmp_path)
    source = one_file(tmp_path / "in.dcm")
    before = source.read_bytes()
    target = {"same": "in.dcm", "dot": "./sub/../in.dcm", "link": "link.dcm"}[spelling]
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.dcm").symlink_to(source)
    result = run("-i", "in.dcm", "-o", target, "-c", write_config(tmp_path))
    assert result.exit_code == 2
    assert "same file" in result.stderr
    assert source.read_bytes() == before


def test_same_input_and_output_folder(tmp_path: Path) -> None:
    write_study_tree(tmp_path / "in", patients=1, studies=1, series=1, instances=1)
    before = snapshot(tmp_path / "in")
    result = run("-I", tmp_path / "in", "-O", tmp_path / "in" / ".", "-c",
                 write_config(tmp_path))
    assert result.exit_code == 2
    assert "same" in result.stderr
    assert snapshot(tmp_path / "in") == before


def test_exit_codes_of_the_real_process(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    good = one_file(tmp_path / "good.dcm")
    assert run_process("-i", good, "-o", "out.dcm", "-c", config, cwd=tmp_path).returncode == 0
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"nothing")
    assert run_process("-i", bad, "-o", "x.dcm", "-c", config, cwd=tmp_path).returncode == 1
    assert run_process("-i", good, "-c", config, cwd=tmp_path).returncode == 2
    assert not (tmp_path / "x.dcm").exists()


# --- never a value, never a traceback -------------------------------------------------------


def test_no_element_value_in_messages(tmp_path: Path) -> None:
    """A file that fails on a malformed DA under a dateShift rule: the error names the file,
    the element and the rule; the planted name and the bad value appear nowhere."""
    bad = one_file(tmp_path / "in" / "bad.dcm", PatientName=PLANTED_NAME,
                   InstanceCreationDate=BAD_DATE)
    one_file(tmp_path / "in" / "good.dcm", index=1)
    config = write_config(tmp_path)
    for args in (["-i", bad, "-o", tmp_path / "out.dcm"],
                 ["-I", tmp_path / "in", "-O", tmp_path / "out"],
                 ["-i", bad, "-o", tmp_path / "out.dcm", "--validateInput"]):
        proc = run_process(*args, "-c", config, cwd=tmp_path)
        assert proc.returncode == 1
        errors = error_lines(proc.stderr)
        assert len(errors) == 1
        assert str(bad) in errors[0] and "(0008,0012) InstanceCreationDate [DA]" in errors[0]
        if "--validateInput" not in args:
            assert 'rules[4] {"tag": "DA", "method": "dateShift"}' in errors[0]
        for secret in ("Zzyzxquorp", "Plantedname", BAD_DATE, KEY):
            assert secret not in proc.stderr and secret not in proc.stdout
    assert not (tmp_path / "out.dcm").exists()
    assert (tmp_path / "out" / "good.dcm").exists() and not (tmp_path / "out" / "bad.dcm").exists()


def test_library_warnings_never_reach_stderr(tmp_path: Path) -> None:
    """pydicom warns quoting the value it finds odd (here a UID with letters, kept by the
    configuration and copied into the file meta): neither the CLI nor the library shows it."""
    source = one_file(tmp_path / "odd.dcm", SOPClassUID="1.2.840.Zzyzxquorp")
    proc = run_process("-i", source, "-o", "out.dcm", "-c", write_config(tmp_path),
                       cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    script = ("import sys, warnings; warnings.simplefilter('always');"
              "from dcmanon import Anonymizer, load_config;"
              "r = Anonymizer(load_config(sys.argv[1])).anonymize_file(sys.argv[2], sys.argv[3]);"
              "print(r.status)")
    lib = subprocess.run([sys.executable, "-c", script, write_config(tmp_path), source,
                          tmp_path / "lib.dcm"], capture_output=True, text=True, check=False,
                         env={**os.environ, "DCMANON_KEY": KEY}, timeout=300)
    assert lib.stdout == "done\n", lib.stderr
    assert "Zzyzxquorp" not in lib.stderr


def test_unexpected_error_is_one_clear_line(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception nobody foresaw (here injected into the writer) fails that file only."""
    def broken(*_: object, **__: object) -> None:
        raise AttributeError(f"value {PLANTED_NAME} cannot be encoded")

    monkeypatch.setattr("dcmanon.anonymizer.write_dicom_atomic", broken)  # pydicom's path
    monkeypatch.setattr("dcmanon.anonymizer.write_atomic", broken)  # the fast path
    one_file(tmp_path / "in" / "a.dcm")
    one_file(tmp_path / "in" / "b.dcm", index=1)
    result = run("-I", tmp_path / "in", "-O", tmp_path / "out", "-c", write_config(tmp_path))
    assert result.exit_code == 1
    errors = error_lines(result.stderr)
    assert len(errors) == 2
    assert all("unexpected AttributeError" in line for line in errors)
    assert "Zzyzxquorp" not in result.stderr


def test_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("dcmanon.anonymizer.Anonymizer.anonymize_file", interrupted)
    one_file(tmp_path / "in" / "a.dcm")
    result = run("-I", tmp_path / "in", "-O", tmp_path / "out", "-c", write_config(tmp_path))
    assert result.exit_code == 130
    assert "interrupted" in result.stderr


# --- file meta ------------------------------------------------------------------------------


def test_emptied_sop_instance_uid_is_written_empty_in_the_file_meta(tmp_path: Path) -> None:
    """A rule that empties SOPInstanceUID: the file is written (pydicom alone would refuse
    its empty MediaStorageSOPInstanceUID) and the original UID is nowhere in it."""
    source = one_file(tmp_path / "in.dcm")
    original = pydicom.dcmread(source).SOPInstanceUID
    config = write_config(tmp_path, {"rules": [
        {"tag": "SOPInstanceUID", "method": "redact"},
        {"tag": "SOPClassUID", "method": "remove"},
    ]})
    result = run("-i", source, "-o", tmp_path / "out.dcm", "-c", config)
    assert result.exit_code == 0, result.stderr
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert out.SOPInstanceUID == "" and "SOPClassUID" not in out
    assert out.file_meta.MediaStorageSOPInstanceUID == ""
    assert out.file_meta.MediaStorageSOPClassUID == pydicom.dcmread(source).SOPClassUID
    assert original.encode() not in (tmp_path / "out.dcm").read_bytes()


# --- --validateInput / --validateOutput -----------------------------------------------------


def test_validate_input_refuses_an_invalid_input_value(tmp_path: Path) -> None:
    source = one_file(tmp_path / "in.dcm", Manufacturer="x" * 80)  # LO holds 64 characters
    config = write_config(tmp_path)
    result = run("-i", source, "-o", tmp_path / "out.dcm", "-c", config)
    assert result.exit_code == 0, result.stderr  # no rule touches it: kept as it is
    result = run("-i", source, "-o", tmp_path / "checked.dcm", "-c", config, "--validateInput")
    assert result.exit_code == 1
    assert "(0008,0070) Manufacturer [LO]" in result.stderr and "x" * 80 not in result.stderr
    assert not (tmp_path / "checked.dcm").exists()


def test_unsupported_vr_fails_with_element_and_rule(tmp_path: Path) -> None:
    ref = require_reference()
    config = ref / "data" / "cli" / "configs" / "invalidOutputConfig.json"
    source = one_file(tmp_path / "in.dcm")
    for flags in ([], ["--validateInput"], ["--validateOutput"]):
        result = run("-i", source, "-o", tmp_path / "out.dcm", "-c", config, *flags)
        assert result.exit_code == 1
        errors = error_lines(result.stderr)
        assert len(errors) == 1
        assert "[US]: encrypt does not support VR US" in errors[0]
        assert 'rules[0] {"tag": "US", "method": "encrypt"}' in errors[0]
        assert not (tmp_path / "out.dcm").exists()


def test_validate_output_refuses_a_hash_in_a_date(tmp_path: Path) -> None:
    source = one_file(tmp_path / "in.dcm")
    config = write_config(tmp_path, {"rules": [{"tag": "StudyDate", "method": "cryptoHash"}],
                                     "parameters": {"cryptoHashKey": "123"}})
    result = run("-i", source, "-o", tmp_path / "out.dcm", "-c", config)
    assert result.exit_code == 0, result.stderr  # as the reference: written as asked
    hashed = str(pydicom.dcmread(tmp_path / "out.dcm").StudyDate)
    assert len(hashed) == 64
    result = run("-i", source, "-o", tmp_path / "checked.dcm", "-c", config, "--validateOutput")
    assert result.exit_code == 1
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "(0008,0020) StudyDate [DA]" in errors[0]
    assert hashed not in result.stderr
    assert not (tmp_path / "checked.dcm").exists()
    assert no_part_files(tmp_path)


# --- odd arguments that once gave tracebacks -------------------------------------------------


def test_missing_input_with_an_existing_output(tmp_path: Path) -> None:
    (tmp_path / "exists.dcm").write_bytes(b"an older output")
    result = run("-i", tmp_path / "missing.dcm", "-o", tmp_path / "exists.dcm", "-c",
                 write_config(tmp_path))
    assert result.exit_code == 1
    assert "missing.dcm: input file not found" in result.stderr
    assert (tmp_path / "exists.dcm").read_bytes() == b"an older output"


def test_key_file_that_is_not_text(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_bytes(bytes(range(128, 256)))
    result = run("-i", one_file(tmp_path / "a.dcm"), "-o", tmp_path / "out.dcm", "-c",
                 write_config(tmp_path), "--key-file", key_file)
    assert result.exit_code == 2
    assert "not UTF-8 text" in result.stderr
    assert not (tmp_path / "out.dcm").exists()


def test_configuration_nested_too_deeply(tmp_path: Path) -> None:
    config = tmp_path / "deep.json"
    config.write_text("[" * 100_000, encoding="utf-8")
    result = run("-i", one_file(tmp_path / "a.dcm"), "-o", tmp_path / "out.dcm", "-c", config)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"dcmanon: {config}: ")
    assert not (tmp_path / "out.dcm").exists()


def test_output_gets_the_usual_file_mode(tmp_path: Path) -> None:
    """Written under a private temporary name, the output then gets 0666 minus the umask."""
    result = run("-i", one_file(tmp_path / "a.dcm"), "-o", tmp_path / "out.dcm", "-c",
                 write_config(tmp_path))
    assert result.exit_code == 0, result.stderr
    mask = os.umask(0o022)
    os.umask(mask)
    assert (tmp_path / "out.dcm").stat().st_mode & 0o777 == 0o666 & ~mask


def test_ctrl_c_in_a_command_exits_130_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """check, scan, explain...: Ctrl-C is neither a traceback nor click's "Aborted!" with
    status 1 (which check and scan give to findings)."""
    from dcmanon.cli.options import guarded

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stopped:
        guarded(interrupted)
    assert stopped.value.code == 130
    assert capsys.readouterr().err == "dcmanon: interrupted: nothing was written\n"
