"""refreshUID against the reference's vectors (``vectors/refreshuid.json``).

dcmanon deliberately differs from the reference here (README, "Deviations"): new UIDs are
keyed and deterministic (``2.25.`` + 128 bits), each value of a multi-valued UID is mapped on
its own, an empty UID stays empty, and MediaStorageSOPInstanceUID follows the new
SOPInstanceUID. Cases about those have ``test_deviation_*`` tests of dcmanon's behaviour.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate

from dcmanon import Anonymizer, parse_config
from dcmanon.cli import main
from dcmanon.errors import UnsupportedVRError
from tests.conformance.vectors import (
    assert_each_case_taken_once,
    build_dataset,
    cases,
    parse_tag,
    require_reference,
    values_of,
)

VECTORS = "refreshuid.json"
NEW_UID = re.compile(r"^2\.25\.[1-9][0-9]*$")
KEY = "refresh-key-for-tests"
UNSUPPORTED = {
    "AE": ["(0008,0054)", "AE", ["TEST"]],
    "AS": ["(0010,1010)", "AS", ["100Y"]],
    "CS": ["(0008,0052)", "CS", ["0"]],
    "DS": ["(0010,1030)", "DS", ["53.000"]],
    "IS": ["(0008,2122)", "IS", ["10"]],
    "SH": ["(0010,2154)", "SH", ["TEST"]],
    "FD": ["(0012,0052)", "FD", [12345.0]],
    "FL": ["(0010,9431)", "FL", [12345.0]],
    "SL": ["(0018,6039)", "SL", [12345]],
    # The reference builds an SS element on a "US or SS" tag; an explicit SS is the same case.
    "SS(US)": ["(0028,0106)", "SS", [-5]],
    "UL": ["(0040,DB73)", "UL", [12345]],
    "US": ["(0008,1196)", "US", [10]],
    "SQ": ["(0008,1140)", "SQ", [[["(0008,1155)", "UI", ["1.2.3"]]]]],
}


# --- which cases each test takes (every case is taken by exactly one; see the coverage test) --

GROUPS = {
    "new_uid": lambda c: c["id"].startswith("refresh-"),
    "same_old_same_new": lambda c: c["id"] == "same-old-same-new",
    "cross_file": lambda c: c["id"] == "cross-file-consistency",
    "deviation_multi_valued": lambda c: c["id"] == "multi-valued",
    "deviation_empty": lambda c: c["id"] == "empty-UI",
    "unsupported": lambda c: c["id"].startswith("unsupported-"),
    "deviation_file_meta": lambda c: c["id"] == "file-meta-not-touched",
}


# --- helpers ---

def refresh_config(*selectors: str, key: str = KEY) -> Any:
    return parse_config({"rules": [{"tag": s, "method": "refreshUID"} for s in selectors],
                         "parameters": {"refreshUIDKey": key}})




def assert_new_uid(uid: str, old: str) -> None:
    assert uid != old
    assert NEW_UID.match(uid), uid
    assert len(uid) <= 64
    assert len(uid) - len("2.25.") <= 39  # a 128-bit number


# --- the vectors ---

@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["new_uid"]))
def test_new_uid_format(case: dict[str, Any]) -> None:
    ds = build_dataset([[case["tag"], case["vr"], case["input_values"]]])
    Anonymizer(refresh_config(case["tag"].split(")")[0] + ")"),
               validate_output=True).anonymize_dataset(ds)
    [uid] = values_of(ds, parse_tag(case["tag"]))
    assert_new_uid(uid, case["input_values"][0])


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["same_old_same_new"]))
def test_same_old_uid_same_new_uid_across_rules(case: dict[str, Any]) -> None:
    ds = build_dataset(case["input_dataset"])
    # One rule per element, as the reference's test uses separate processor instances.
    Anonymizer(refresh_config(*(t for t, _, _ in case["input_dataset"]))).anonymize_dataset(ds)
    new = [values_of(ds, parse_tag(t)) for t, _, _ in case["input_dataset"]]
    assert new[0] == new[1]
    assert_new_uid(new[0][0], case["input_dataset"][0][2][0])


def _series(folder: Path) -> tuple[Path, Path]:
    """Two files of one study and series; the second references the first (nested)."""
    folder.mkdir()
    first = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    first.save_as(folder / "a.dcm")
    second = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    second.SOPInstanceUID = first.SOPInstanceUID + ".2"
    reference = Dataset()
    reference.ReferencedSOPClassUID = first.SOPClassUID
    reference.ReferencedSOPInstanceUID = first.SOPInstanceUID
    second.ReferencedImageSequence = [reference]
    second.save_as(folder / "b.dcm")
    return folder / "a.dcm", folder / "b.dcm"


UID_RULES = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
             "ReferencedSOPInstanceUID"]


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["cross_file"]))
def test_cross_file_consistency_in_a_folder_run(case: dict[str, Any], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """In one folder run, a UID maps to the same new UID in every file (and in references)."""
    monkeypatch.delenv("DCMANON_KEY", raising=False)
    first, second = _series(tmp_path / "in")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rules": [{"tag": k, "method": "refreshUID"}
                                            for k in UID_RULES]}), encoding="utf-8")
    key_file = tmp_path / "secret.key"
    key_file.write_text("project secret\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["-I", str(tmp_path / "in"), "-O", str(tmp_path / "out"),
                                       "-c", str(config), "--key-file", str(key_file)])
    assert result.exit_code == 0, result.output
    a, b = (pydicom.dcmread(tmp_path / "out" / p.name) for p in (first, second))
    original = pydicom.dcmread(first)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert a.data_element(keyword).value == b.data_element(keyword).value
        assert_new_uid(a.data_element(keyword).value, original.data_element(keyword).value)
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["deviation_multi_valued"]))
def test_deviation_refreshuid_multivalued_each_value_mapped(case: dict[str, Any]) -> None:
    """Reference: the element collapses to ONE new UID keyed by the joined string. dcmanon:
    each value is mapped on its own, to the UID it gets anywhere else."""
    single = [["(0008,1155)", "UI", [v]] for v in case["input_values"]][:1]
    ds = build_dataset([[case["tag"], case["vr"], case["input_values"]], *single])
    Anonymizer(refresh_config(case["tag"].split(")")[0] + ")", "(0008,1155)"),
               validate_output=True).anonymize_dataset(ds)
    new = values_of(ds, parse_tag(case["tag"]))
    assert len(new) == len(case["input_values"])
    for uid, old in zip(new, case["input_values"], strict=True):
        assert_new_uid(uid, old)
    assert len(set(new)) == len(new)
    assert new[0] == values_of(ds, 0x00081155)[0]  # references keep resolving


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["deviation_empty"]))
def test_deviation_refreshuid_empty_uid_stays_empty(case: dict[str, Any]) -> None:
    """Reference: a zero-length UI element makes the map lookup throw; the file fails.
    dcmanon: an empty UID identifies nothing and stays empty (also inside a list)."""
    assert case["input_values"] == []
    ds = build_dataset([["(0008,0058)", "UI", case["input_values"]],
                        ["(0008,1155)", "UI", ["1.2.3", ""]]])
    counts = Anonymizer(refresh_config("UI")).anonymize_dataset(ds)
    assert counts == {"refreshUID": 2}
    assert values_of(ds, 0x00080058) == []
    new, empty = values_of(ds, 0x00081155)
    assert_new_uid(new, "1.2.3")
    assert empty == ""


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["unsupported"]))
def test_unsupported_vr_fails(case: dict[str, Any]) -> None:
    if case["vr"].startswith("OB"):
        ds = Dataset()
        value = (encapsulate([b"frag", b"ment"]) if "encapsulated" in case["vr"]
                 else b"test")
        element = DataElement(0x7FE00010, "OB", value)
        element.is_undefined_length = "encapsulated" in case["vr"]
        ds[0x7FE00010] = element
        rule, vr = "(7FE0,0010)", "OB"
    else:
        spec = UNSUPPORTED[case["vr"]]
        ds, rule, vr = build_dataset([spec]), spec[0], spec[1]
    with pytest.raises(UnsupportedVRError) as caught:
        Anonymizer(refresh_config(rule)).anonymize_dataset(ds)
    assert caught.value.vr == vr


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["deviation_file_meta"]))
def test_deviation_refreshuid_media_storage_uid_follows_new_sop_instance_uid(
        case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reference: MediaStorageSOPInstanceUID keeps the original UID (the file meta is never
    touched). dcmanon: it follows the refreshed SOPInstanceUID, as PS3.10 requires."""
    monkeypatch.delenv("DCMANON_KEY", raising=False)
    reference = require_reference()
    config = parse_config((reference / "configuration.json").read_text(encoding="utf-8-sig"))
    source, target = reference / case["input_file"], tmp_path / "out.dcm"
    result = Anonymizer(config, pixels="off").anonymize_file(source, target)  # as the reference
    assert result.status == "done", result.error
    before, after = pydicom.dcmread(source), pydicom.dcmread(target)
    original = case["expected"]["(0002,0003) MediaStorageSOPInstanceUID"].split()[-1]
    assert before.file_meta.MediaStorageSOPInstanceUID == original
    assert_new_uid(after.SOPInstanceUID, before.SOPInstanceUID)
    assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
    assert after.file_meta.MediaStorageSOPClassUID == after.SOPClassUID


