"""Blanking real DICOM files by region rules: every photometric interpretation, native and
encapsulated; exactly the boxes change, to the image's black, colours elsewhere unchanged;
images no box applies to keep their PixelData bytes; CT slices keep the fast path."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

import dcmanon.pixels
from dcmanon import Anonymizer, parse_config
from dcmanon.io.rawdataset import parse_file
from dcmanon.pixels.rawheader import needs_pixel_work

from .pixel_images import CT_IMAGE, base, jpeg_baseline, native, palette, pattern, save

KEY = "pixel-images-test-key-of-more-than-32-characters"
ROWS, COLUMNS = 64, 80
# Two boxes: a band at the top and a corner given from the bottom-right edges.
RULES = [{"name": "band and corner", "when": {"tag": "Modality", "equals": "US"},
          "blank": [[0, 0, 80, 10], [-20, -8, 20, 8]]}]
INSIDE = np.zeros((ROWS, COLUMNS), dtype=bool)
INSIDE[0:10, :] = True
INSIDE[56:64, 60:80] = True


def anonymizer(mode: str = "rules", rules: list[dict[str, object]] | None = None,
               library: bool = False) -> Anonymizer:
    config = parse_config({"profile": "basic", "pixels": {
        "mode": mode, "defaultLibrary": library, "rules": RULES if rules is None else rules}},
        secret=KEY)
    return Anonymizer(config)


def _run(ds: Dataset, tmp_path: Path, name: str, engine: Anonymizer | None = None
         ) -> tuple[Dataset, Dataset, dict[str, object] | None]:
    source = save(ds, tmp_path / f"{name}.dcm")
    target = tmp_path / f"{name}.out.dcm"
    result = (engine or anonymizer()).anonymize_file(source, target)
    assert result.status == "done", result.error
    return pydicom.dcmread(source), pydicom.dcmread(target), result.pixels


def _stored(ds: Dataset) -> np.ndarray:
    """Stored values (no colour conversion), as (frames, rows, columns, samples)."""
    ds.pixel_array_options(as_rgb=False)
    array = ds.pixel_array
    frames = int(ds.get("NumberOfFrames") or 1)
    samples = int(ds.SamplesPerPixel)
    return array.reshape(frames, ds.Rows, ds.Columns, samples)


CASES: dict[str, Callable[[], Dataset]] = {
    "MONOCHROME2 8 bit": lambda: native(base(), pattern(ROWS, COLUMNS, 1, 1, 20, 255),
                                        "MONOCHROME2"),
    "MONOCHROME2 16 bit": lambda: native(base(), pattern(ROWS, COLUMNS, 1, 1, 20, 65535),
                                         "MONOCHROME2", bits=16),
    "MONOCHROME1 8 bit": lambda: native(base(), pattern(ROWS, COLUMNS, 1, 1, 0, 200),
                                        "MONOCHROME1"),
    "MONOCHROME1 12 bit": lambda: native(base(), pattern(ROWS, COLUMNS, 1, 1, 0, 4000),
                                         "MONOCHROME1", bits=12),
    "signed 12 bit": lambda: native(base(), pattern(ROWS, COLUMNS, 1, 1, -1000, 2000),
                                    "MONOCHROME2", bits=12, signed=True),
    "RGB": lambda: native(base(), pattern(ROWS, COLUMNS, 1, 3, 20, 255), "RGB"),
    "RGB planar": lambda: native(base(), pattern(ROWS, COLUMNS, 1, 3, 20, 255), "RGB",
                                 planar=1),
    "YBR_FULL": lambda: native(base(), pattern(ROWS, COLUMNS, 1, 3, 20, 235), "YBR_FULL"),
    "PALETTE COLOR": lambda: palette(base(), pattern(ROWS, COLUMNS, 1, 1, 40, 255)),
    "multi-frame": lambda: native(base(), pattern(ROWS, COLUMNS, 6, 1, 20, 255),
                                  "MONOCHROME2"),
}
BLACK = {"MONOCHROME2 8 bit": [0], "MONOCHROME2 16 bit": [0], "MONOCHROME1 8 bit": [255],
         "MONOCHROME1 12 bit": [4095], "signed 12 bit": [-2048], "RGB": [0, 0, 0],
         "RGB planar": [0, 0, 0], "YBR_FULL": [0, 128, 128], "PALETTE COLOR": [37],
         "multi-frame": [0]}


@pytest.mark.parametrize("case", CASES)
def test_native_images_blank_exactly_the_boxes_in_black(case: str, tmp_path: Path) -> None:
    before, after, record = _run(CASES[case](), tmp_path, "image")
    assert after.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert after.PhotometricInterpretation == before.PhotometricInterpretation
    a, b = _stored(before), _stored(after)
    assert (b[:, INSIDE] == np.array(BLACK[case])).all()
    assert (a[:, ~INSIDE] == b[:, ~INSIDE]).all()  # every pixel away from the boxes
    assert record is not None and record["by_rules"] == 2
    assert record["frames"] == a.shape[0]
    assert after.BurnedInAnnotation == "NO"
    codes = [item.CodeValue for item in after.DeidentificationMethodCodeSequence]
    assert "113101" in codes
    if case == "PALETTE COLOR":  # black is the darkest entry, in the decoded colours too
        from pydicom.pixels.processing import apply_color_lut

        colours_before = apply_color_lut(before.pixel_array, before)
        colours_after = apply_color_lut(after.pixel_array, after)
        assert (colours_after[INSIDE] == 0).all()
        assert (colours_before[~INSIDE] == colours_after[~INSIDE]).all()


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless],
                         ids=lambda s: s.name)
@pytest.mark.parametrize("photometric", ["RGB", "MONOCHROME2"])
def test_lossless_syntaxes_are_encoded_again_in_the_same_syntax(
        syntax: pydicom.uid.UID, photometric: str, tmp_path: Path) -> None:
    samples = 3 if photometric == "RGB" else 1
    ds = native(base(), pattern(ROWS, COLUMNS, 2, samples, 20, 255), photometric)
    ds.compress(syntax, generate_instance_uid=False)
    before, after, record = _run(ds, tmp_path, "image")
    assert after.file_meta.TransferSyntaxUID == syntax
    assert after.SOPInstanceUID != before.SOPInstanceUID  # the profile's, not a codec's
    assert after.PhotometricInterpretation == before.PhotometricInterpretation
    a, b = before.pixel_array.reshape(2, ROWS, COLUMNS, -1), after.pixel_array.reshape(
        2, ROWS, COLUMNS, -1)
    assert (b[:, INSIDE] == 0).all()
    assert (a[:, ~INSIDE] == b[:, ~INSIDE]).all()
    assert record is not None and record["transfer_syntax"] == syntax.name


def test_jpeg_baseline_is_written_native_and_stays_marked_lossy(tmp_path: Path) -> None:
    rgb = pattern(ROWS, COLUMNS, 1, 3, 30, 220)
    rgb[0, 20:50, 10:70] = [200, 40, 90]  # a flat colour: its decoded values are compared
    before, after, record = _run(jpeg_baseline(base(), rgb), tmp_path, "jpeg")
    assert after.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert after.PhotometricInterpretation == "YBR_FULL"  # what the decoded values are
    assert after.LossyImageCompression == "01"
    assert after.LossyImageCompressionMethod == "ISO_10918_1"
    a, b = before.pixel_array.astype(int), after.pixel_array.astype(int)  # both as RGB
    assert (a[~INSIDE] == b[~INSIDE]).all()  # decoded colours unchanged
    assert (b[INSIDE] <= 1).all()  # Y=0, Cb=Cr=128 is black
    stored = _stored(after)
    assert (stored[0][INSIDE] == [0, 128, 128]).all()
    assert record is not None and record["transfer_syntax"] == ExplicitVRLittleEndian.name


def test_overlay_planes_and_high_bit_overlays_get_the_same_boxes(tmp_path: Path) -> None:
    values = pattern(ROWS, COLUMNS, 1, 1, 20, 4000)
    values[0, :, :, 0] |= 0x8000  # an overlay in bit 15, above BitsStored 12
    ds = native(base(), values, "MONOCHROME2", bits=12)
    ds.BitsAllocated = 16
    bits = np.ones(ROWS * COLUMNS, dtype=np.uint8)
    ds.add_new(0x60000010, "US", ROWS)
    ds.add_new(0x60000011, "US", COLUMNS)
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60003000, "OW", np.packbits(bits, bitorder="little").tobytes())
    source = save(ds, tmp_path / "overlay.dcm")
    config = parse_config({"rules": [{"tag": "(6000,3000)", "method": "keep"}],
                           "profile": "basic", "pixels": {"mode": "rules",
                                                          "defaultLibrary": False,
                                                          "rules": RULES}}, secret=KEY)
    result = Anonymizer(config).anonymize_file(source, tmp_path / "out.dcm")
    assert result.status == "done", result.error
    after = pydicom.dcmread(tmp_path / "out.dcm")
    words = np.frombuffer(after.PixelData, "<u2").reshape(ROWS, COLUMNS)
    assert (words[INSIDE] == 0).all()
    assert (words[~INSIDE] & 0x8000).all()  # the high-bit overlay kept elsewhere
    plane = np.unpackbits(np.frombuffer(after[0x60003000].value, np.uint8),
                          bitorder="little")[:ROWS * COLUMNS].reshape(ROWS, COLUMNS)
    assert not plane[INSIDE].any() and plane[~INSIDE].all()
    assert result.pixels is not None and result.pixels["overlays"] == 1


def test_an_icon_image_is_removed_with_the_image_cleaned(tmp_path: Path) -> None:
    ds = native(base(), pattern(ROWS, COLUMNS, 1, 1, 20, 255), "MONOCHROME2")
    icon = native(Dataset(), pattern(8, 8, 1, 1, 20, 255), "MONOCHROME2")
    icon.Rows = icon.Columns = 8
    ds.IconImageSequence = [icon]
    config = parse_config({"rules": [{"tag": "IconImageSequence", "method": "keep"}],
                           "profile": "basic", "pixels": {"mode": "rules",
                                                          "defaultLibrary": False,
                                                          "rules": RULES}}, secret=KEY)
    source = save(ds, tmp_path / "icon.dcm")
    result = Anonymizer(config).anonymize_file(source, tmp_path / "out.dcm")
    assert result.status == "done", result.error
    assert "IconImageSequence" not in pydicom.dcmread(tmp_path / "out.dcm")
    assert result.pixels is not None and result.pixels["icon_removed"]


@pytest.mark.parametrize("syntax", [None, RLELossless, JPEG2000Lossless])
def test_images_no_box_applies_to_keep_their_pixel_data_bytes(
        syntax: pydicom.uid.UID | None, tmp_path: Path) -> None:
    ds = native(base("CT", CT_IMAGE), pattern(ROWS, COLUMNS, 1, 1, 0, 4000), "MONOCHROME2",
                bits=12)
    if syntax is not None:
        ds.compress(syntax, generate_instance_uid=False)
    for mode in ("rules", "flagged"):
        before, after, record = _run(ds, tmp_path, f"ct-{mode}",
                                     anonymizer(mode, library=True))
        assert after.PixelData == before.PixelData
        assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
        assert record is None and "BurnedInAnnotation" not in after


def test_ct_slices_keep_the_fast_path_and_flagged_images_leave_it(tmp_path: Path) -> None:
    engine = anonymizer("flagged", library=True)
    ct = save(native(base("CT", CT_IMAGE), pattern(ROWS, COLUMNS, 1, 1, 0, 4000),
                     "MONOCHROME2", bits=12), tmp_path / "ct.dcm")
    us = save(native(base(), pattern(ROWS, COLUMNS, 1, 1, 0, 200), "MONOCHROME2"),
              tmp_path / "us.dcm")
    assert not needs_pixel_work(engine._pixels, parse_file(str(ct)))
    assert needs_pixel_work(engine._pixels, parse_file(str(us)))
    assert not needs_pixel_work(anonymizer("off")._pixels, parse_file(str(us)))


@pytest.mark.parametrize(("modality", "image_type", "extra", "reason"), [
    ("CT", "DERIVED\\PRIMARY\\AXIAL", {}, None),  # an MPR or a MIP of the scanner's data
    ("MR", "DERIVED\\PRIMARY\\DIFFUSION\\ADC", {}, None),
    ("PT", "DERIVED\\PRIMARY", {}, None),
    ("NM", "DERIVED", {}, None),
    ("CR", "DERIVED\\PRIMARY", {}, "ImageType DERIVED"),
    ("MG", "DERIVED\\PRIMARY", {}, "ImageType DERIVED"),
    ("CT", "DERIVED\\SECONDARY\\REFORMATTED", {}, "ImageType SECONDARY"),
    ("MR", "DERIVED\\PRIMARY\\SCREEN SAVE", {}, "ImageType SCREEN SAVE"),
    ("CT", "DERIVED\\PRIMARY", {"BurnedInAnnotation": "YES"}, "BurnedInAnnotation is YES"),
    ("CT", "DERIVED\\PRIMARY", {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"},
     "a secondary capture"),
])
def test_derived_alone_does_not_flag_cross_sectional_reconstructions(
        modality: str, image_type: str, extra: dict[str, str], reason: str | None,
        tmp_path: Path) -> None:
    engine = anonymizer("flagged", rules=[])
    ds = native(base(modality, CT_IMAGE), pattern(ROWS, COLUMNS, 1, 1, 0, 4000), "MONOCHROME2",
                bits=12)
    ds.ImageType = image_type
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    plan = engine._pixels.plan(ds)
    assert (plan.ocr_reason if plan is not None else None) == reason
    # The byte-level decision (the fast path's raw header) agrees.
    source = save(ds, tmp_path / "image.dcm")
    assert needs_pixel_work(engine._pixels, parse_file(str(source))) is (reason is not None)
    assert anonymizer("all", rules=[])._pixels.plan(ds) is not None  # all: every image


def test_a_file_needing_ocr_without_the_engine_fails_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The [ocr] extra missing (also when another test imported the module already).
    monkeypatch.setitem(sys.modules, "dcmanon.pixels.ocr", None)
    monkeypatch.delattr(dcmanon.pixels, "ocr", raising=False)
    source = save(native(base(), pattern(ROWS, COLUMNS, 1, 1, 0, 200), "MONOCHROME2"),
                  tmp_path / "us.dcm")
    result = anonymizer("flagged", rules=[]).anonymize_file(source, tmp_path / "out.dcm")
    assert result.status == "failed"
    assert result.error is not None and str(source) in result.error
    assert "modality US" in result.error and "dcmanon[ocr]" in result.error
    assert "--pixels rules" in result.error
    assert not (tmp_path / "out.dcm").exists()
    # --pixels rules accepts the risk: the same file goes through, pixels untouched.
    result = anonymizer("rules", rules=[]).anonymize_file(source, tmp_path / "out.dcm")
    assert result.status == "done" and result.pixels is None


def test_rules_limited_to_some_frames(tmp_path: Path) -> None:
    rules = [{"when": {"tag": "Modality", "equals": "US"}, "blank": [[0, 0, 80, 10]],
              "frames": [1, 3]}]
    ds = native(base(), pattern(ROWS, COLUMNS, 5, 1, 20, 255), "MONOCHROME2")
    before, after, record = _run(ds, tmp_path, "cine", anonymizer(rules=rules))
    a, b = _stored(before), _stored(after)
    assert (b[[1, 3], 0:10] == 0).all()
    assert (a[[0, 2, 4]] == b[[0, 2, 4]]).all() and (a[:, 10:] == b[:, 10:]).all()
    assert record is not None and record["frames"] == 2


def test_the_command_line_mode_and_the_run_report(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from dcmanon.cli import main

    (tmp_path / "in").mkdir()
    save(native(base(), pattern(ROWS, COLUMNS, 1, 1, 20, 255), "MONOCHROME2"),
         tmp_path / "in" / "us.dcm")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"profile": "basic", "pixels": {
        "mode": "off", "defaultLibrary": False, "rules": RULES}}))
    env = {"DCMANON_KEY": KEY}
    result = CliRunner().invoke(main, ["-I", str(tmp_path / "in"), "-O", str(tmp_path / "a"),
                                       "-c", str(config), "--report",
                                       str(tmp_path / "a.jsonl")], env=env)
    assert result.exit_code == 0, result.output
    before = pydicom.dcmread(tmp_path / "in" / "us.dcm").PixelData
    assert pydicom.dcmread(tmp_path / "a" / "us.dcm").PixelData == before  # the config's off
    result = CliRunner().invoke(main, ["-I", str(tmp_path / "in"), "-O", str(tmp_path / "b"),
                                       "-c", str(config), "--pixels", "rules", "--report",
                                       str(tmp_path / "b.jsonl")], env=env)
    assert result.exit_code == 0, result.output
    assert pydicom.dcmread(tmp_path / "b" / "us.dcm").PixelData != before
    records = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    pixels = [r["pixels"] for r in records if r["type"] == "file"]
    assert pixels == [{"boxes": 2, "by_rules": 2, "by_ocr": 0, "ocr": False, "frames": 1,
                       "rules": ["configuration: band and corner"]}]
    assert [r["pixels_cleaned"] for r in records if r["type"] == "summary"] == [1]
    assert "Doe" not in (tmp_path / "b.jsonl").read_text()


def test_identifiers_for_ocr_are_taken_before_the_header_changes() -> None:
    from dcmanon.config.pixels import PixelSection
    from dcmanon.pixels.setup import build_cleaner

    ds = native(base(), pattern(ROWS, COLUMNS, 1, 1, 20, 255), "MONOCHROME2")
    only = build_cleaner(PixelSection(identifiers_only=True), "flagged")
    plan = only.plan(ds)
    assert plan is not None and plan.ocr_reason == "modality US"
    assert plan.identifiers is not None and "PID-12345" in plan.identifiers
    assert any("Doe" in term for term in plan.identifiers)
    everything = build_cleaner(PixelSection(), "flagged").plan(ds)
    assert everything is not None and everything.identifiers is None
    assert build_cleaner(PixelSection(), "rules").plan(ds) is None


def test_large_native_pixel_data_is_blanked_frame_by_frame_in_bounded_memory(
        tmp_path: Path) -> None:
    import tracemalloc

    frames, rows, columns = 60, 240, 320
    values = pattern(rows, columns, 1, 3, 20, 255)
    ds = native(base(rows=rows, columns=columns), values, "RGB")
    ds.NumberOfFrames = frames
    ds.PixelData = ds.PixelData * frames  # 13.8 MB, far over what is read into memory
    source = save(ds, tmp_path / "cine.dcm")
    del ds
    rules = [{"when": {"tag": "Modality", "equals": "US"}, "blank": [[0, 0, 320, 30]]},
             {"when": {"tag": "Modality", "equals": "US"}, "blank": [[-50, -20, 50, 20]],
              "frames": [0, 59]}]
    tracemalloc.start()
    try:
        result = anonymizer(rules=rules).anonymize_file(source, tmp_path / "out.dcm")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.status == "done", result.error
    assert peak < 4_000_000  # a couple of frames (1 MiB blocks), not 13.8 MB
    assert result.pixels is not None and result.pixels["frames"] == frames
    after = pydicom.dcmread(tmp_path / "out.dcm").pixel_array
    assert (after[:, :30] == 0).all()
    assert (after[[0, 59], 220:, 270:] == 0).all()
    assert (after[1:59, 220:, 270:] == values[0, 220:, 270:]).all()
    assert (after[:, 30:220] == values[0, 30:220]).all()


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_a_decoded_image_with_nothing_to_blank_is_put_back_as_it_was(
        syntax: pydicom.uid.UID) -> None:
    from dcmanon.pixels import codec

    ds = native(base(), pattern(ROWS, COLUMNS, 2, 3, 20, 255), "RGB")
    ds.compress(syntax, generate_instance_uid=False)
    before, uid = ds.PixelData, ds.SOPInstanceUID
    saved = codec.snapshot(ds)
    codec.decode_in_place(ds)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert codec.stored_frames(ds).shape == (2, ROWS, COLUMNS, 3)  # what OCR reads
    codec.restore(ds, saved)
    assert ds.PixelData == before and ds.file_meta.TransferSyntaxUID == syntax
    assert ds.SOPInstanceUID == uid and ds.PhotometricInterpretation == "RGB"


def test_native_ybr_full_422_blanks_luma_and_shared_chroma(tmp_path: Path) -> None:
    full = pattern(ROWS, COLUMNS, 1, 3, 20, 235)
    full[..., 1:] = np.repeat(full[:, :, 0::2, 1:], 2, axis=2)  # one chroma per pixel pair
    pairs = np.empty((ROWS, COLUMNS // 2, 4), dtype=np.uint8)
    pairs[..., 0], pairs[..., 1] = full[0, :, 0::2, 0], full[0, :, 1::2, 0]
    pairs[..., 2], pairs[..., 3] = full[0, :, 0::2, 1], full[0, :, 0::2, 2]
    ds = native(base(), full, "YBR_FULL_422")
    ds.PixelData = pairs.tobytes()
    before, after, record = _run(ds, tmp_path, "ybr422")
    assert after.PhotometricInterpretation == "YBR_FULL_422"
    a, b = _stored(before), _stored(after)
    assert (b[:, INSIDE] == [0, 128, 128]).all()
    assert (a[:, ~INSIDE] == b[:, ~INSIDE]).all()
    assert record is not None and record["frames"] == 1


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless],
                         ids=lambda s: s.name)
def test_encapsulated_frames_without_a_box_keep_their_fragments(
        syntax: pydicom.uid.UID, tmp_path: Path) -> None:
    from pydicom.encaps import generate_frames

    rules = [{"when": {"tag": "Modality", "equals": "US"}, "blank": [[0, 0, 80, 10]],
              "frames": [1]}]
    ds = native(base(), pattern(ROWS, COLUMNS, 3, 1, 20, 4000), "MONOCHROME2", bits=12)
    ds.compress(syntax, generate_instance_uid=False)
    before, after, record = _run(ds, tmp_path, "cine", anonymizer(rules=rules))
    old = list(generate_frames(before.PixelData, number_of_frames=3))
    new = list(generate_frames(after.PixelData, number_of_frames=3))
    assert new[0] == old[0] and new[2] == old[2] and new[1] != old[1]
    assert after.file_meta.TransferSyntaxUID == syntax
    a, b = _stored(before), _stored(after)
    assert (b[1, 0:10] == 0).all() and (a[1, 10:] == b[1, 10:]).all()
    assert (a[[0, 2]] == b[[0, 2]]).all()
    assert record is not None and record["frames"] == 1
