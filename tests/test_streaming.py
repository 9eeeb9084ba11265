"""Large values are copied, never loaded: same outputs as a full read, flat memory.

Every pydicom bundled test file is anonymized twice: by ``anonymize_file`` with a tiny defer
size (so that nearly every value stays on disk and is streamed), and by a plain full read +
``save_as``. The two outputs must be the same bytes.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import JPEGBaseline8Bit

from dcmanon import Anonymizer, parse_config
from dcmanon.dicom.walk import quiet_pydicom
from dcmanon.io import files as dicomio
from dcmanon.io.files import prepare_file_meta, read_dicom, write_dicom_atomic
from dcmanon.testing import make_instance, make_patient

TEST_FILES = Path(get_testdata_file("CT_small.dcm", download=False) or "").parent
CONFIGS: dict[str, dict[str, Any]] = {
    "profile": {"profile": "basic"},
    "keep": {"rules": [{"tag": "PatientName", "method": "redact"}]},
    "redact-pixels": {"rules": [{"tag": "PixelData", "method": "redact"},
                                {"tag": "PN", "method": "redact"}]},
    "remove-pixels": {"rules": [{"tag": "PixelData", "method": "remove"}],
                      "unmatched": "keep"},
}


def _full_read(anonymizer: Anonymizer, source: Path, target: Path) -> tuple[str, str | None]:
    """The reference: everything in memory, written by pydicom's ``save_as``."""
    try:
        ds = read_dicom(source, defer=False)
        anonymizer.anonymize_dataset(ds)
        with quiet_pydicom():
            prepare_file_meta(ds)
            meta = ds.file_meta
            complete = all(meta.get(k) for k in (
                "MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID"))
            if complete:
                ds.save_as(target, enforce_file_format=True)
            else:
                write_dicom_atomic(ds, target)  # pydicom refuses an empty meta UID
    except Exception as exc:
        return "failed", repr(exc)
    return "done", None