def test_every_vector_case_is_exercised() -> None:
    assert_each_case_taken_once(VECTORS, GROUPS)


# --- keyed and deterministic: separate runs agree with the same key, not with another ---

def _cli_run(source: Path, target: Path, config: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DCMANON_KEY"}
    done = subprocess.run([sys.executable, "-m", "dcmanon", "-i", str(source), "-o",
                           str(target), "-c", str(config)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def _uids(path: Path) -> dict[str, str]:
    ds = pydicom.dcmread(path)
    return {k: str(ds.data_element(k).value) for k in UID_RULES[:4]}


def test_refreshuid_same_key_same_uids_across_separate_runs(tmp_path: Path) -> None:
    source = tmp_path / "in.dcm"
    pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False)).save_as(source)
    configs = {}
    for name, key in (("a", "first key"), ("b", "first key"), ("c", "second key")):
        configs[name] = tmp_path / f"{name}.json"
        configs[name].write_text(json.dumps({
            "rules": [{"tag": "UI", "method": "refreshUID"}],
            "parameters": {"refreshUIDKey": key}}), encoding="utf-8")
    for name, config in configs.items():
        _cli_run(source, tmp_path / f"{name}.dcm", config)
    original = _uids(source)
    first, again, other = (_uids(tmp_path / f"{n}.dcm") for n in "abc")
    assert first == again
    for keyword, uid in first.items():
        assert_new_uid(uid, original[keyword])
        assert other[keyword] != uid
        assert_new_uid(other[keyword], original[keyword])


def test_refreshuid_without_key_differs_between_runs_and_warns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No key at all: a random key for the run (a documented deviation), with a warning."""
    monkeypatch.delenv("DCMANON_KEY", raising=False)
    source = tmp_path / "in.dcm"
    pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False)).save_as(source)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rules": [{"tag": "UI", "method": "refreshUID"}]}),
                      encoding="utf-8")
    runner = CliRunner()
    outputs = []
    for name in ("a", "b"):
        result = runner.invoke(main, ["-i", str(source), "-o", str(tmp_path / f"{name}.dcm"),
                                      "-c", str(config)])
        assert result.exit_code == 0, result.output
        assert "warning" in result.output and "refreshUID" in result.output
        outputs.append(_uids(tmp_path / f"{name}.dcm"))
    assert all(outputs[0][k] != outputs[1][k] for k in outputs[0])


def test_refreshuid_padding_does_not_change_the_new_uid() -> None:
    """A UID read with its NUL padding maps like the bare UID (one identity, one new UID)."""
    ds = Dataset()
    ds[0x00081155] = DataElement(0x00081155, "UI", "1.2.3\0")
    ds[0x00080014] = DataElement(0x00080014, "UI", "1.2.3")
    Anonymizer(refresh_config("UI")).anonymize_dataset(ds)
    assert values_of(ds, 0x00081155) == values_of(ds, 0x00080014)
