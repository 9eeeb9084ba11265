"""pydicom's test files and pydicom-data's images (US1_*, gdcm-US-ALOKA-16 among them) through
the pixel stage: with the default library (``--pixels rules``), and with a rule that blanks a
corner of every image, so that every decodable image is decoded, blanked, encoded again and
read back. A file fails only when pydicom itself cannot decode its input, and then with a
clear error naming the pixel data element."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_files

from dcmanon import Anonymizer, parse_config

KEY = "pixel-corpus-test-key-of-more-than-32-characters"


def _images() -> list[Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom-data: "download failures" (offline)
        files = sorted({Path(p) for p in get_testdata_files("*")})
    images = []
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=False, force=True,
                                 specific_tags=["PixelData", "FloatPixelData"])
        except Exception:  # not DICOM: not an image of this corpus
            continue
        if "PixelData" in ds:
            images.append(path)
    return images


def _decodable(path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
            ds.pixel_array_options(as_rgb=False)
            _ = ds.pixel_array
    except Exception:  # pydicom cannot read these pixels: an input problem
        return False
    return True


IMAGES = _images()


def test_the_corpus_holds_the_ultrasound_images() -> None:
    names = {p.name for p in IMAGES}
    assert {"US1_UNCR.dcm", "US1_J2KR.dcm", "gdcm-US-ALOKA-16.dcm"} <= names
    assert len(IMAGES) > 100


@pytest.mark.parametrize("rules", ["default library", "corner of every image"])
def test_every_image_goes_through_the_pixel_stage(rules: str, tmp_path: Path) -> None:
    section: dict[str, object] = {"mode": "rules"}
    if rules != "default library":
        section["rules"] = [{"name": "corner", "blank": [[0, 0, 4, 4]]}]
    engine = Anonymizer(parse_config({"profile": "basic", "pixels": section}, secret=KEY))
    header_only = Anonymizer(parse_config({"profile": "basic"}, secret=KEY), pixels="off")
    cleaned = 0
    for path in IMAGES:
        if header_only.anonymize_file(path, tmp_path / "off.dcm").status != "done":
            continue  # the header stage refuses it: not the pixel stage's business
        result = engine.anonymize_file(path, tmp_path / "out.dcm")
        if result.status != "done":
            assert not _decodable(path), (path.name, result.error)
            error = str(result.error)
            assert "(7FE0,0010)" in error or "(0028," in error, (path.name, error)
            continue
        if result.pixels is None:
            continue
        cleaned += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = pydicom.dcmread(tmp_path / "out.dcm")
            out.pixel_array_options(as_rgb=False)
            assert out.pixel_array.size, path.name  # decodable again
    assert cleaned >= (100 if rules != "default library" else 0)
