"""``dcmanon check`` searches the bytes outside text values, not the image samples: no false
alarm from pixel data (native or encapsulated), short identifiers only in text runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import data_store
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate

from dcmanon import default_config
from dcmanon.check.verify import check

REAL_IMAGES = Path(data_store.__file__).parent / "data"
"""pydicom-data: 68 images from many vendors and codecs (PyPI ``pydicom-data``)."""
JPEG = Path(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm", download=False) or "")
CONFIG = default_config(secret="dcmanon check")


def _raw_findings(original: Path, anonymized: Path) -> list[tuple[str, str]]:
    report = check(original, anonymized, config=CONFIG)
    return [(f.element, f.kind) for f in report.findings if f.category == "raw-bytes"]


@pytest.fixture(scope="module")
def real_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("real") / "out"
    subprocess.run([sys.executable, "-m", "dcmanon", "--pixels", "off", "-I", str(REAL_IMAGES),
                    "-O", str(out)],
                   env={"DCMANON_KEY": "x" * 32, "PATH": ""}, capture_output=True, check=False)
    return out


def test_real_images_raise_no_raw_bytes_alarm(real_outputs: Path) -> None:
    assert len(list(REAL_IMAGES.glob("*.dcm"))) >= 60
    assert len(list(real_outputs.rglob("*.dcm"))) >= 60
    report = check(REAL_IMAGES, real_outputs, config=CONFIG)
    assert report.files_checked >= 60
    assert [f for f in report.findings if f.category == "raw-bytes"] == []


def _pair(tmp_path: Path, fragment_text: bytes, padding_text: bytes) -> tuple[Path, Path]:
    """An original with a known name and an 'output' whose encapsulated pixel data and trailing
    padding carry the bytes given."""
    original = tmp_path / "orig" / "a.dcm"
    output = tmp_path / "out" / "a.dcm"
    original.parent.mkdir()
    output.parent.mkdir()
    ds = dcmread(JPEG)
    ds.PatientName = "Zorbington^Fennick"
    ds.PatientID = "QX4"
    ds.save_as(original)
    fragment = b"\x00\xff" * 64 + fragment_text + b"\x01\xfe" * 64
    ds.PatientName = "ANON"
    ds.PatientID = "ANON"
    ds.PixelData = encapsulate([fragment + (b"\0" if len(fragment) % 2 else b"")])
    ds.add_new(0xFFFCFFFC, "OB", padding_text + b"\0" * (len(padding_text) % 2))
    ds.save_as(output)
    return original, output


def test_encapsulated_pixel_data_is_skipped_but_what_follows_is_searched(tmp_path: Path) -> None:
    original, output = _pair(tmp_path, b"Zorbington", b"report of Zorbington Fennick")
    found = _raw_findings(original.parent, output.parent)
    assert len(found) == 1
    assert found[0][0].endswith(" in (FFFC,FFFC) DataSetTrailingPadding")
    assert found[0][1] == "name"


def test_nothing_in_pixel_fragments_is_reported(tmp_path: Path) -> None:
    original, output = _pair(tmp_path, b"Zorbington Fennick QX4", b"")
    assert _raw_findings(original.parent, output.parent) == []


def test_a_short_identifier_counts_only_in_a_text_run(tmp_path: Path) -> None:
    _, output = _pair(tmp_path, b"", b"\x01QX4\x02")
    assert _raw_findings(tmp_path / "orig", output.parent) == []
    shutil.rmtree(tmp_path / "out")
    shutil.rmtree(tmp_path / "orig")
    _, output = _pair(tmp_path, b"", b"\x01patient QX4 seen\x02")
    assert [kind for _, kind in _raw_findings(tmp_path / "orig", output.parent)] == ["id"]
