"""``dcmanon scan``: signs of PHI without the originals; and its false alarms, counted.

The false alarms are measured on pydicom's own test files (the local copies only: nothing is
downloaded), de-identified with the default profile: everything scan reports there is a false
alarm, since the profile removed the identifiers. The text patterns raise none; every finding
is a burned-in-text warning for a modality that often carries it (US, OT), which scan cannot
rule out without looking at the pixels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pydicom
import pytest
from click.testing import CliRunner, Result
from pydicom.data import get_testdata_file
from pydicom.dataset import FileDataset

from dcmanon import Anonymizer, cli
from dcmanon.check.findings import Report, mask
from dcmanon.check.report_text import render_text
from dcmanon.check.scan import pseudonymous, scan, text_findings
from dcmanon.config.loader import default_config
from dcmanon.header.record import BURNED_IN_MODALITIES
from dcmanon.testing import make_instance, make_patient
from tests.verify_sets import Sets, edit, make_sets, original

PYDICOM_TEST_FILES = (
    "693_J2KI.dcm", "CT_small.dcm", "ExplVR_BigEnd.dcm", "ExplVR_BigEndNoMeta.dcm",
    "ExplVR_LitEndNoMeta.dcm", "GDCMJ2K_TextGBR.dcm", "J2K_pixelrep_mismatch.dcm",
    "JPEG-lossy.dcm", "JPEG2000-embedded-sequence-delimiter.dcm", "JPEG2000.dcm",
    "JPEGLSNearLossless_08.dcm", "JPEGLSNearLossless_16.dcm", "JPGExtended.dcm", "MR_small.dcm",
    "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm", "MR_small_implicit.dcm",
    "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_padded.dcm",
    "SC_jpeg_no_color_transform.dcm", "SC_jpeg_no_color_transform_2.dcm",
    "SC_rgb_dcmtk_+eb+cr.dcm", "SC_rgb_dcmtk_+eb+cy+n1.dcm", "SC_rgb_dcmtk_+eb+cy+n2.dcm",
    "SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_dcmtk_+eb+cy+s2.dcm", "SC_rgb_dcmtk_+eb+cy+s4.dcm",
    "SC_rgb_gdcm_KY.dcm", "SC_rgb_jls_lossy_line.dcm", "SC_rgb_jls_lossy_sample.dcm",
    "SC_rgb_jpeg.dcm", "SC_rgb_jpeg_app14_dcmd.dcm", "SC_rgb_jpeg_dcmd.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_gdcm.dcm", "SC_rgb_jpeg_lossy_gdcm.dcm", "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit.dcm", "SC_rgb_rle_16bit_2frame.dcm", "SC_rgb_rle_2frame.dcm",
    "SC_rgb_rle_32bit.dcm", "SC_rgb_rle_32bit_2frame.dcm", "SC_rgb_small_odd.dcm",
    "SC_rgb_small_odd_big_endian.dcm", "SC_rgb_small_odd_jpeg.dcm",
    "SC_ybr_full_422_uncompressed.dcm", "UN_sequence.dcm", "badVR.dcm", "empty_charset_LEI.dcm",
    "examples_jpeg2k.dcm", "examples_overlay.dcm", "examples_palette.dcm",
    "examples_rgb_color.dcm", "examples_ybr_color.dcm", "image_dfl.dcm", "liver_1frame.dcm",
    "liver_expb_1frame.dcm", "meta_missing_tsyntax.dcm", "nested_priv_SQ.dcm",
    "no_meta_group_length.dcm", "priv_SQ.dcm", "reportsi.dcm",
    "reportsi_with_empty_number_tags.dcm", "rtdose.dcm", "rtdose_1frame.dcm", "rtdose_expb.dcm",
    "rtdose_expb_1frame.dcm", "rtdose_rle.dcm", "rtdose_rle_1frame.dcm", "rtplan.dcm",
    "rtstruct.dcm", "test-SR.dcm", "waveform_ecg.dcm",
)
"""pydicom's bundled test files that dcmanon de-identifies (the truncated MR_truncated.dcm and
rtplan_truncated.dcm are refused on purpose, and so is no_meta.dcm: its first byte is missing,
it is not a dataset)."""
FALSE_ALARMS = 28
"""Observed: all burned-in warnings (modality US or OT); no text pattern fires."""


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Sets:
    return make_sets(tmp_path_factory.mktemp("clean"), patients=1)


@pytest.fixture
def sets(clean: Sets, tmp_path: Path) -> Sets:
    return clean.copy(tmp_path / "out")


def categories(report: Report) -> dict[str, int]:
    return dict(report.by_category)


# --- planted signs of PHI --------------------------------------------------------------------


def test_the_clean_set_passes(clean: Sets) -> None:
    report = scan(clean.anonymized)
    assert report.passed, render_text(report, show_values=True)
    assert report.files_checked == len(clean.originals)


def test_names_and_dates_planted_in_free_text_are_flagged(sets: Sets) -> None:
    ds = original(sets)
    given, family = ds.PatientName.given_name, ds.PatientName.family_name
    comment = (f"Follow-up for {given} {family}, seen by Dr. {family} on 05/03/2021 "
               "and again on March 7, 2021.")
    edit(sets.output(0), lambda out: setattr(out, "ImageComments", comment))
    edit(sets.output(1), lambda out: setattr(out, "StudyDescription", f"{family}^{given}"))
    report = scan(sets.anonymized)
    assert categories(report) == {"name": 3, "date": 2}
    found = {(f.file, f.element, f.value) for f in report.findings}
    assert ("0000.dcm", "(0020,4000) ImageComments", f"for {given} {family}") in found
    assert ("0000.dcm", "(0020,4000) ImageComments", f"Dr. {family}") in found
    assert ("0000.dcm", "(0020,4000) ImageComments", "05/03/2021") in found
    assert ("0000.dcm", "(0020,4000) ImageComments", "March 7, 2021") in found
    assert ("0001.dcm", "(0008,1030) StudyDescription", f"{family}^{given}") in found
    text = render_text(report)
    assert family not in text and "05/03/2021" not in text and mask("05/03/2021") in text


def test_phones_mails_ids_and_addresses_in_free_text_are_flagged(sets: Sets) -> None:
    comment = ("Call 555-0142 x00042 or write to zorb@example.invalid; SSN 123-45-6789; "
               "lives at 12 Pretend Street, Nowhereville, ZZ 00000.")
    edit(sets.output(0), lambda out: setattr(out, "ImageComments", comment))
    assert categories(scan(sets.anonymized)) == {"phone": 1, "email": 1, "id-number": 1,
                                                 "address": 2}


def test_a_person_name_element_that_is_not_a_pseudonym_is_flagged(sets: Sets) -> None:
    name = str(original(sets).PatientName)
    edit(sets.output(0), lambda out: setattr(out, "PatientName", name))
    report = scan(sets.anonymized)
    assert categories(report) == {"name": 1}
    assert report.findings[0].element == "(0010,0010) PatientName"


def test_a_nested_name_is_flagged_with_its_path(sets: Sets) -> None:
    name = str(original(sets).PatientName)

    def change(out: FileDataset) -> None:
        out.PerformedProtocolCodeSequence[0].ProtocolContextSequence[0].PersonName = name

    edit(sets.output(0), change)
    report = scan(sets.anonymized)
    assert [f.element for f in report.findings] == [
        "(0040,0260) PerformedProtocolCodeSequence[0] > (0040,0440) ProtocolContextSequence[0] "
        "> (0040,A123) PersonName"]


def test_private_elements_missing_identity_removed_and_burned_in_text(sets: Sets) -> None:
    def change(out: FileDataset) -> None:
        out.private_block(0x0011, "ACME 1.0", create=True).add_new(0x01, "DS", "1.5")
        del out.PatientIdentityRemoved

    edit(sets.output(0), change)
    edit(sets.output(1), lambda out: setattr(out, "BurnedInAnnotation", "YES"))
    edit(sets.output(2), lambda out: setattr(out, "Modality", "US"))
    edit(sets.output(3), lambda out: setattr(out, "PatientIdentityRemoved", "NO"))
    report = scan(sets.anonymized)
    assert categories(report) == {"private-element": 1, "identity-not-removed": 2,
                                  "burned-in": 2}


@pytest.mark.parametrize("text", [
    "CT CHEST (FAKE)", "Synthetic test image", "Basic Application Level Confidentiality Profile",
    "Retain Longitudinal Temporal Information with Modified Dates Option", "AXIAL 2.5MM",
    "Lossy Compression", "GE MEDICAL SYSTEMS", "Scanned for Research purposes",
])
def test_ordinary_text_raises_nothing(text: str) -> None:
    assert text_findings(text) == []


@pytest.mark.parametrize(("value", "expected"), [
    ("ANON-5ZXEOGJDLP", True), ("ANON-ABCDEFGHIJ", True), ("ANONYMOUS", True), ("", True),
    ("Patient 0042", True), ("Zorbington Quillon", False), ("Doe John", False),
])
def test_pseudonyms_and_placeholders_are_not_names(value: str, expected: bool) -> None:
    assert pseudonymous(value) is expected


# --- false alarms on pydicom's test files ----------------------------------------------------


def test_false_alarms_on_pydicom_test_files_are_counted(tmp_path: Path) -> None:
    anonymizer = Anonymizer(default_config(secret="scan-false-alarms"), pixels="off")
    for name in PYDICOM_TEST_FILES:
        source = get_testdata_file(name, download=False)
        assert isinstance(source, str), f"{name} is not installed with pydicom"
        result = anonymizer.anonymize_file(source, tmp_path / name)
        assert result.status == "done", result.error
    report = scan(tmp_path)
    assert report.files_checked == len(PYDICOM_TEST_FILES)
    assert report.total == FALSE_ALARMS, render_text(report, show_values=True, limit=100)
    assert dict(report.by_category) == {"burned-in": FALSE_ALARMS}
    flagged = {f.file for f in report.findings}
    for name in PYDICOM_TEST_FILES:
        modality = str(pydicom.dcmread(tmp_path / name, stop_before_pixels=True)
                       .get("Modality", ""))
        assert (name in flagged) == (modality in BURNED_IN_MODALITIES), name


def test_the_originals_of_pydicom_test_files_are_not_clean() -> None:
    """The same files before de-identification: names, private elements, no PatientIdentity
    Removed (the scan finds what is there)."""
    report = scan(str(get_testdata_file("test-SR.dcm", download=False)))
    assert categories(report) == {"name": 3, "identity-not-removed": 1}
    assert "(0040,A073) VerifyingObserverSequence[0] > (0040,A075) VerifyingObserverName" in {
        f.element for f in report.findings}
    report = scan(str(get_testdata_file("JPEG2000.dcm", download=False)))
    assert categories(report) == {"private-element": 62, "identity-not-removed": 1}


# --- the command ----------------------------------------------------------------------------


def run(*args: object) -> Result:
    result = CliRunner().invoke(cli.main, [str(a) for a in args])
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def test_scan_exit_codes_and_json(sets: Sets, tmp_path: Path) -> None:
    assert run("scan", sets.anonymized).exit_code == 0
    edit(sets.output(0), lambda out: setattr(out, "ImageComments", "seen on 05/03/2021"))
    result = run("scan", sets.anonymized, "--json", "-")
    assert result.exit_code == 1
    assert '"verdict": "FAIL"' in result.stdout and "05/03/2021" not in result.output
    assert run("scan", sets.anonymized, "--ignore", "date").exit_code == 0
    assert "05/03/2021" in run("scan", sets.output(0), "--show-values").output
    assert run("scan", tmp_path / "missing").exit_code == 2


def _fifo_sets(root: Path, *, original_fifo: bool = True) -> tuple[Path, Path]:
    """An original and its output (a.dcm), and a FIFO named blocked.dcm among the outputs
    (and among the originals): opening a FIFO for reading would block forever."""
    originals, outputs = root / "in", root / "out"
    originals.mkdir()
    make_instance(make_patient(0)).save_as(originals / "a.dcm", enforce_file_format=True)
    result = Anonymizer(default_config(secret="fifo")).anonymize_file(
        originals / "a.dcm", outputs / "a.dcm")
    assert result.status == "done", result.error
    os.mkfifo(outputs / "blocked.dcm")
    if original_fifo:
        os.mkfifo(originals / "blocked.dcm")
    return originals, outputs


def _command(*args: object) -> tuple[int, dict[str, Any], str]:
    """``python -m dcmanon ARGS --json FILE`` in a subprocess (a hang fails it): exit status,
    the JSON report, the text on stdout and stderr."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        proc = subprocess.run([sys.executable, "-m", "dcmanon", *map(str, args),
                               "--json", str(report)], capture_output=True, text=True,
                              timeout=60, check=False)
        assert "Traceback" not in proc.stderr, proc.stderr
        data: dict[str, Any] = json.loads(report.read_text())
    return proc.returncode, data, proc.stdout + proc.stderr


