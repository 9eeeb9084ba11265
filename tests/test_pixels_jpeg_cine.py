"""JPEG baseline cines (YBR_FULL_422, as most ultrasound cines): OCR and the writer decode them a
frame at a time (:mod:`dcmanon.pixels.transcode`), and the output, written native, is the
whole-image path's output byte for byte."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, UltrasoundMultiFrameImageStorage

from dcmanon import Anonymizer, parse_config
from dcmanon.pixels import transcode
from tests import pixel_corpus as corpus
from tests.test_pixels_end_to_end import KEY, _away, _compact, _readable, anonymize_traced

pytestmark = pytest.mark.ocr


def _jpeg_cine(path: Path, rows: int, columns: int, frames: int, distinct: int, *,
               offsets: bool = True) -> tuple[list[corpus.Planted], list[np.ndarray]]:
    """A US cine of ``frames`` JPEG baseline frames (YBR_FULL_422, Pillow's 4:2:2) with a name
    on every frame, ``distinct`` of them different (the anatomy moves under the text)."""
    planted: list[corpus.Planted] = []
    encoded, pictures = [], []
    for frame in range(distinct):
        picture = corpus._anatomy(rows, columns, seed=41, frame=frame)
        picture, planted = corpus._draw(picture, corpus._layout(rows, columns))
        rgb = np.rint(corpus._grey_rgb(picture) * 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(rgb, mode="RGB").save(buffer, format="JPEG", quality=92, subsampling=1)
        encoded.append(buffer.getvalue())
        pictures.append(rgb)
    ds = corpus._dataset(rows, columns, UltrasoundMultiFrameImageStorage, "US")
    del ds.BurnedInAnnotation  # flagged by its modality alone
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = (
        3, "YBR_FULL_422", 0)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames = frames
    ds.LossyImageCompression = "01"
    ds.PixelData = encapsulate([encoded[f % distinct] for f in range(frames)], has_bot=offsets)
    ds["PixelData"].VR = "OB"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=True)
    return planted, pictures


def _read(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def _viewed(ds: Dataset) -> np.ndarray:
    """What a viewer shows: decoded, colour as RGB, frames first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        array = ds.pixel_array
    return array.reshape(int(ds.get("NumberOfFrames") or 1), int(ds.Rows), int(ds.Columns), -1)


def test_a_jpeg_cine_with_a_name_on_every_frame_is_decoded_a_frame_at_a_time(
        tmp_path: Path) -> None:
    """The default mode (flagged: an ultrasound cine) on 120 frames of 480x640: OCR decodes a
    frame at a time, the native output is generated a frame at a time while it is written:
    memory stays far below the decoded cine (105 MiB), and no name is readable in any frame."""

    rows, columns, frames, distinct = 480, 640, 120, 4
    source = tmp_path / "cine.dcm"
    planted, _ = _jpeg_cine(source, rows, columns, frames, distinct)
    decoded = frames * rows * columns * 3
    assert decoded >= transcode.STREAM_FROM
    result, peak = anonymize_traced(source, tmp_path / "out.dcm")  # flagged
    assert result.status == "done", result.error
    assert result.pixels is not None and result.pixels["ocr"] is True
    assert result.pixels["frames"] == frames and result.pixels["by_ocr"] > 0
    assert result.pixels["transfer_syntax"] == ExplicitVRLittleEndian.name
    # A few frames, never the decoded cine; what is traced is mostly the header reader's
    # first look at the file (the encoded cine, 12 MB, read up to 16 MiB) and OCR's frame.
    assert peak < decoded / 3, (peak, decoded)

    output = _read(tmp_path / "out.dcm")
    assert output.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert output.PhotometricInterpretation == "YBR_FULL"
    assert int(output.NumberOfFrames) == frames and output.LossyImageCompression == "01"
    assert len(output.PixelData) == decoded
    words, readable = _readable(output, planted, {"identifier"})
    assert "mustermann" in {_compact(w) for w in words}
    assert not readable, f"{len(readable)} planted word(s) still readable"
    before, after = _viewed(_read(source)), _viewed(output)
    assert after.shape == before.shape
    away = _away(planted, rows, columns)
    same = np.all(before == after, axis=-1)[:, away]
    # The corpus's 99 % (its JPEG image included): the pixels away from the text are the
    # input's decoded values.
    assert same.mean() >= 0.99, f"{same.mean():.4f} of the pixels away from text kept"


@pytest.mark.parametrize("mode", ["rules", "all"])
@pytest.mark.parametrize("offsets", [True, False])
def test_the_streamed_output_is_the_whole_image_paths_byte_for_byte(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, offsets: bool) -> None:
    """A small JPEG cine (its fragments in memory), once decoded whole and once a frame at a
    time (the threshold forced down): the same output bytes, with OCR or a region rule."""
    source = tmp_path / "cine.dcm"
    _jpeg_cine(source, 240, 320, 9, 3, offsets=offsets)
    config = {"profile": "basic", "pixels": {"rules": [
        {"name": "top band", "when": {"tag": "Modality", "equals": "US"},
         "blank": [[0, 0, 320, 40]], "frames": [0, 1, 2, 3]}]}}
    anonymizer = Anonymizer(parse_config(config, secret=KEY), pixels=mode)
    outputs = {}
    for label, threshold in (("whole", 1 << 40), ("streamed", 0)):
        monkeypatch.setattr(transcode, "STREAM_FROM", threshold)
        _, outcome = anonymizer._read_and_anonymize(str(source))
        assert outcome.pixels is not None
        assert (outcome.pixels.source is not None) == (label == "streamed")
        result = anonymizer.anonymize_file(source, tmp_path / f"{label}.dcm")
        assert result.status == "done", result.error
        assert result.pixels is not None and result.pixels["frames"] >= 4
        outputs[label] = (tmp_path / f"{label}.dcm").read_bytes()
    assert outputs["streamed"] == outputs["whole"]


def test_a_large_jpeg_cine_on_disk_streams_byte_for_byte_as_the_whole_image_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fragments read from the input file (over the defer size), region rule only."""
    source = tmp_path / "cine.dcm"
    _jpeg_cine(source, 480, 640, 24, 2)
    config = {"profile": "basic", "pixels": {"rules": [
        {"name": "top band", "when": {"tag": "Modality", "equals": "US"},
         "blank": [[0, 0, 640, 60]]}]}}
    anonymizer = Anonymizer(parse_config(config, secret=KEY), pixels="rules")
    outputs = {}
    for label, threshold in (("whole", 1 << 40), ("streamed", 0)):
        monkeypatch.setattr(transcode, "STREAM_FROM", threshold)
        result = anonymizer.anonymize_file(source, tmp_path / f"{label}.dcm")
        assert result.status == "done", result.error
        assert result.pixels is not None and result.pixels["frames"] == 24
        outputs[label] = (tmp_path / f"{label}.dcm").read_bytes()
    assert outputs["streamed"] == outputs["whole"]


def _written_native(path: Path) -> bool:
    from dcmanon.pixels import codec

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        except Exception:  # (pydicom's test files include broken ones)
            return False
    return bool(syntax.is_compressed) and syntax not in codec.REENCODED


TEST_FILES = Path(pydicom.data.get_testdata_file("CT_small.dcm", download=False) or "").parent
NATIVE_WRITTEN = sorted(p.name for p in TEST_FILES.glob("*.dcm") if _written_native(p))


@pytest.mark.parametrize("name", NATIVE_WRITTEN)
def test_pydicoms_files_stream_as_the_whole_image_path_writes_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Each of pydicom's test files written native once blanked (JPEG baseline, extended,
    lossless, lossy JPEG-LS and JPEG 2000; odd sizes, 16 bits, YBR and RGB, a 30-frame
    YBR_FULL_422 cine), a box blanked by a rule: decoded a frame at a time (the threshold
    forced down), the output is the whole-image path's, byte for byte (or both fail)."""
    config = {"profile": "basic", "pixels": {"rules": [
        {"name": "corner", "when": {"tag": "Rows", "greaterThan": 0}, "blank": [[0, 0, 9, 7]]}]}}
    anonymizer = Anonymizer(parse_config(config, secret=KEY), pixels="rules")
    outputs = {}
    for label, threshold in (("whole", 1 << 40), ("streamed", 0)):
        monkeypatch.setattr(transcode, "STREAM_FROM", threshold)
        result = anonymizer.anonymize_file(TEST_FILES / name, tmp_path / f"{label}.dcm")
        outputs[label] = (result.status, result.error_class, (
            tmp_path / f"{label}.dcm").read_bytes() if result.status == "done" else b"")
    assert outputs["streamed"] == outputs["whole"]


@pytest.mark.parametrize("name", ["examples_ybr_color.dcm", "SC_rgb_small_odd_jpeg.dcm",
                                  "JPGExtended.dcm", "SC_rgb_jls_lossy_line.dcm"])
def test_those_files_do_take_the_frame_by_frame_path(monkeypatch: pytest.MonkeyPatch,
                                                     name: str) -> None:
    """(A 30-frame YBR_FULL_422 cine, an odd length padded, 16 bits, JPEG-LS lossy.)"""
    config = {"profile": "basic", "pixels": {"rules": [
        {"name": "corner", "when": {"tag": "Rows", "greaterThan": 0}, "blank": [[0, 0, 9, 7]]}]}}
    anonymizer = Anonymizer(parse_config(config, secret=KEY), pixels="rules")
    monkeypatch.setattr(transcode, "STREAM_FROM", 0)
    _, outcome = anonymizer._read_and_anonymize(str(TEST_FILES / name))
    assert outcome.pixels is not None and outcome.pixels.source is not None
    assert outcome.pixels.transfer_syntax == ExplicitVRLittleEndian.name
