"""The reference's command-line and file-level vectors, and its data files, through our CLI.

Covers ``vectors/cli.json``, ``vectors/file_level.json`` and the reference's data files
(``data/samples``, ``data/cli``, ``data/core``). Every run goes through the real command line
(``python -m dcmanon`` in a subprocess), in a temporary copy of the reference's data, with the
shipped ``configuration.json`` (tests/data/microsoft).

Where dcmanon deviates on purpose (docs/deviations.md; POLICY.md), the
vector is not run as conformance: a ``test_deviation_...`` test asserts what dcmanon does
instead. Every case of cli.json is classified below, and a test checks that none is left out.

The 89-year rule uses the real date in the CLI, and the vectors were made before any of their
dates was 89 years old: a date that is by now (lung.dcm's 1959 dates from 2048 on, the others
from 2089 on) is expected dropped where the vector shifts it (``as_of_today``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset, FileDataset
from pydicom.multival import MultiValue

from tests.conformance.vectors import REFERENCE, all_cases, cases, parse_tag, require_reference

pytestmark = pytest.mark.conformance

KEY = "dcmanon-conformance-test-secret"
"""Project secret of the runs (keys refreshUID; the shipped configuration keys the rest)."""

SOP_INSTANCE_UID = 0x00080018

# cli.json: what each case is. Conforming cases are run as the reference specifies them.
CLI_CONFORMING = {
    "file-default-config", "file-newConfig", "folder-default-config", "file-private-default",
    "file-private-config", "derived-cli-0", "derived-cli-6", "derived-cli-7",
}
CLI_DEVIATING = {
    "args--i DicomFiles/I341.dcm": "incomplete arguments: exit 2 (usage), not -1",
    "args--o DicomFiles/I341.dcm": "incomplete arguments: exit 2 (usage), not -1",
    "args--I DicomFiles/I341.dcm": "incomplete arguments: exit 2 (usage), not -1",
    "args--O DicomFiles/I341.dcm": "incomplete arguments: exit 2 (usage), not -1",
    "args-same-file": "same input and output: exit 2, not -1",
    "args-same-folder": "same input and output folder: exit 2, not -1",
    "file-unsupported-vr": "a failing file: exit 1, not -1; the error names element and rule",
    "derived-cli-1": "unknown option: exit 2, not 0",
    "derived-cli-2": "missing configuration: exit 2, not -1",
    "derived-cli-3": "missing input file: exit 1, not -1",
    "derived-cli-4": "non-DICOM input: exit 1, not -1",
    "derived-cli-5": "folder mode goes on after a failing file: exit 1, the others written",
}


# --- helpers -------------------------------------------------------------------------------


def run_cli(*args: object, cwd: Path, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dcmanon ARGS`` in ``cwd``; the project secret is ``key`` only."""
    env = {name: value for name, value in os.environ.items() if name != "DCMANON_KEY"}
    if key is not None:
        env["DCMANON_KEY"] = key
    # --pixels off: the reference never touches pixels, and its images (DERIVED) would
    # want OCR.
    command = [sys.executable, "-m", "dcmanon", "--pixels", "off", *map(str, args)]
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def read(path: Path) -> FileDataset:
    return pydicom.dcmread(path)