@pytest.mark.parametrize("defer", [16, dicomio.DEFER_SIZE])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_streamed_output_is_the_full_read_output_for_every_test_file(
        config: str, defer: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a defer size of 16 bytes nearly every value stays on disk and is copied; with
    the real one, untouched elements are written from their raw bytes."""
    anonymizer = Anonymizer(parse_config(CONFIGS[config], secret="stream-test"), pixels="off")
    monkeypatch.setattr(dicomio, "DEFER_SIZE", defer)
    compared = 0
    for source in sorted(TEST_FILES.glob("*.dcm")):
        streamed, full = tmp_path / f"s-{source.name}", tmp_path / f"f-{source.name}"
        result = anonymizer.anonymize_file(source, streamed)
        expected = _full_read(anonymizer, source, full)
        if expected[0] == "failed":
            assert result.status == "failed", source.name
            continue
        assert result.status == "done", (source.name, result.error)
        assert streamed.read_bytes() == full.read_bytes(), source.name
        compared += 1
    assert compared >= 30  # (redacting pixel data fails where a method refuses the VR)


def _pixel_span(data: bytes) -> bytes:
    """The encoded pixel data element (header and value) of a little endian file."""
    ds = pydicom.dcmread(io.BytesIO(data), defer_size=0)
    raw = ds.get_item(0x7FE00010, keep_deferred=True)
    start = raw.value_tell - 12
    return data[start:raw.value_tell + raw.length]


def _multiframe(path: Path, frames: int, *, tail: bool = False) -> Path:
    """A multi-frame CT-like file of 512x512x16-bit frames, written without holding it."""
    ds = make_instance(make_patient(1), rows=512, columns=512)
    del ds.PixelData
    ds.NumberOfFrames = frames
    ds.save_as(path, enforce_file_format=True)
    frame = bytes(range(256)) * 2048
    with path.open("ab") as handle:
        handle.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, len(frame) * frames))
        for index in range(frames):
            handle.write(frame[index % 256:] + frame[:index % 256])
        if tail:  # elements after the pixel data
            tail_ds = Dataset()
            signature = Dataset()
            signature.MACIDNumber = 1
            tail_ds.DigitalSignaturesSequence = Sequence([signature])
            tail_ds.DataSetTrailingPadding = b"\0" * 64
            buffer = io.BytesIO()
            tail_ds.save_as(buffer, implicit_vr=False, little_endian=True)
            handle.write(buffer.getvalue())
    return path


def test_pixel_data_is_copied_byte_for_byte(tmp_path: Path) -> None:
    source = _multiframe(tmp_path / "in.dcm", 6)
    anonymizer = Anonymizer(parse_config({"profile": "basic"}, secret="k"), pixels="off")
    result = anonymizer.anonymize_file(source, tmp_path / "out.dcm")
    assert result.status == "done", result.error
    assert _pixel_span((tmp_path / "out.dcm").read_bytes()) == _pixel_span(source.read_bytes())


@pytest.mark.parametrize("defer", [16, dicomio.DEFER_SIZE])
def test_a_dataset_encoded_against_its_transfer_syntax_is_written_as_it_declares(
        defer: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pydicom's SC_rgb_jpeg.dcm declares JPEG Baseline (explicit VR) over an implicit VR
    # dataset: readers trust the declaration, so the output follows it.
    monkeypatch.setattr(dicomio, "DEFER_SIZE", defer)
    source = Path(get_testdata_file("SC_rgb_jpeg.dcm", download=False) or "")
    anonymizer = Anonymizer(parse_config({"profile": "basic"}, secret="k"), pixels="off")
    result = anonymizer.anonymize_file(source, tmp_path / "out.dcm")
    assert result.status == "done", result.error
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydicom warns when the encoding is not the declared
        output = pydicom.dcmread(tmp_path / "out.dcm")
        assert output.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
        assert output.original_encoding == (False, True)
        assert output.PixelData == read_dicom(source, defer=False).PixelData
    assert "ImageType" in output and output["ImageType"].VR == "CS"


def test_signatures_and_padding_after_the_pixel_data_are_dropped(tmp_path: Path) -> None:
    source = _multiframe(tmp_path / "in.dcm", 2, tail=True)
    assert "DigitalSignaturesSequence" in pydicom.dcmread(source)
    anonymizer = Anonymizer(parse_config({"rules": [{"tag": "PN", "method": "redact"}]},
                                         secret="k"))
    assert anonymizer.anonymize_file(source, tmp_path / "out.dcm").status == "done"
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert "DigitalSignaturesSequence" not in out and "DataSetTrailingPadding" not in out
    assert out.PixelData == pydicom.dcmread(source).PixelData


def test_nested_signatures_are_dropped(tmp_path: Path) -> None:
    ds = make_instance(make_patient(0))
    signature = Dataset()
    signature.MACIDNumber = 1
    ds.RequestAttributesSequence[0].DigitalSignaturesSequence = Sequence([signature])
    ds.save_as(tmp_path / "in.dcm", enforce_file_format=True)
    anonymizer = Anonymizer(parse_config({"rules": [{"tag": "PN", "method": "redact"}]},
                                         secret="k"))
    assert anonymizer.anonymize_file(tmp_path / "in.dcm", tmp_path / "out.dcm").status == "done"
    item = pydicom.dcmread(tmp_path / "out.dcm").RequestAttributesSequence[0]
    assert "DigitalSignaturesSequence" not in item and "RequestedProcedureID" in item


def test_encapsulated_pixel_data_is_streamed(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    source = Path(get_testdata_file("SC_rgb_rle_2frame.dcm", download=False) or "")
    monkeypatch.setattr(dicomio, "DEFER_SIZE", 64)
    ds = read_dicom(source)
    assert ds.get_item(0x7FE00010, keep_deferred=True).value is None  # really deferred
    anonymizer = Anonymizer(parse_config({"profile": "basic"}, secret="k"), pixels="off")
    assert anonymizer.anonymize_file(source, tmp_path / "out.dcm").status == "done"
    assert pydicom.dcmread(tmp_path / "out.dcm").PixelData == pydicom.dcmread(source).PixelData


def test_a_file_cut_inside_streamed_pixel_data_fails_and_writes_nothing(tmp_path: Path) -> None:
    source = _multiframe(tmp_path / "in.dcm", 2)
    data = source.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:-1000])
    anonymizer = Anonymizer(parse_config({"profile": "basic"}, secret="k"), pixels="off")
    result = anonymizer.anonymize_file(cut, tmp_path / "out" / "cut.dcm")
    assert result.status == "failed" and "truncated" in (result.error or "")
    assert not (tmp_path / "out").exists()


# VmHWM, not getrusage: Linux carries ru_maxrss over from the forking parent (pytest) on exec.
PEAK_SCRIPT = """
import json, re, sys
from dcmanon import Anonymizer, parse_config
anonymizer = Anonymizer(parse_config({"profile": "basic"}, secret="k"), pixels="off")
result = anonymizer.anonymize_file(sys.argv[1], sys.argv[2])
status = open("/proc/self/status").read()
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) / 1024
print(json.dumps({"status": result.status, "error": result.error, "peak_mb": peak}))
"""


def _peak(source: Path, target: Path) -> float:
    run = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(source), str(target)],
                         capture_output=True, text=True, timeout=300, check=True)
    outcome = json.loads(run.stdout)
    assert outcome["status"] == "done", outcome["error"]
    return float(outcome["peak_mb"])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_memory_stays_flat_as_files_grow(tmp_path: Path) -> None:
    """A 2 MB and a 256 MB file: the peak differs by far less than the file."""
    small = _peak(_multiframe(tmp_path / "small.dcm", 4), tmp_path / "small-out.dcm")
    big_source = _multiframe(tmp_path / "big.dcm", 512)
    big = _peak(big_source, tmp_path / "big-out.dcm")
    assert big < 100
    assert big - small < 16, (small, big)
    assert (tmp_path / "big-out.dcm").stat().st_size > 256 * 2**20
