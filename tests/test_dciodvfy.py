"""The default profile keeps objects valid: dciodvfy (dicom3tools) finds no new error.

Every pydicom bundled test file that is a composite instance is anonymized with the basic
profile; dciodvfy's errors on the output must all have been reported on the input already.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dcmanon import Anonymizer, parse_config
from tests.peer_tools import dciodvfy_errors

pytestmark = pytest.mark.peer
TEST_FILES = Path(get_testdata_file("CT_small.dcm", download=False) or "").parent
UNREADABLE = {
    "MR_truncated.dcm": "truncated on purpose",
    "rtplan_truncated.dcm": "truncated on purpose",
    "no_meta.dcm": "not a dataset (its first byte is missing: dcmdump refuses it too)",
}


def _composite(path: Path) -> bool:
    try:
        with warnings.catch_warnings():  # (the tests turn warnings into errors)
            warnings.simplefilter("ignore")
            return "SOPClassUID" in dcmread(path, stop_before_pixels=True)
    except Exception:
        return False


def _inputs() -> list[Path]:
    return sorted(p for p in TEST_FILES.glob("*.dcm") if p.name not in UNREADABLE)


def test_outputs_have_no_dciodvfy_error_the_inputs_did_not_have(
        tmp_path: Path, external_tool: Callable[[str], str]) -> None:
    dciodvfy = external_tool("dciodvfy")
    anonymizer = Anonymizer(parse_config({"profile": "basic"}, secret="dciodvfy-test"),
                            pixels="rules")
    keep_all = Anonymizer(parse_config({"rules": []}, secret="dciodvfy-test"), pixels="off")
    checked, new_errors, failures = 0, {}, {}
    for source in _inputs():
        if not _composite(source):
            continue
        target = tmp_path / source.name
        result = anonymizer.anonymize_file(source, target)
        if result.status != "done":
            failures[source.name] = result.error_class
            continue
        before = dciodvfy_errors(dciodvfy, source)
        if any("Dicom dataset read failed" in line for line in before):
            # dciodvfy cannot read the input (image_dfl.dcm: it has no deflate support;
            # SC_rgb_jpeg.dcm: implicit VR under an explicit transfer syntax, which dcmanon
            # writes as declared): the input rewritten with every element kept is the baseline.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                original = dcmread(source).SOPInstanceUID
            assert dcmread(target).SOPInstanceUID != original
            kept = tmp_path / f"kept-{source.name}"
            assert keep_all.anonymize_file(source, kept).status == "done"
            before = dciodvfy_errors(dciodvfy, kept)
            if any("Dicom dataset read failed" in line for line in before):
                continue
        extra = dciodvfy_errors(dciodvfy, target) - before
        if extra:
            new_errors[source.name] = sorted(extra)
        checked += 1
    assert (failures, new_errors) == ({}, {})
    assert checked >= 50  # the bundled set: make sure it was really run
