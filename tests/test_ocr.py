"""OCR of burned-in text (dcmanon.pixels.ocr) on every kind of image of the pixel corpus.

The engine is the real one (RapidOCR from the ``ocr`` extra); each image is read once per
module (fixtures), so the whole file stays within a couple of minutes on two cores.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dcmanon.errors import MissingExtraError
from dcmanon.phi.identifiers import collect_identifiers
from dcmanon.phi.matching import fold
from dcmanon.pixels import ocr
from dcmanon.pixels.boxes import Box
from dcmanon.pixels.render import to_rgb8
from tests import pixel_corpus as corpus

pytestmark = pytest.mark.ocr

KINDS = list(corpus.KINDS)
IDENTIFIER_KINDS = ["monochrome2_8", "ybr_full_422_jpeg", "palette"]


@pytest.fixture(scope="module")
def images() -> dict[str, corpus.CorpusImage]:
    return {kind: corpus.make(kind) for kind in KINDS}


@pytest.fixture(scope="module")
def found(images: dict[str, corpus.CorpusImage]) -> dict[str, list[Box]]:
    return {kind: ocr.find_text_boxes(image.frames, image.stored_ds)
            for kind, image in images.items()}


def _mask(boxes: list[Box], frames: np.ndarray) -> np.ndarray:
    """Which pixels of a frame the boxes cover (frames=None boxes: every frame)."""
    mask = np.zeros(frames.shape[1:3], dtype=bool)
    for box in boxes:
        mask[box.top:box.bottom, box.left:box.right] = True
    return mask


def _covered(line: corpus.Planted, mask: np.ndarray) -> bool:
    return bool(mask[line.box.top:line.box.bottom, line.box.left:line.box.right].all())


def _touched(line: corpus.Planted, mask: np.ndarray) -> bool:
    return bool(mask[line.box.top:line.box.bottom, line.box.left:line.box.right].any())


@pytest.mark.parametrize("kind", KINDS)
def test_boxes_cover_every_planted_word(kind: str, images: dict[str, corpus.CorpusImage],
                                        found: dict[str, list[Box]]) -> None:
    image = images[kind]
    boxes = found[kind]
    mask = _mask(boxes, image.frames)
    missed = [line.text for line in image.planted
              if line.role != "harmless" and not _covered(line, mask)]
    assert not missed, f"{kind}: text not covered by the boxes"
    rows, columns = image.frames.shape[1:3]
    for box in boxes:
        assert box.frames is None  # joined over the frames of a cine: every frame
        assert 0 <= box.left < box.right <= columns and 0 <= box.top < box.bottom <= rows


@pytest.mark.parametrize("kind", KINDS)
def test_allow_list_keeps_laterality_and_units(kind: str, images: dict[str, corpus.CorpusImage],
                                               found: dict[str, list[Box]]) -> None:
    image = images[kind]
    mask = _mask(found[kind], image.frames)
    harmless = image.words("harmless")
    assert {line.text for line in harmless} == {"R", "10 cm"}
    assert not [line.text for line in harmless if _touched(line, mask)]


@pytest.mark.parametrize("kind", KINDS)
def test_text_free_images_give_no_box(kind: str) -> None:
    image = corpus.make(kind, text=False)
    assert ocr.find_text_boxes(image.frames, image.stored_ds) == []


def _fill(frames: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """Blank the boxes with each sample's smallest value (a simple fill; the real blanking is
    the pixel stage's)."""
    out = frames.copy()
    low = frames.min(axis=(0, 1, 2))
    for box in boxes:
        out[:, box.top:box.bottom, box.left:box.right, :] = low
    return out


def _compact(text: str) -> str:
    return re.sub(r"[\W_]+", "", fold(text))


@pytest.mark.parametrize("kind", KINDS)
def test_after_blanking_no_planted_word_is_readable(kind: str,
                                                    images: dict[str, corpus.CorpusImage],
                                                    found: dict[str, list[Box]]) -> None:
    image = images[kind]
    blanked = _fill(image.frames, found[kind])
    read = " ".join(line.text or "" for lines in ocr.read_text(blanked, image.stored_ds)
                    for line in lines)
    seen = _compact(read)
    words = {w for line in image.planted if line.role != "harmless"
             for w in re.split(r"[\s,:]+", line.text) if len(_compact(w)) >= 3}
    assert words
    readable = [w for w in words if _compact(w) in seen]
    assert not readable, f"{kind}: {len(readable)} planted words still readable"


