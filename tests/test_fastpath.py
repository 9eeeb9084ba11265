"""The fast path writes the file the pydicom path writes, byte for byte.

Every DICOM file the test suite has (pydicom's bundled test files, the reference's sample
files in tests/data, synthetic patients in both VR forms, the profile-marker dataset with every
attribute of Table E.1-1 at three depths) is anonymized twice, with several configurations: once
by the fast path, once by pydicom's. The outputs, the actions counted and the flags must be the
same; a file the fast path does not handle must take pydicom's path, never fail on its own.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import ImplicitVRLittleEndian

from dcmanon import Anonymizer, parse_config
from dcmanon.config.loader import Config
from dcmanon.io.rawdataset import NotPlain
from dcmanon.testing import make_instance, make_patient
from tests.conformance.vectors import REFERENCE, encapsulated_file
from tests.test_profile_markers import _dataset as marker_dataset

TEST_FILES = Path(get_testdata_file("CT_small.dcm", download=False) or "").parent
TODAY = dt.date(2026, 11, 22)
SECRET = "fast-path-test"
CONFIGS: dict[str, object] = {
    "basic": {"profile": "basic"},
    "research": {"profile": "research"},
    "all-options": {"profile": "basic", "options": [
        "retain-safe-private", "retain-device-identity", "retain-institution-identity",
        "retain-patient-characteristics", "retain-longitudinal-modified-dates",
        "clean-descriptors", "clean-structured-content", "clean-graphics"]},
    "rules-over-profile": {"profile": "basic", "rules": [
        {"tag": "PN", "method": "cryptoHash"},
        {"tag": "(0008,0020)", "method": "dateShift"},
        {"tag": "ReferencedImageSequence", "method": "redact"},
        {"tag": "(0009,xxxx)", "method": "keep"},
        {"tag": "DA", "method": "redact"},
        {"tag": "LO", "method": "keep"},
    ]},
    "safe-harbor": {"profile": "safe-harbor", "ageBrackets": 5},
    "trial": {"profile": "research", "clinicalTrial": {
        "sponsorName": "Acme", "protocolID": "P-1", "siteName": "Zürich", "timePointID": "T1"}},
    "reference-style": {"rules": [
        {"tag": "(0010,0010)", "method": "substitute", "params": {"replaceWith": "ANON"}},
        {"tag": "UI", "method": "refreshUID"},
        {"tag": "DA", "method": "dateShift"},
        {"tag": "SQ", "method": "keep"},
        {"tag": "OB", "method": "remove"},
        {"tag": "LO", "method": "cryptoHash"},  # not encrypt: its IV is random
    ], "unmatched": "keep"},
}


def _config(name: str) -> Config:
    if name == "microsoft-default":
        text = (REFERENCE / "configuration.json").read_text()
        return parse_config(text, secret=SECRET)
    return parse_config(json.dumps(CONFIGS[name]), secret=SECRET)


def _inputs(tmp_path: Path) -> list[Path]:
    files = sorted(TEST_FILES.glob("*.dcm")) + sorted((REFERENCE / "data").rglob("*.dcm"))
    synthetic = tmp_path / "synthetic"
    synthetic.mkdir()
    patient = make_patient(3, seed=7)
    explicit = make_instance(patient, 0, 0, 0, seed=7)
    explicit.save_as(synthetic / "explicit.dcm", enforce_file_format=True)
    implicit = make_instance(patient, 0, 1, 1, seed=7)
    implicit.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    implicit.save_as(synthetic / "implicit.dcm", enforce_file_format=True,
                     implicit_vr=True, little_endian=True)
    markers = marker_dataset()
    for tag in list(markers.keys()):
        if tag.group in (0, 2):  # command and file meta elements cannot be in a dataset
            del markers[tag]
    markers.file_meta = explicit.file_meta
    markers.save_as(synthetic / "markers.dcm", enforce_file_format=True)
    # Headers longer than the first read: a large private value before the pixel data, and
    # encapsulated pixel data (its fragments are walked) much longer than that read.
    large = make_instance(patient, 0, 0, 2, rows=256, columns=256, seed=7)
    block = large.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    block.add_new(0x10, "OB", bytes(range(256)) * 400)
    large.save_as(synthetic / "large-private.dcm", enforce_file_format=True)
    encapsulated_file(synthetic / "fragments.dcm", [bytes([n]) * 150_000 for n in range(3)])
    return files + sorted(synthetic.glob("*.dcm"))


@pytest.mark.parametrize("config_name", [*CONFIGS, "microsoft-default"])
def test_fast_path_writes_what_the_pydicom_path_writes(tmp_path: Path,
                                                       config_name: str) -> None:
    config = _config(config_name)
    fast = Anonymizer(config, today=TODAY)
    slow = Anonymizer(config, today=TODAY, fast_path=False)
    assert fast._fast is not None
    taken, differences = 0, []
    for index, source in enumerate(_inputs(tmp_path)):
        try:
            fast._fast.anonymize(str(source))
            taken += 1
        except NotPlain:
            pass
        a, b = tmp_path / f"fast{index}.dcm", tmp_path / f"slow{index}.dcm"
        by_fast, by_slow = fast.anonymize_file(source, a), slow.anonymize_file(source, b)
        if (by_fast.status, by_fast.error_class) != (by_slow.status, by_slow.error_class):
            differences.append(f"{source.name}: {by_fast.status} vs {by_slow.status}")
            continue
        if by_slow.status != "done":
            continue
        if a.read_bytes() != b.read_bytes():
            differences.append(f"{source.name}: outputs differ{_first_difference(a, b)}")
        if (by_fast.actions, by_fast.flags) != (by_slow.actions, by_slow.flags):
            differences.append(f"{source.name}: actions or flags differ")
    assert not differences, "\n".join(differences)
    print(f"{config_name}: the fast path took {taken} files")
    assert taken >= 60, f"the fast path took only {taken} files"


def _first_difference(a: Path, b: Path) -> str:
    """Where two outputs first differ, as an element (to debug a failure)."""
    try:
        fast, slow = dcmread(a), dcmread(b)
    except Exception as exc:
        return f" (unreadable: {type(exc).__name__})"
    if fast.file_meta != slow.file_meta:
        return " (file meta)"
    for element in slow.iterall():
        tag = element.tag
        if tag not in fast:
            return f" (at {tag})"
    for tag in sorted(set(fast.keys()) | set(slow.keys())):
        if tag not in fast or tag not in slow or fast[tag] != slow[tag]:
            return f" (at {tag})"
    return " (same elements, different bytes)"


def test_files_the_fast_path_does_not_handle_take_the_pydicom_path(tmp_path: Path) -> None:
    source = Path(get_testdata_file("MR_small_bigendian.dcm", download=False) or "")
    # (a DERIVED\SECONDARY image: its pixels would want OCR; this test is about the header)
    anonymizer = Anonymizer(_config("basic"), today=TODAY, pixels="off")
    assert anonymizer._fast is not None
    with pytest.raises(NotPlain):
        anonymizer._fast.anonymize(str(source))
    result = anonymizer.anonymize_file(source, tmp_path / "out.dcm")
    assert result.status == "done"
    assert dcmread(tmp_path / "out.dcm").PatientIdentityRemoved == "YES"


def test_plain_files_take_the_fast_path_whatever_their_header_length(tmp_path: Path) -> None:
    """Explicit and implicit VR, a header longer than the first read, encapsulated pixel
    data: all plain, all on the fast path (a NotPlain here would fail the test)."""
    anonymizer = Anonymizer(_config("basic"), today=TODAY)
    assert anonymizer._fast is not None
    synthetic = {p.name: p for p in _inputs(tmp_path) if p.parent.name == "synthetic"}
    for name in ("explicit.dcm", "implicit.dcm", "large-private.dcm", "fragments.dcm"):
        output = anonymizer._fast.anonymize(str(synthetic[name]))
        assert output.actions["remove"] > 0, name


@pytest.mark.parametrize("config_name", ["basic", "reference-style"])
def test_fast_path_mapping_rows_are_the_pydicom_paths(tmp_path: Path, config_name: str) -> None:
    """``--mapping-dir`` runs take the fast path too, with the same (original, pseudonym)
    rows as pydicom's path."""
    config = _config(config_name)
    fast = Anonymizer(config, today=TODAY, record_mappings=True)
    slow = Anonymizer(config, today=TODAY, record_mappings=True, fast_path=False)
    assert fast._fast is not None
    taken, rows, differences = 0, 0, []
    for index, source in enumerate(_inputs(tmp_path)):
        try:
            fast._fast.anonymize(str(source))
            taken += 1
        except NotPlain:
            pass
        by_fast = fast.anonymize_file(source, tmp_path / f"fast{index}.dcm")
        by_slow = slow.anonymize_file(source, tmp_path / f"slow{index}.dcm")
        rows += len(by_slow.mappings)
        if by_fast.mappings != by_slow.mappings:
            differences.append(source.name)
    assert not differences, differences
    assert rows > 200  # UIDs and patient IDs of most files
    assert taken >= 50, f"the fast path took only {taken} files"