def test_a_fifo_among_the_outputs_is_not_opened(tmp_path: Path) -> None:
    originals, outputs = _fifo_sets(tmp_path)
    # scan: a.dcm is read and clean; the FIFO is never opened (the run ends), nor counted.
    status, report, text = _command("scan", outputs)
    assert report["files_checked"] == 1
    assert {f["file"] for f in report["findings"]} <= {"blocked.dcm"}
    assert (status, report["verdict"]) == ((1, "FAIL") if report["findings"] else (0, "PASS"))
    assert "in 1 file(s)" in text
    # check: the original FIFO is reported by name (its identifiers could not be read, so the
    # verdict cannot be a pass); the output a.dcm is checked, and nothing is found in it.
    status, report, text = _command("check", "--original", originals, "--anonymized", outputs)
    assert status == 1 and report["verdict"] == "FAIL"
    assert report["files_checked"] == 1
    assert {(f["category"], f["file"]) for f in report["findings"]} == {
        ("unreadable", "blocked.dcm")}
    assert "an original could not be read: its identifiers were not looked for" in {
        f["message"] for f in report["findings"]}
    assert "[unreadable] blocked.dcm: an original could not be read" in text


@pytest.mark.parametrize("command", ["scan", "check"])
def test_a_fifo_among_the_outputs_is_named_as_not_checked(command: str, tmp_path: Path) -> None:
    originals, outputs = _fifo_sets(tmp_path, original_fifo=False)
    args = ["scan", outputs] if command == "scan" else [
        "check", "--original", originals, "--anonymized", outputs]
    status, report, _ = _command(*args)
    # Never opened (it could block forever), so nothing proves it clean: the verdict fails.
    assert status == 1 and report["verdict"] == "FAIL"
    assert ("unreadable", "blocked.dcm") in {(f["category"], f["file"])
                                             for f in report["findings"]}