def test_ocr_reads_the_planted_words_before_blanking(images: dict[str, corpus.CorpusImage]
                                                     ) -> None:
    """The check above can fail: on the unblanked image the same reading finds the words."""
    image = images["monochrome2_8"]
    read = _compact(" ".join(line.text or "" for lines in
                             ocr.read_text(image.frames, image.stored_ds) for line in lines))
    assert _compact("MUSTERMANN") in read and _compact(corpus.PATIENT_ID) in read


@pytest.mark.parametrize("kind", IDENTIFIER_KINDS)
def test_identifiers_only_blanks_the_identifiers_and_nothing_else(
        kind: str, images: dict[str, corpus.CorpusImage]) -> None:
    image = images[kind]
    boxes = ocr.find_text_boxes(image.frames, image.stored_ds, identifiers=corpus.IDENTIFIERS)
    mask = _mask(boxes, image.frames)
    assert not [p.text for p in image.words("identifier") if not _covered(p, mask)]
    assert not [p.text for p in image.planted if p.role != "identifier" and _touched(p, mask)]


def test_identifiers_only_with_the_terms_the_pipeline_collects(
        images: dict[str, corpus.CorpusImage]) -> None:
    """The pixel stage passes ``collect_identifiers(ds).terms`` (names split, dates spelled)."""
    image = images["rgb_planar0"]
    terms = collect_identifiers(image.ds).terms
    boxes = ocr.find_text_boxes(image.frames, image.stored_ds, identifiers=terms)
    mask = _mask(boxes, image.frames)
    assert not [p.text for p in image.words("identifier") if not _covered(p, mask)]
    assert not [p.text for p in image.planted if p.role != "identifier" and _touched(p, mask)]


def test_no_identifiers_to_look_for_gives_no_box(images: dict[str, corpus.CorpusImage]) -> None:
    image = images["monochrome2_8"]
    assert ocr.find_text_boxes(image.frames, image.stored_ds, identifiers=[]) == []


@pytest.mark.parametrize("text", [
    "MUSTERMANN, ERIKA", "Erika Mustermann", "mustermann^erika", "MUSTERMANNERIKA",
    "Name: E. Mustermann", "ID PAT4711-0815", "PAT 4711 0815", "PAT47110815", "PAT4711-O815",
    "19700101", "1970-01-01", "01/01/1970", "01.01.1970", "Jan 1 1970", "January 1, 1970",
    "1 JAN 1970", "DOB:01-01-1970", "2024-01-31 10:42", "31/01/2024", "01/31/2024",
    "ACC A24-556731", "A24556731", "31-JAN-24", "31.01.24", "01/31/24",
])
def test_identifier_spellings_match(text: str) -> None:
    assert ocr.IdentifierMatcher(corpus.IDENTIFIERS).matches(text)


@pytest.mark.parametrize("text", [
    "HR 72 GAIN 45", "10 cm", "R", "1971-01-01", "02.01.1970", "PAT4712", "Erik Muster",
    "MI 0.8 TIS 0.4", "Feb 1 1970",
])
def test_other_text_does_not_match(text: str) -> None:
    assert not ocr.IdentifierMatcher(corpus.IDENTIFIERS).matches(text)


@pytest.mark.parametrize(("text", "harmless"), [
    ("R", True), ("l", True), ("10 cm", True), ("5.0MHz", True), ("-20 dB", True),
    ("A P", True), ("0 5 10 15", True), ("H", True),
    ("", False), ("DOE", False), ("R DOE", False), ("1970", False), ("19700101", False),
    ("4711", False), ("01.01.1970", False), ("10 cm DOE", False), ("ID", False),
])
def test_allow_list(text: str, harmless: bool) -> None:
    assert ocr.is_harmless(text) is harmless


def test_identical_frames_are_read_once_and_text_is_never_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    image = corpus.make("cine")
    # Three frames, two identical: read twice.
    frames = image.frames[[0, 3, 4]]
    with caplog.at_level(logging.DEBUG, logger="dcmanon"):
        boxes = ocr.find_text_boxes(frames, image.stored_ds)
    assert boxes
    assert "read 2 distinct frames of 3" in caplog.text
    logged = _compact(caplog.text)
    assert not [p.text for p in image.planted
                if len(_compact(p.text)) >= 3 and _compact(p.text) in logged]