def values(elem: Any) -> list[str]:
    """An element's values as the vectors write them (empty list: zero-length value)."""
    value = elem.value
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, MultiValue | list):
        return [str(v) for v in value]
    return [str(value)]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def files_under(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def shipped_config() -> dict[str, Any]:
    text = (require_reference() / "configuration.json").read_text(encoding="utf-8-sig")
    config: dict[str, Any] = json.loads(text)
    return config


def over_89_years(value: str, today: dt.date | None = None) -> bool:
    """Whether a DA or DT value is 89 years old or more (on its 89th anniversary: dropped)."""
    day = dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    try:
        limit = day.replace(year=day.year + 89)
    except ValueError:  # 29 February, in a year that has none
        limit = dt.date(day.year + 89, 2, 28)
    return limit <= (today or dt.date.today())


def as_of_today(before: list[str], after: list[str], vr: str,
                today: dt.date | None = None) -> list[str]:
    """A date's expected values in a run today: a value the vector changes (shifted, or
    cut to its year) is dropped once the original is 89 years old."""
    if vr not in ("DA", "DT") or before == after or len(before) != len(after):
        return after  # kept as it is, or emptied: the same whatever the date
    return [a for b, a in zip(before, after, strict=True) if not over_89_years(b, today)]


def test_the_89_year_rule_of_the_expectations() -> None:
    """lung.dcm's ContentDate (19591231, shifted to 19591229 by the vector) is dropped from
    its 89th anniversary on; a kept or emptied date is the same whatever the date."""
    assert not over_89_years("19591231", dt.date(2048, 12, 30))
    assert over_89_years("19591231", dt.date(2048, 12, 31))
    assert over_89_years("20180803160127.595+0100", dt.date(2107, 8, 3))
    assert not over_89_years("19600229", dt.date(2049, 2, 27))
    assert over_89_years("19600229", dt.date(2049, 2, 28))
    shifted = (["19591231"], ["19591229"], "DA")
    assert as_of_today(*shifted, today=dt.date(2048, 12, 30)) == ["19591229"]
    assert as_of_today(*shifted, today=dt.date(2048, 12, 31)) == []
    assert as_of_today(["19591231"], ["19591231"], "DA", dt.date(2090, 1, 1)) == ["19591231"]
    assert as_of_today(["19600101"], [], "DA", dt.date(2090, 1, 1)) == []
    assert as_of_today(["1959"], ["ANONY"], "LO", dt.date(2090, 1, 1)) == ["ANONY"]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working folder laid out as the vectors expect: ``data/`` (a copy of the reference's
    data), ``DicomFiles/`` (the reference test's input folder) and ``configuration.json`` (a
    link to the shipped configuration in tests/data/microsoft)."""
    ref = require_reference()
    shutil.copytree(ref / "data", tmp_path / "data")
    shutil.copytree(ref / "data" / "cli" / "input", tmp_path / "DicomFiles")
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the reference's copy is read-only
    (tmp_path / "configuration.json").symlink_to(ref / "configuration.json")
    return tmp_path


def refreshed_uids(source: Dataset, expected: Dataset) -> set[int]:
    """UI elements the reference refreshed (random in its output, so not comparable)."""
    return {int(elem.tag) for elem in expected
            if elem.VR == "UI" and elem.tag in source and values(elem)
            and values(elem) != values(source[elem.tag])}


def compare_with_expected(ours: Dataset, expected: Dataset, source: Dataset) -> None:
    """Same top-level tags in the same order; same values except refreshed UIDs.

    Sequence items are compared by count only: dcmanon processes their contents on purpose
    (see the test_deviation_nested_... tests).
    """
    assert list(ours.keys()) == list(expected.keys())
    refreshed = refreshed_uids(source, expected)
    for b in expected:
        tag = b.tag
        a = ours[tag]
        if int(tag) in refreshed:
            assert all(v.startswith("2.25.") for v in values(a)), tag
            assert values(a) != values(source[tag]), tag
        elif b.VR == "SQ":
            assert len(a.value) == len(b.value), tag
        elif b.VR in ("DA", "DT") and tag in source:
            assert values(a) == as_of_today(values(source[tag]), values(b), b.VR), tag
        else:
            assert a.value == b.value, f"{tag} {b.keyword}"


# --- cli.json ------------------------------------------------------------------------------


def test_every_cli_case_is_classified() -> None:
    ids = {case["id"] for case in all_cases("cli.json")}
    assert ids == CLI_CONFORMING | set(CLI_DEVIATING)
    assert not CLI_CONFORMING & set(CLI_DEVIATING)


@pytest.mark.parametrize("case", cases("cli.json", lambda c: c["id"] in {
    "file-default-config", "file-newConfig", "file-private-default", "file-private-config"}))
def test_cli_file(case: dict[str, Any], workdir: Path) -> None:
    argv = case["argv"]
    proc = run_cli(*argv, cwd=workdir)
    assert proc.returncode == case["expected_exit_code"] == 0, proc.stderr
    source = read(workdir / option(argv, "-i"))
    compare_with_expected(read(workdir / option(argv, "-o")),
                          read(REFERENCE / case["expected_file"]), source)


@pytest.mark.parametrize("case", cases("cli.json", lambda c: c["id"] == "folder-default-config"))
def test_cli_folder(case: dict[str, Any], workdir: Path) -> None:
    argv = case["argv"]
    proc = run_cli(*argv, cwd=workdir)
    assert proc.returncode == case["expected_exit_code"] == 0, proc.stderr
    input_dir, output_dir = workdir / option(argv, "-I"), workdir / option(argv, "-O")
    assert files_under(output_dir) == {Path(p).relative_to(option(argv, "-O"))
                                       for p in case["expected_files"]}
    for produced, expected in case["expected_files"].items():
        name = Path(produced).name
        compare_with_expected(read(workdir / produced), read(REFERENCE / expected),
                              read(input_dir / name))
    # "UIDs refreshed consistently across the files of one run": I290 and I341 share a study.
    i290, i341 = read(output_dir / "I290.dcm"), read(output_dir / "I341.dcm")
    assert read(input_dir / "I290.dcm").StudyInstanceUID == \
        read(input_dir / "I341.dcm").StudyInstanceUID
    assert i290.StudyInstanceUID == i341.StudyInstanceUID
    assert i290.StudyInstanceUID.startswith("2.25.")


@pytest.mark.parametrize("case", cases("cli.json", lambda c: c["id"] == "derived-cli-0"))
def test_cli_help(case: dict[str, Any], workdir: Path) -> None:
    proc = run_cli(*case["argv"], cwd=workdir)
    assert proc.returncode == case["expected_exit_code"] == 0
    for name in ("--inputFile", "--outputFile", "--configFile", "--inputFolder",
                 "--outputFolder", "--validateInput", "--validateOutput"):
        assert name in proc.stdout


@pytest.mark.parametrize("case", cases("cli.json", lambda c: c["id"] == "derived-cli-6"))
def test_cli_file_mode_wins(case: dict[str, Any], workdir: Path) -> None:
    shutil.copy(workdir / "DicomFiles" / "I341.dcm", workdir / "a.dcm")
    proc = run_cli(*case["argv"], cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert read(workdir / "b.dcm").PatientName == ""
    assert not (workdir / "y").exists()


@pytest.mark.parametrize("case", cases("cli.json", lambda c: c["id"] == "derived-cli-7"))
def test_cli_creates_output_folder_and_overwrites(case: dict[str, Any], workdir: Path) -> None:
    shutil.copy(workdir / "DicomFiles" / "I341.dcm", workdir / "a.dcm")
    proc = run_cli(*case["argv"], cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    output = workdir / "o" / "b.dcm"
    first = read(output)
    output.write_bytes(b"an older file")
    proc = run_cli(*case["argv"], cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert read(output).SOPInstanceUID == first.SOPInstanceUID  # keyed: the same output
    assert files_under(workdir / "o") == {Path("b.dcm")}


@pytest.mark.parametrize("case", cases("cli.json", lambda c: c["id"].startswith("args--")))
def test_deviation_incomplete_arguments_exit_2(case: dict[str, Any], workdir: Path) -> None:
    before = files_under(workdir)
    proc = run_cli(*case["argv"], cwd=workdir)
    assert case["expected_exit_code"] == -1
    assert proc.returncode == 2
    # Either the missing partner option is asked for, or (-I given a file) the option refused.
    assert ("-i FILE -o FILE" in proc.stderr and "-I FOLDER -O FOLDER" in proc.stderr) or \
        (re.search("'-[IO]'", proc.stderr) and "is a file" in proc.stderr)
    assert files_under(workdir) == before


@pytest.mark.parametrize("case", cases("cli.json", lambda c: c["id"] in {
    "args-same-file", "args-same-folder"}))
def test_deviation_same_input_and_output_exit_2(case: dict[str, Any], workdir: Path) -> None:
    before = {p: p.read_bytes() for p in (workdir / "DicomFiles").iterdir()}
    proc = run_cli(*case["argv"], cwd=workdir)
    assert case["expected_exit_code"] == -1
    assert proc.returncode == 2
    assert "same" in proc.stderr
    assert {p: p.read_bytes() for p in (workdir / "DicomFiles").iterdir()} == before


@pytest.mark.parametrize("case", cases("cli.json", lambda c: c["id"] == "file-unsupported-vr"))
def test_deviation_unsupported_vr_exit_1(case: dict[str, Any], workdir: Path) -> None:
    argv = case["argv"]
    proc = run_cli(*argv, cwd=workdir)
    assert case["expected_exit_code"] == -1
    assert proc.returncode == 1
    assert case["expected_output_written"] is False
    assert not (workdir / option(argv, "-o")).exists()
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1
    assert option(argv, "-i") in errors[0]
    assert re.search(r"\([0-9A-F]{4},[0-9A-F]{4}\) \w+ \[US\]", errors[0])
    assert 'rules[0] {"tag": "US", "method": "encrypt"}' in errors[0]
    assert not list(workdir.glob(".dcmanon-*.part"))


@pytest.mark.parametrize("case", cases("cli.json", lambda c: c["id"] == "derived-cli-1"))
def test_deviation_unknown_option_exit_2(case: dict[str, Any], workdir: Path) -> None:
    proc = run_cli(*case["argv"], cwd=workdir)
    assert case["expected_exit_code"] == 0
    assert proc.returncode == 2
    assert "--bogus" in proc.stderr
    assert not (workdir / "b.dcm").exists()


@pytest.mark.parametrize("case", cases("cli.json", lambda c: c["id"] == "derived-cli-2"))
def test_deviation_missing_configuration_exit_2(case: dict[str, Any], workdir: Path) -> None:
    # As in the reference, the configuration is checked first: in.dcm does not exist either.
    proc = run_cli(*case["argv"], cwd=workdir)
    assert proc.returncode == 2
    assert "missing.json" in proc.stderr and "not found" in proc.stderr
    assert "in.dcm" not in proc.stderr
    assert not (workdir / "out.dcm").exists()


@pytest.mark.parametrize("case", cases("cli.json", lambda c: c["id"] == "derived-cli-3"))
def test_deviation_missing_input_exit_1(case: dict[str, Any], workdir: Path) -> None:
    proc = run_cli(*case["argv"], cwd=workdir)
    assert proc.returncode == 1
    assert "missing.dcm" in proc.stderr and "not found" in proc.stderr
    assert not (workdir / "out.dcm").exists()


@pytest.mark.parametrize("case", cases("cli.json", lambda c: c["id"] == "derived-cli-4"))
def test_deviation_non_dicom_input_exit_1(case: dict[str, Any], workdir: Path) -> None:
    (workdir / "notdicom.dcm").write_text("This is not a DICOM file.\n")
    proc = run_cli(*case["argv"], cwd=workdir)
    assert proc.returncode == 1
    # One line for the file (the reference's configuration also earns a weak-key warning).
    lines = [line for line in proc.stderr.splitlines()
             if not line.startswith("dcmanon: warning: weak key")]
    assert len(lines) == 1
    assert "notdicom.dcm" in proc.stderr and "not a DICOM file" in proc.stderr
    assert not (workdir / "out.dcm").exists()


@pytest.mark.parametrize("case", cases("cli.json", lambda c: c["id"] == "derived-cli-5"))
def test_deviation_folder_mode_goes_on_after_failing_file(case: dict[str, Any],
                                                          workdir: Path) -> None:
    (workdir / "in" / "sub").mkdir(parents=True)
    shutil.copy(workdir / "DicomFiles" / "I290.dcm", workdir / "in" / "a.dcm")
    (workdir / "in" / "b.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"broken")
    shutil.copy(workdir / "DicomFiles" / "I341.dcm", workdir / "in" / "sub" / "c.dcm")
    proc = run_cli(*case["argv"], "-c", "configuration.json", cwd=workdir)
    assert proc.returncode == 1
    assert files_under(workdir / "out") == {Path("a.dcm"), Path("sub"), Path("sub/c.dcm")}
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "b.dcm" in errors[0]
    assert "2 anonymized, 1 failed" in proc.stderr
    assert proc.stdout == ""  # the reference prints progress on stdout; dcmanon on stderr


def test_deviation_default_configuration_absent(tmp_path: Path) -> None:
    # The reference fails without ./configuration.json; dcmanon applies the PS3.15 Basic Profile.
    ref = require_reference()
    proc = run_cli("-i", ref / "data" / "cli" / "input" / "I341.dcm", "-o", "out.dcm",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    output = pydicom.dcmread(tmp_path / "out.dcm")
    assert output.PatientIdentityRemoved == "YES"
    assert "basic profile" in output.DeidentificationMethod


# --- file_level.json ----------------------------------------------------------------------


def anonymize_case(case: dict[str, Any], workdir: Path, key: str = KEY) -> tuple[Path, Path]:
    source = workdir / case["input_file"]
    output = workdir / "out" / Path(case["input_file"]).name
    proc = run_cli("-i", source, "-o", output, "-c", REFERENCE / case["config"], cwd=workdir,
                   key=key)
    assert proc.returncode == 0, proc.stderr
    return source, output


@pytest.mark.parametrize("case", cases("file_level.json"))
def test_file_level(case: dict[str, Any], workdir: Path) -> None:
    source, output = anonymize_case(case, workdir)
    before, after = read(source), read(output)
    diff = case["expected_diff"]
    for entry in diff["removed"]:
        tag = parse_tag(entry)
        assert tag in before, entry
        assert tag not in after, entry
    for change in diff["changed"]:
        tag = parse_tag(change["tag"])
        assert tag in after, change
        if isinstance(change["to"], dict):
            assert len(before[tag].value) == change["from"]["sq_items"]
            assert len(after[tag].value) == change["to"]["sq_items"]
        else:
            assert values(before[tag]) == change["from"], change
            assert values(after[tag]) == as_of_today(change["from"], change["to"],
                                                     before[tag].VR), change
    refreshed = {parse_tag(entry) for entry in diff["refreshed_uids_(2.25.*_random)"]}
    for tag in refreshed:
        assert values(after[tag])[0].startswith("2.25."), tag
        assert values(after[tag]) != values(before[tag]), tag
    assert diff["added"] == []
    assert set(after.keys()) <= set(before.keys())
    # Every top-level element not listed is unchanged (sequences: see the deviation tests).
    listed = {parse_tag(e) for e in diff["removed"]} | refreshed | {
        parse_tag(c["tag"]) for c in diff["changed"]}
    for elem in after:
        if int(elem.tag) not in listed and elem.VR != "SQ":
            assert elem.value == before[elem.tag].value, elem.tag
    meta = diff.get("file_meta", {})
    for keyword in ("TransferSyntaxUID", "MediaStorageSOPClassUID"):
        if keyword in meta:
            assert after.file_meta[keyword].value == meta[keyword]["expected"]
    if "expected_file" in case:
        compare_with_expected(after, read(REFERENCE / case["expected_file"]), before)


@pytest.mark.parametrize("case", cases("file_level.json"))
def test_deviation_media_storage_sop_instance_uid_follows(case: dict[str, Any],
                                                          workdir: Path) -> None:
    source, output = anonymize_case(case, workdir)
    before, after = read(source), read(output)
    new = str(after.get("SOPInstanceUID", "") or "")
    assert after.file_meta.MediaStorageSOPInstanceUID == new
    original = str(before.SOPInstanceUID)
    if new != original:
        # The reference keeps the original UID in the file meta; it appears nowhere here.
        meta = case["expected_diff"].get("file_meta", {})
        if "MediaStorageSOPInstanceUID" in meta:
            assert meta["MediaStorageSOPInstanceUID"]["expected"] == original
        assert original.encode() not in output.read_bytes()


def test_deviation_nested_sequences_are_processed_i341(workdir: Path) -> None:
    """The reference leaves sequence contents alone; the shipped rules apply inside them."""
    source = workdir / "DicomFiles" / "I341.dcm"
    proc = run_cli("-i", source, "-o", "out.dcm", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    before = read(source).ContributingEquipmentSequence[0]
    after = read(workdir / "out.dcm").ContributingEquipmentSequence[0]
    assert "StationName" in before and "StationName" not in after  # remove rule #270
    assert "ContributionDescription" in before and "ContributionDescription" not in after
    assert before.ContributionDateTime == "20180803160127.595+0100"
    # DT catch-all dateShift: -23 days (SeriesInstance scope, key 123), midnight, offset kept.
    assert re.fullmatch(r"20180711000000(\.0+)?\+0100", str(after.ContributionDateTime)) or (
        over_89_years(before.ContributionDateTime) and after.ContributionDateTime == "")
    assert after.Manufacturer == before.Manufacturer  # not selected by any rule: kept


def test_deviation_nested_sequences_are_processed_lung(workdir: Path) -> None:
    source = workdir / "data" / "samples" / "lung.dcm"
    proc = run_cli("-i", source, "-o", "out.dcm", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    after = read(workdir / "out.dcm")

    def versions(ds: Dataset) -> Iterator[str]:
        for elem in ds.iterall():
            if elem.tag == 0x00080106:  # ContextGroupVersion (DT), only inside sequences
                yield str(elem.value)

    assert list(versions(read(source))) == ["20020904000000.000000"] * 4
    shifted = list(versions(after))
    assert len(shifted) == 4
    # Shifted by -2 days, like ContentDate at the top level (file_level.json).
    assert all(re.fullmatch(r"20020902000000(\.0+)?", v) for v in shifted) or (
        over_89_years("20020904") and shifted == [""] * 4)
    assert "DateOfLastCalibration" in after and after.DateOfLastCalibration == ""


def test_deviation_nested_uids_refreshed_like_top_level(workdir: Path) -> None:
    """A UID referenced inside a sequence maps to the same new UID as the instance itself."""
    config = shipped_config()
    config["rules"].insert(0, {"tag": "SourceImageSequence", "method": "keep"})
    (workdir / "keep-source.json").write_text(json.dumps(config), encoding="utf-8")
    folder = workdir / "in"
    folder.mkdir()
    i341 = read(workdir / "DicomFiles" / "I341.dcm")
    referenced = str(i341.SourceImageSequence[0].ReferencedSOPInstanceUID)
    shutil.copy(workdir / "DicomFiles" / "I341.dcm", folder / "I341.dcm")
    predecessor = read(workdir / "DicomFiles" / "I290.dcm")
    predecessor.SOPInstanceUID = referenced
    predecessor.file_meta.MediaStorageSOPInstanceUID = referenced
    predecessor.save_as(folder / "predecessor.dcm", enforce_file_format=True)
    proc = run_cli("-I", folder, "-O", workdir / "out", "-c", "keep-source.json", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    nested = read(workdir / "out" / "I341.dcm").SourceImageSequence[0].ReferencedSOPInstanceUID
    assert nested.startswith("2.25.") and nested != referenced
    assert nested == read(workdir / "out" / "predecessor.dcm").SOPInstanceUID


def test_deviation_refresh_uid_keyed_and_deterministic(workdir: Path) -> None:
    source = workdir / "DicomFiles" / "I341.dcm"
    uids = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")

    def run(name: str, key: str) -> tuple[str, ...]:
        proc = run_cli("-i", source, "-o", name, cwd=workdir, key=key)
        assert proc.returncode == 0, proc.stderr
        assert "random key" not in proc.stderr
        ds = read(workdir / name)
        return tuple(str(ds[keyword].value) for keyword in uids)

    first, again, other = run("a.dcm", "key-one"), run("b.dcm", "key-one"), run("c.dcm", "k2")
    assert first == again
    assert all(a != b for a, b in zip(first, other, strict=True))
    assert all(re.fullmatch(r"2\.25\.[1-9][0-9]*", uid) and len(uid) <= 64 for uid in first)


def test_deviation_params_do_not_leak(workdir: Path) -> None:
    """Shipped rules #233 (RTPlanLabel, params ANONY) and #302 (VerifyingOrganization)."""
    ds = read(workdir / "DicomFiles" / "I341.dcm")
    ds.RTPlanLabel = "PLAN LABEL"
    ds.VerifyingOrganization = "Fictional Verifying Org"
    ds.save_as(workdir / "plan.dcm", enforce_file_format=True)
    proc = run_cli("-i", "plan.dcm", "-o", "out.dcm", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    after = read(workdir / "out.dcm")
    assert after.RTPlanLabel == "ANONY"
    assert after.VerifyingOrganization == "ANONYMOUS"  # the reference writes ANONY


def test_deviation_numeric_tag_selects_private_element(workdir: Path) -> None:
    """(0013,1010) is a private element of creator CTP in lung.dcm; the reference's numeric
    selector does not match it, dcmanon's does."""
    config = {"rules": [{"tag": "(0013,1010)", "method": "redact"}]}
    (workdir / "private.json").write_text(json.dumps(config), encoding="utf-8")
    source = workdir / "data" / "samples" / "lung.dcm"
    proc = run_cli("-i", source, "-o", "out.dcm", "-c", "private.json", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    before, after = read(source), read(workdir / "out.dcm")
    assert before[0x00130010].value == "CTP" and values(before[0x00131010])
    assert after[0x00131010].value in ("", b"", None)
    assert after[0x00131013].value == before[0x00131013].value


# --- data/samples -------------------------------------------------------------------------


def test_samples_folder(workdir: Path) -> None:
    samples = workdir / "data" / "samples"
    for name in ("I290.dcm", "I341.dcm"):
        assert (samples / name).read_bytes() == (workdir / "DicomFiles" / name).read_bytes()
    proc = run_cli("-I", samples, "-O", "out", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert files_under(workdir / "out") == {Path("I290.dcm"), Path("I341.dcm"),
                                            Path("lung.dcm")}
    for name in ("I290.dcm", "I341.dcm", "lung.dcm"):
        after = read(workdir / "out" / name)
        assert after.PatientName == "" and after.PatientID == ""


# --- data/core ----------------------------------------------------------------------------


def core(workdir: Path, *parts: str) -> Path:
    return workdir.joinpath("data", "core", *parts)


def test_core_engine_configuration(workdir: Path) -> None:
    """UnchangedValue.dcm (the engine test's dataset) + configuration-test-engine.json."""
    source = core(workdir, "expected", "UnchangedValue.dcm")
    proc = run_cli("-i", source, "-o", "out.dcm", "-c",
                   core(workdir, "configs", "configuration-test-engine.json"), cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    compare_with_expected(read(workdir / "out.dcm"),
                          read(core(workdir, "expected", "Anonymized.dcm")), read(source))


def test_core_invalid_string_output(workdir: Path) -> None:
    """cryptoHash on AE/AS/CS/DS writes values their VRs do not allow: written as they are."""
    source = core(workdir, "expected", "UnchangedValue.dcm")
    config = core(workdir, "configs", "configuration-invalid-string-output.json")
    proc = run_cli("-i", source, "-o", "out.dcm", "-c", config, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    expected = read(core(workdir, "expected", "Invalid-String-Format.dcm"))
    compare_with_expected(read(workdir / "out.dcm"), expected, read(source))
    # With --validateOutput the file fails and nothing is written.
    proc = run_cli("-i", source, "-o", "checked.dcm", "-c", config, "--validateOutput",
                   cwd=workdir)
    assert proc.returncode == 1
    assert not (workdir / "checked.dcm").exists()
    assert re.search(r"\([0-9A-F]{4},[0-9A-F]{4}\) \w+ \[(AE|AS|CS|DS)\]", proc.stderr)
    for value in ("976feb2c9f52ff3c", "2e7acefff0307262", "0329e399cd57ed8b", "92b95e021c4059"):
        assert value not in proc.stderr


def test_core_sample_configuration(workdir: Path) -> None:
    source = core(workdir, "expected", "UnchangedValue.dcm")
    proc = run_cli("-i", source, "-o", "out.dcm", "-c",
                   core(workdir, "configs", "configuration-test-sample.json"), cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    compare_with_expected(read(workdir / "out.dcm"), read(source), read(source))


@pytest.mark.parametrize(("name", "location"), [
    ("configuration-custom.json", "rules[0].method"),  # "mask": the reference's CLI fails too
    ("configuration-unsupported-method.json", "rules[0].method"),
    ("configuration-miss-tag.json", "rules[0]"),
    ("configuration-invalid-DicomTag.json", "rules[0].tag"),
    ("configuration-invalid-parameters.json", "rules[1].params"),
])
def test_core_configuration_refused(workdir: Path, name: str, location: str) -> None:
    """Configurations the reference refuses (errors 1002-1004, a Json.NET error): refused
    before any file is read (exit 2, the reference's -1 is the exit-code deviation)."""
    proc = run_cli("-i", core(workdir, "expected", "UnchangedValue.dcm"), "-o", "out/x.dcm",
                   "-c", core(workdir, "configs", name), cwd=workdir)
    assert proc.returncode == 2
    assert f"  {location}" in proc.stderr
    assert not (workdir / "out").exists()


@pytest.mark.parametrize("name", ["configuration-miss-rules.json", "rules-settings.json"])
def test_deviation_configuration_without_rules_refused(workdir: Path, name: str) -> None:
    """The reference crashes at run time (NullReferenceException); dcmanon refuses it."""
    proc = run_cli("-i", core(workdir, "expected", "UnchangedValue.dcm"), "-o", "out/x.dcm",
                   "-c", core(workdir, "configs", name), cwd=workdir)
    assert proc.returncode == 2
    assert "rules" in proc.stderr
    assert not (workdir / "out").exists()
