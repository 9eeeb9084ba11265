"""Issue 12, as a user runs it: each image of the pixel corpus written to a file, de-identified
by ``anonymize_file`` with OCR (``--pixels all``), and the output read back as any viewer would.

None of the planted words is readable in the output by the OCR engine; the pixels away from the
text (10 px margin) are unchanged (at least 99 %), compared as decoded values, so colours count;
an image without text keeps its PixelData bytes as they were.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Container, Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from dcmanon import Anonymizer, parse_config
from dcmanon.anonymizer import FileResult
from dcmanon.phi.matching import fold
from dcmanon.pixels import ocr
from tests import pixel_corpus as corpus

pytestmark = pytest.mark.ocr

KEY = "pixel-end-to-end-test-key-of-more-than-32-characters"
MARGIN = 10
KINDS = sorted(corpus.KINDS)


def _anonymizer() -> Anonymizer:
    return Anonymizer(parse_config({"profile": "basic"}, secret=KEY), pixels="all")


def _write(ds: Dataset, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=True)
    return path


def _read(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[corpus.CorpusImage,
                                                                        Dataset]]:
    folder = tmp_path_factory.mktemp("pixels-e2e")
    anonymizer = _anonymizer()
    done = {}
    for kind in KINDS:
        image = corpus.make(kind)
        source = _write(image.ds, folder / f"{kind}.dcm")
        result = anonymizer.anonymize_file(source, folder / f"{kind}-out.dcm")
        assert result.status == "done", (kind, result.error)
        done[kind] = (image, _read(folder / f"{kind}-out.dcm"))
    return done


def anonymize_traced(source: Path, target: Path, pixels: str = "flagged"
                     ) -> tuple[FileResult, int]:
    """Anonymize ``source`` (the Basic Profile) with Python's allocations traced; the result
    and the traced peak in bytes (the OCR engine loaded beforehand: its models are read once
    per process, not per image)."""
    import tracemalloc

    anonymizer = Anonymizer(parse_config({"profile": "basic"}, secret=KEY), pixels=pixels)
    ocr.load_engine()
    tracemalloc.start()
    try:
        result = anonymizer.anonymize_file(source, target)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _compact(text: str) -> str:
    return re.sub(r"[\W_]+", "", fold(text))


def _readable(output: Dataset, planted: Sequence[corpus.Planted], roles: Container[str]
              ) -> tuple[set[str], list[str]]:
    """The planted words of ``roles`` (3 characters or more), and those OCR still reads in
    any frame of ``output``."""
    frames, described = corpus.stored_frames(output)
    seen = _compact(" ".join(line.text or "" for lines in ocr.read_text(frames, described)
                             for line in lines))
    words = {w for line in planted if line.role in roles
             for w in re.split(r"[\s,:]+", line.text) if len(_compact(w)) >= 3}
    return words, [w for w in words if _compact(w) in seen]


def _away(planted: Sequence[corpus.Planted], rows: int, columns: int) -> np.ndarray:
    """Where the pixels are farther than the margin from every planted line."""
    away = np.ones((rows, columns), dtype=bool)
    for line in planted:
        box = line.box.grown(MARGIN).clipped(columns, rows)
        away[box.top:box.bottom, box.left:box.right] = False
    return away


@pytest.mark.parametrize("kind", KINDS)
def test_no_planted_word_is_readable_in_the_output(
        kind: str, runs: dict[str, tuple[corpus.CorpusImage, Dataset]]) -> None:
    image, output = runs[kind]
    words, readable = _readable(output, image.planted, {"identifier", "other"})
    assert words
    assert not readable, f"{kind}: {len(readable)} planted word(s) still readable"


@pytest.mark.parametrize("kind", KINDS)
def test_pixels_away_from_the_text_are_unchanged(
        kind: str, runs: dict[str, tuple[corpus.CorpusImage, Dataset]]) -> None:
    image, output = runs[kind]
    before = _decoded(image.ds)
    after = _decoded(output)
    assert after.shape == before.shape
    away = _away(image.planted, before.shape[1], before.shape[2])
    same = np.all(before == after, axis=-1)[:, away]
    assert same.mean() >= 0.99, f"{kind}: {same.mean():.4f} of the pixels away from text kept"


def test_an_image_without_text_keeps_its_pixel_data_bytes(tmp_path: Path) -> None:
    anonymizer = _anonymizer()
    for kind in ("monochrome2_16", "rgb_planar0", "jpeg2000", "rle"):
        image = corpus.make(kind, text=False)
        source = _write(image.ds, tmp_path / f"{kind}.dcm")
        result = anonymizer.anonymize_file(source, tmp_path / f"{kind}-out.dcm")
        assert result.status == "done", (kind, result.error)
        assert _read(tmp_path / f"{kind}-out.dcm").PixelData == _read(source).PixelData, kind


def _decoded(ds: Dataset) -> np.ndarray:
    """What a viewer shows: pixel values decoded, colour as RGB, frames first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        array = ds.pixel_array
    frames = int(ds.get("NumberOfFrames") or 1)
    rows, columns = int(ds.Rows), int(ds.Columns)
    samples = int(ds.SamplesPerPixel)
    return array.reshape(frames, rows, columns, samples)