def test_a_cine_box_found_on_one_frame_applies_to_every_frame(
        images: dict[str, corpus.CorpusImage], found: dict[str, list[Box]]) -> None:
    image = images["cine"]
    stamp = [p for p in image.planted if p.frames == frozenset({corpus.CINE_TIME_FRAME})]
    assert len(stamp) == 1
    holding = [b for b in found["cine"] if b.left <= stamp[0].box.left
               and b.right >= stamp[0].box.right and b.top <= stamp[0].box.top
               and b.bottom >= stamp[0].box.bottom]
    assert holding and all(b.frames is None and b.applies_to(0) for b in holding)


def test_large_images_are_shrunk_for_detection_and_boxes_mapped_back(
        images: dict[str, corpus.CorpusImage], found: dict[str, list[Box]]) -> None:
    image = images["radiograph_large"]
    assert max(image.frames.shape[1:3]) > ocr.MAX_SIDE
    name = next(p for p in image.planted if p.text.startswith("MUSTERMANN"))
    # The box around the name is about its size in the full image, not in the shrunk one.
    holding = [b for b in found["radiograph_large"] if b.left <= name.box.left
               and b.right >= name.box.right and b.top <= name.box.top]
    assert holding and min(b.width for b in holding) < 2 * name.box.width


def test_frames_too_small_to_hold_a_line_are_not_read() -> None:
    image = corpus.make("monochrome2_8")
    assert ocr.find_text_boxes(image.frames[:, :12, :200], image.stored_ds) == []
    # The same corner with room for its text is read.
    assert ocr.find_text_boxes(image.frames[:, :64, :200], image.stored_ds)


def test_frames_must_be_four_dimensional(images: dict[str, corpus.CorpusImage]) -> None:
    image = images["monochrome2_8"]
    with pytest.raises(ValueError, match="4-D"):
        ocr.find_text_boxes(image.frames[0], image.stored_ds)


def test_the_engine_is_loaded_once_per_process() -> None:
    assert ocr.load_engine() is ocr.load_engine()


def test_render_shows_every_kind_with_its_text_bright(images: dict[str, corpus.CorpusImage]
                                                      ) -> None:
    """Text drawn white shows white (MONOCHROME1 inverted, signed data offset, YBR and
    palette converted), whatever the stored values."""
    for kind, image in images.items():
        rgb = to_rgb8(image.frames[0], image.stored_ds)
        assert rgb.dtype == np.uint8 and rgb.shape == (*image.frames.shape[1:3], 3)
        name = next(p for p in image.planted if p.text.startswith("MUSTERMANN"))
        ink = rgb[name.box.top:name.box.bottom, name.box.left:name.box.right].max()
        background = np.median(rgb[name.box.top:name.box.bottom,
                                   name.box.left:name.box.right])
        assert ink >= 200 and background <= 60, kind


_RUN_BLOCKED = textwrap.dedent("""
    import sys
    sys.modules[{module!r}] = None  # the import fails as when the package is not installed
    import numpy as np
    from pydicom.dataset import Dataset
    from dcmanon.errors import MissingExtraError
    from dcmanon.pixels.ocr import find_text_boxes
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    try:
        find_text_boxes(np.zeros((1, 8, 8, 1), np.uint8), ds)
    except MissingExtraError as exc:
        print(exc)
    else:
        print("no error")
""")


@pytest.mark.parametrize("module", ["rapidocr", "onnxruntime"])
def test_a_missing_engine_names_the_extra_and_the_way_out(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", _RUN_BLOCKED.format(module=module)],
                          capture_output=True, text=True, timeout=120, check=True)
    assert "pip install 'dcmanon[ocr]'" in done.stdout
    assert "--pixels rules" in done.stdout
    assert issubclass(MissingExtraError, Exception)


_RUN_OFFLINE = textwrap.dedent("""
    import socket
    def refuse(*args, **kwargs):
        raise OSError("network refused by the test")
    socket.socket.connect = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    import sys
    sys.path.insert(0, {root!r})
    from tests import pixel_corpus as corpus
    from dcmanon.pixels.ocr import find_text_boxes
    image = corpus.make("monochrome2_8")
    print(len(find_text_boxes(image.frames, image.stored_ds)))
""")


def test_the_engine_works_offline_from_the_models_in_the_wheel(tmp_path) -> None:
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", _RUN_OFFLINE.format(root=root)],
                          capture_output=True, text=True, timeout=300, check=True,
                          cwd=tmp_path, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert int(done.stdout.strip().splitlines()[-1]) >= 6