def test_a_cine_with_a_name_on_every_frame_is_read_from_disk_frame_by_frame(
        tmp_path: Path) -> None:
    """The default mode (flagged: an ultrasound cine): every distinct frame is read (the
    anatomy moves under the text), the frames are taken from the file one at a time, and no
    planted identifier is readable in any frame of the output."""

    from pydicom.uid import UltrasoundMultiFrameImageStorage

    rows, columns, distinct, frames = 240, 320, 6, 150
    planted: list[corpus.Planted] = []
    patterns = []
    for frame in range(distinct):
        picture = corpus._anatomy(rows, columns, seed=31, frame=frame)
        picture, planted = corpus._draw(picture, corpus._layout(rows, columns))
        patterns.append(np.rint(corpus._grey_rgb(picture) * 255).astype(np.uint8))
    stack = np.stack([patterns[f % distinct] for f in range(frames)])
    ds = corpus._dataset(rows, columns, UltrasoundMultiFrameImageStorage, "US")
    del ds.BurnedInAnnotation  # flagged by its modality alone
    corpus._set_pixels(ds, stack, "RGB", 8)
    source = _write(ds, tmp_path / "cine.dcm")
    del ds
    result, peak = anonymize_traced(source, tmp_path / "out.dcm")  # flagged
    assert result.status == "done", result.error
    assert result.pixels is not None and result.pixels["ocr"] is True
    assert result.pixels["frames"] == frames and result.pixels["by_ocr"] > 0
    assert peak < stack.nbytes / 2, (peak, stack.nbytes)  # a few frames, not the 35 MB cine

    output = _read(tmp_path / "out.dcm")
    after = corpus.stored_frames(output)[0]
    words, readable = _readable(output, planted, {"identifier"})
    assert "mustermann" in {_compact(w) for w in words}
    assert not readable, f"{len(readable)} planted word(s) still readable"
    away = _away(planted, rows, columns)
    same = np.all(after == stack, axis=-1)[:, away]
    # 98 %, not the corpus's 99 %: on frames this small, the boxes' margins (3 pixels and a
    # fifth of the line's height, joined over the frames) reach past the 10 pixels kept free.
    assert same.mean() >= 0.98, f"{same.mean():.4f} of the pixels away from text kept"


def test_a_compressed_cine_is_read_and_encoded_again_a_frame_at_a_time(
        tmp_path: Path) -> None:
    """An RLE Lossless cine with a name on every frame: OCR decodes one frame at a time, the
    blanked frames are encoded again one by one in the same syntax; no name readable."""

    from pydicom.uid import RLELossless, UltrasoundMultiFrameImageStorage

    rows, columns, distinct, frames = 240, 320, 5, 400
    y, x = np.mgrid[0:rows, 0:columns]
    planted: list[corpus.Planted] = []
    patterns = []
    for frame in range(distinct):  # flat anatomy (RLE keeps it small), moving under the text
        inside = ((y - 118 - 3 * frame) / 26) ** 2 + ((x - 160) / 60) ** 2 <= 1
        picture = np.where(inside, 0.35, 0.02).astype(np.float32)
        picture, planted = corpus._draw(picture, corpus._layout(rows, columns))
        patterns.append(np.rint(picture * 255).astype(np.uint8)[..., None])
    stack = np.stack([patterns[f % distinct] for f in range(frames)])
    ds = corpus._dataset(rows, columns, UltrasoundMultiFrameImageStorage, "US")
    corpus._set_pixels(ds, stack, "MONOCHROME2", 8)
    ds.compress(RLELossless, generate_instance_uid=False)
    source = _write(ds, tmp_path / "cine.dcm")
    del ds
    result, peak = anonymize_traced(source, tmp_path / "out.dcm", pixels="all")
    assert result.status == "done", result.error
    assert result.pixels is not None and result.pixels["frames"] == frames
    assert result.pixels["transfer_syntax"] == RLELossless.name
    # The encoded cine (4 MB) is held, old and new fragments, and one decoded frame: never
    # the 30 MB of the decoded cine.
    assert peak < stack.nbytes * 0.8, (peak, stack.nbytes)

    output = _read(tmp_path / "out.dcm")
    assert output.file_meta.TransferSyntaxUID == RLELossless
    after = corpus.stored_frames(output)[0]
    words, readable = _readable(output, planted, {"identifier"})
    assert words and not readable, f"{len(readable)} planted word(s) still readable"
    away = _away(planted, rows, columns)
    assert (after[:, away] == stack[:, away]).mean() >= 0.98
