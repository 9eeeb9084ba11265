"""Issue 12, item 7: ``check --ocr`` and ``scan --ocr`` read the text left in the outputs' pixels.

Images of the pixel corpus (text drawn with a real font: the patient's name, ID, dates and
accession number, other text, and harmless labels) are de-identified by the command line twice:
with ``--pixels off`` (the text stays) and with the default pixel stage (the text is blanked).
The real OCR engine then reads the outputs. What is expected comes from what was planted: each
planted line, its box and its role; never from the code under test.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from dcmanon import cli
from dcmanon.check.findings import Report
from dcmanon.check.pixeltext import (
    BLANKED_COLOUR,
    THUMBNAIL_SIDE,
    THUMBNAILS,
    ImageRead,
    add_thumbnail,
    frames_to_read,
)
from dcmanon.check.report_html import render_html
from dcmanon.pixels.boxes import Box
from tests import pixel_corpus as corpus
from tests.test_report_html import browse, png_size

pytestmark = pytest.mark.ocr

IMAGE = "monochrome2_8"
SECRET_WORDS = ("MUSTERMANN", "ERIKA", "4711", "556731", "WESTEND")
"""Words of the planted lines that no masked report may hold."""


@dataclass
class Run:
    root: Path
    image: corpus.CorpusImage

    @property
    def original(self) -> Path:
        return self.root / "orig"

    def out(self, name: str) -> Path:
        return self.root / name


def invoke(*args: object) -> Result:
    result = CliRunner().invoke(cli.main, [str(a) for a in args])
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def write(ds: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=True)  # type: ignore[attr-defined]


def anonymize(run: Run, name: str, *pixels: str) -> Path:
    result = invoke("-I", run.original, "-O", run.out(name), *pixels)
    assert result.exit_code == 0, result.output
    return run.out(name)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("pixel-verify")
    image = corpus.make(IMAGE)
    done = Run(root, image)
    write(image.ds, done.original / "img.dcm")
    anonymize(done, "off", "--pixels", "off")
    anonymize(done, "clean")  # the default: flagged (BurnedInAnnotation YES: OCR)
    return done


def report_json(args: list[object], tmp_path: Path, name: str) -> tuple[Result, dict]:
    out = tmp_path / f"{name}.json"
    result = invoke(*args, "--json", out)
    return result, json.loads(out.read_text(encoding="utf-8"))


def overlap(a: Box, xywh: list[int]) -> float:
    """The share of ``a`` that the (x, y, w, h) box covers."""
    x, y, w, h = xywh
    width = min(a.right, x + w) - max(a.left, x)
    height = min(a.bottom, y + h) - max(a.top, y)
    return max(0, width) * max(0, height) / a.area if width > 0 and height > 0 else 0.0


def pixel_findings(data: dict, category: str | None = None) -> list[dict]:
    return [f for f in data["findings"] if f["category"].startswith("pixel-")
            and (category is None or f["category"] == category)]


# --- check --------------------------------------------------------------------------------


def test_check_finds_the_text_left_when_the_pixels_were_not_cleaned(run: Run,
                                                                     tmp_path: Path) -> None:
    result, data = report_json(["check", "--original", run.original, "--anonymized",
                                run.out("off"), "--ocr"], tmp_path, "off")
    assert result.exit_code == 1, result.output
    identifiers = pixel_findings(data, "pixel-identifier")
    for line in run.image.words("identifier"):
        hits = [f for f in identifiers if overlap(line.box, f["box"]) >= 0.8]
        assert hits, f"the planted identifier at {line.box} was not reported"
        assert all(f["frame"] == 0 and f["file"] == "img.dcm" for f in hits)
        assert all(re.fullmatch(r".… \(\d+ chars\)", f["value"]) for f in hits)
    name = next(p for p in run.image.planted if p.text.startswith("MUSTERMANN"))
    assert any(f["kind"] == "name" for f in identifiers if overlap(name.box, f["box"]) >= 0.8)
    other = run.image.words("other")
    assert other and all(any(overlap(line.box, f["box"]) >= 0.8
                             for f in pixel_findings(data, "pixel-text")) for line in other)
    for line in run.image.words("harmless"):  # "R", "10 cm": labels that may stay
        assert not any(overlap(line.box, f["box"]) > 0 for f in pixel_findings(data))
    # Masked everywhere: the terminal summary and the JSON hold no planted word.
    everything = result.output + json.dumps(data)
    assert not [w for w in SECRET_WORDS if w.lower() in everything.lower()]
    assert data["by_element"] == {"(7FE0,0010) PixelData": data["findings_total"]}


def test_show_values_shows_what_ocr_read(run: Run, tmp_path: Path) -> None:
    result, data = report_json(["check", "--original", run.original, "--anonymized",
                                run.out("off"), "--ocr", "--show-values"], tmp_path, "shown")
    assert result.exit_code == 1
    read = " ".join(f["value"] for f in pixel_findings(data)).upper()
    assert "MUSTERMANN" in read and "4711" in read
    assert "MUSTERMANN" in result.output.upper()


def test_the_pixel_categories_can_be_ignored(run: Run, tmp_path: Path) -> None:
    result, data = report_json(["check", "--original", run.original, "--anonymized",
                                run.out("off"), "--ocr", "--ignore", "pixel-identifier",
                                "--ignore", "pixel-text"], tmp_path, "ignored")
    assert result.exit_code == 0, result.output
    assert data["ignored_categories"] == ["pixel-identifier", "pixel-text"]


def test_check_passes_the_cleaned_output_and_knows_what_was_blanked(run: Run,
                                                                    tmp_path: Path) -> None:
    result, data = report_json(["check", "--original", run.original, "--anonymized",
                                run.out("clean"), "--ocr"], tmp_path, "clean")
    assert result.exit_code == 0, result.output
    assert not pixel_findings(data)
    [image] = data["images"]
    assert image["file"] == "img.dcm" and image["frame"] == 0 and image["text"] == []
    # Every planted line of text (harmless labels excepted) lies within a blanked region.
    for line in run.image.planted:
        covered = max(overlap(line.box, b) for b in image["blanked"])
        if line.role == "harmless":
            assert covered == 0, f"the label {line.box} is not text to blank"
        else:
            assert covered >= 0.95, f"the planted line at {line.box} is not in a blanked region"


def test_without_ocr_the_pixels_are_not_read(run: Run, tmp_path: Path) -> None:
    result, data = report_json(["check", "--original", run.original, "--anonymized",
                                run.out("off")], tmp_path, "no-ocr")
    assert result.exit_code == 0, result.output
    assert data["images"] == [] and not pixel_findings(data)


# --- scan ---------------------------------------------------------------------------------


def test_scan_reports_the_text_left_in_an_uncleaned_output(run: Run, tmp_path: Path) -> None:
    result, data = report_json(["scan", run.out("off"), "--ocr"], tmp_path, "scan-off")
    assert result.exit_code == 1, result.output
    found = pixel_findings(data, "pixel-text")
    for line in run.image.planted:
        hit = any(overlap(line.box, f["box"]) >= 0.8 for f in found)
        assert hit == (line.role != "harmless"), (line.role, line.box)
    assert "burned-in" not in data["by_category"]  # the reading replaces the warning
    assert not [w for w in SECRET_WORDS if w.lower() in (result.output +
                                                         json.dumps(data)).lower()]
    assert [i["file"] for i in data["images"]] == ["img.dcm"]
    assert len(data["images"][0]["text"]) == len(found)


def test_scan_finds_no_text_in_the_cleaned_output(run: Run, tmp_path: Path) -> None:
    result, data = report_json(["scan", run.out("clean"), "--ocr"], tmp_path, "scan-clean")
    assert not pixel_findings(data), result.output
    assert data["images"] == []
    plain = report_json(["scan", run.out("clean")], tmp_path, "scan-plain")[1]
    assert plain["by_category"].get("burned-in") == 1  # without --ocr: only a warning


# --- multi-frame ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cine(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("pixel-verify-cine")
    done = Run(root, corpus.make("cine"))
    write(done.image.ds, done.original / "cine.dcm")
    anonymize(done, "off", "--pixels", "off")
    return done


def test_every_frame_of_a_cine_is_read_identical_ones_once(cine: Run, tmp_path: Path) -> None:
    result, data = report_json(["check", "--original", cine.original, "--anonymized",
                                cine.out("off"), "--ocr"], tmp_path, "cine")
    assert result.exit_code == 1
    stamp = next(p for p in cine.image.planted if p.frames is not None)
    on_its_frame = [f for f in pixel_findings(data, "pixel-identifier")
                    if overlap(stamp.box, f["box"]) >= 0.8]
    assert [f["frame"] for f in on_its_frame] == sorted(stamp.frames or ())
    # The name, at the same place on every frame, is one finding (the frames counted).
    name = next(p for p in cine.image.planted if p.text.startswith("MUSTERMANN"))
    [on_all] = [f for f in pixel_findings(data, "pixel-identifier")
                if overlap(name.box, f["box"]) >= 0.8]
    assert on_all["frame"] == 0
    assert f"{corpus.CINE_FRAMES} of {corpus.CINE_FRAMES} frame(s); 4 distinct" in \
        " ".join(data["notes"])


def test_a_long_image_is_sampled_as_asked(cine: Run, tmp_path: Path) -> None:
    result, data = report_json(["check", "--original", cine.original, "--anonymized",
                                cine.out("off"), "--ocr", "--ocr-frames", "2"], tmp_path, "two")
    assert result.exit_code == 1
    assert {f["frame"] for f in pixel_findings(data)} <= {0, corpus.CINE_FRAMES - 1}
    stamp = next(p for p in cine.image.planted if p.frames is not None)
    assert not [f for f in pixel_findings(data) if overlap(stamp.box, f["box"]) > 0]
    assert f"2 of {corpus.CINE_FRAMES} frame(s) (1 long multi-frame image(s) sampled" in \
        " ".join(data["notes"])


def test_frames_to_read() -> None:
    assert frames_to_read(1) == [0]
    assert frames_to_read(1000, 5) == [0, 250, 500, 749, 999]
    assert frames_to_read(7, 0) == list(range(7))


# --- the missing engine ---------------------------------------------------------------------

_RUN_BLOCKED = textwrap.dedent("""
    import sys
    sys.modules[{module!r}] = None  # the import fails as when the package is not installed
    from dcmanon import cli
    cli.main({args!r})
""")


@pytest.mark.parametrize("module", ["rapidocr", "onnxruntime"])
@pytest.mark.parametrize("command", ["check", "scan"])
def test_ocr_without_the_engine_names_the_extra(module: str, command: str, run: Run) -> None:
    args = ["check", "--original", str(run.original), "--anonymized", str(run.out("off")),
            "--ocr"] if command == "check" else ["scan", str(run.out("off")), "--ocr"]
    done = subprocess.run([sys.executable, "-c", _RUN_BLOCKED.format(module=module, args=args)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "pip install 'dcmanon[ocr]'" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


# --- the HTML page --------------------------------------------------------------------------


class Images(HTMLParser):
    """The attributes of every <img> and <figure> of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.figures: list[dict[str, str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(found)
        elif tag == "figure":
            self.figures.append(found)


def decoded(img: dict[str, str]) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert img["src"].startswith(prefix)
    picture = Image.open(io.BytesIO(base64.b64decode(img["src"][len(prefix):])))
    assert picture.format == "PNG"
    assert picture.size == (int(img["width"]), int(img["height"]))
    return np.asarray(picture.convert("RGB"))


def name_ink(picture: np.ndarray, image: corpus.CorpusImage) -> int:
    """The brightest pixel inside the planted name's box, in a picture of the image (away
    from the box's edges, where an outline is drawn)."""
    scale = picture.shape[1] / image.frames.shape[2]
    box = next(p for p in image.planted if p.text.startswith("MUSTERMANN")).box
    inner = picture[round(box.top * scale) + 3:round(box.bottom * scale) - 3,
                    round(box.left * scale) + 3:round(box.right * scale) - 3]
    return int(inner.min(axis=-1).max())  # grey ink: all channels high


def cyan_pixels(path: Path) -> int:
    shot = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(shot - np.array(BLANKED_COLOUR)).sum(axis=-1) <= 30).sum())


@pytest.fixture(scope="module")
def chromium(external_tool: Callable[[str], str]) -> str:
    return external_tool("chromium")


@pytest.mark.browser
def test_the_page_pictures_the_cleaned_image_with_its_blanked_regions(
        chromium: str, run: Run, tmp_path: Path) -> None:
    page = tmp_path / "clean.html"
    result = invoke("check", "--original", run.original, "--anonymized", run.out("clean"),
                    "--ocr", "--html", page)
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    assert "img-src data:" in html  # the policy lets data: pictures in, and nothing else

    dom = Images(browse(chromium, page, tmp_path, "--dump-dom"))
    [img] = dom.images
    assert img["class"] == "output"
    [figure] = dom.figures
    assert int(figure["data-blanked"]) >= len(run.image.planted) - 3  # lines can merge
    picture = decoded(img)
    assert max(picture.shape[:2]) == THUMBNAIL_SIDE
    assert name_ink(picture, run.image) <= 60  # the output: the name is blanked
    # The original's pixels are not in the page: every picture in it is the output's.
    assert html.count("data:image/png") == 1

    # Rendered under the page's policy: the outlines (drawn into the picture) are on screen,
    # and are gone when the picture is taken out of the same page.
    shot, bare = tmp_path / "shot.png", tmp_path / "bare.png"
    browse(chromium, page, tmp_path, "--window-size=1280,1600", f"--screenshot={shot}")
    without = tmp_path / "without.html"
    without.write_text(re.sub(r'src="data:image/png;base64,[^"]*"', 'src="data:,"', html),
                       encoding="utf-8")
    browse(chromium, without, tmp_path, "--window-size=1280,1600", f"--screenshot={bare}")
    assert png_size(shot) == (1280, 1600) and shot.stat().st_size > 20_000
    assert cyan_pixels(shot) - cyan_pixels(bare) >= 500


@pytest.mark.browser
def test_show_values_pictures_the_original_beside_it(chromium: str, run: Run,
                                                     tmp_path: Path) -> None:
    page = tmp_path / "shown.html"
    result = invoke("check", "--original", run.original, "--anonymized", run.out("clean"),
                    "--ocr", "--html", page, "--show-values")
    assert result.exit_code == 0, result.output
    dom = Images(browse(chromium, page, tmp_path, "--dump-dom"))
    by_class = {img["class"]: decoded(img) for img in dom.images}
    assert set(by_class) == {"output", "original"}
    assert name_ink(by_class["output"], run.image) <= 60
    assert name_ink(by_class["original"], run.image) >= 150  # the name, as it was


def test_the_page_caps_its_pictures_and_says_how_many_were_left_out() -> None:
    report = Report("check")
    frame = np.full((40, 60), 100, dtype=np.uint8)
    read = ImageRead(frames=1, read=1, distinct=1, changed={0: [Box(2, 3, 20, 10)]},
                     picture=(0, frame, frame))
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    for index in range(THUMBNAILS + 3):
        add_thumbnail(report, f"f{index}.dcm", ds, read, [])
    assert len(report.thumbnails) == THUMBNAILS and report.thumbnails_left_out == 3
    page = render_html(report)
    assert page.count("<img ") == THUMBNAILS
    assert f"Images ({THUMBNAILS} shown of {THUMBNAILS + 3})" in page
    assert "3 more image(s) not shown" in page


def test_an_output_without_an_original_at_its_path_is_read_against_every_original(
        run: Run, tmp_path: Path) -> None:
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    (renamed / "1.2.3.dcm").write_bytes((run.out("off") / "img.dcm").read_bytes())
    result, data = report_json(["check", "--original", run.original, "--anonymized", renamed,
                                "--ocr"], tmp_path, "renamed")
    assert result.exit_code == 1
    name = next(p for p in run.image.planted if p.text.startswith("MUSTERMANN"))
    assert any(f["kind"] == "name" and overlap(name.box, f["box"]) >= 0.8
               for f in pixel_findings(data, "pixel-identifier"))
    [image] = data["images"]
    assert image["blanked"] == [] and image["text"]  # paired by its pixels: none blanked


def test_two_files_are_compared_with_each_other(run: Run, tmp_path: Path) -> None:
    renamed = tmp_path / "renamed.dcm"
    renamed.write_bytes((run.out("clean") / "img.dcm").read_bytes())
    result, data = report_json(["check", "--original", run.original / "img.dcm",
                                "--anonymized", renamed, "--ocr"], tmp_path, "files")
    assert result.exit_code == 0, result.output
    [image] = data["images"]
    assert image["file"] == "renamed.dcm" and image["blanked"]


@pytest.mark.parametrize("shown", [False, True])
def test_the_text_left_is_covered_in_the_picture_unless_values_are_shown(
        run: Run, tmp_path: Path, shown: bool) -> None:
    page = tmp_path / "scan.html"
    result = invoke("scan", run.out("off"), "--ocr", "--html", page,
                    *(["--show-values"] if shown else []))
    assert result.exit_code == 1, result.output
    [img] = Images(page.read_text(encoding="utf-8")).images
    ink = name_ink(decoded(img), run.image)
    assert ink >= 150 if shown else ink <= 60


def test_progress_is_told_each_file(run: Run) -> None:
    from dcmanon.check.scan import scan
    from dcmanon.check.verify import check

    seen: list[str] = []
    check(run.original, run.out("off"), progress=seen.append)
    scan(run.out("off"), progress=seen.append)
    assert seen == ["img.dcm", "img.dcm"]


def test_a_renamed_output_is_paired_with_its_original_by_its_pixels(run: Run,
                                                                     tmp_path: Path) -> None:
    originals, renamed = tmp_path / "orig", tmp_path / "renamed"
    write(corpus.make("monochrome1_8").ds, originals / "other.dcm")  # same size, other pixels
    (originals / "img.dcm").write_bytes((run.original / "img.dcm").read_bytes())
    renamed.mkdir()
    (renamed / "2.25.1.dcm").write_bytes((run.out("clean") / "img.dcm").read_bytes())
    result, data = report_json(["check", "--original", originals, "--anonymized", renamed,
                                "--ocr"], tmp_path, "paired")
    assert not pixel_findings(data), result.output
    [image] = data["images"]
    for line in run.image.planted:
        if line.role != "harmless":
            assert max(overlap(line.box, b) for b in image["blanked"]) >= 0.95, line.box
    assert "1 output(s) without an original at the same path were paired with one by their " \
           "pixels" in data["notes"]


def test_pairing_by_pixels_declines_when_two_originals_fit(run: Run, tmp_path: Path) -> None:
    from dcmanon.check.pairing import PixelIndex
    from dcmanon.check.pixeltext import first_frame
    from dcmanon.io.files import read_dicom

    bare = tmp_path / "bare.dcm"  # the same picture without its text
    write(corpus.make(IMAGE, text=False).ds, bare)
    output = run.out("clean") / "img.dcm"
    header = read_dicom(output)
    alone = PixelIndex({"img.dcm": run.original / "img.dcm"}, first_frame)
    assert alone.find(output, header) == "img.dcm"
    both = PixelIndex({"img.dcm": run.original / "img.dcm", "bare.dcm": bare}, first_frame)
    assert both.find(output, header) is None
    assert both.find(run.out("off") / "img.dcm", read_dicom(run.out("off") / "img.dcm")) \
        == "img.dcm"  # the text left tells them apart


def test_pixels_that_do_not_decode_are_reported_unread(run: Run, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(run.out("off") / "img.dcm")
    ds.PixelData = ds.PixelData[:1000]  # far fewer values than Rows x Columns
    write(ds, broken / "img.dcm")
    result, data = report_json(["scan", broken, "--ocr"], tmp_path, "broken")
    assert result.exit_code == 1
    [unread] = [f for f in data["findings"] if f["category"] == "unreadable"]
    assert unread["element"] == "(7FE0,0010) PixelData"
    assert "could not be read by OCR" in unread["message"]
    assert "cannot be decoded" in unread["message"]


@dataclass
class Overlaid(Run):
    planted: Box


@pytest.fixture(scope="module")
def overlaid(tmp_path_factory: pytest.TempPathFactory) -> Overlaid:
    """An image without text in its pixels, with the name drawn in an overlay plane; and its
    output with the overlay kept (Clean Graphics) and the pixels left alone."""
    from PIL import ImageDraw

    image = corpus.make(IMAGE, text=False)
    ds = image.ds
    rows, columns = int(ds.Rows), int(ds.Columns)
    plane = Image.new("L", (columns, rows), 0)
    draw = ImageDraw.Draw(plane)
    face = corpus.font(20)
    draw.text((60, 200), "MUSTERMANN, ERIKA", fill=255, font=face)
    bits = np.packbits(np.asarray(plane).reshape(-1) > 127, bitorder="little").tobytes()
    ds.add_new(0x60000010, "US", rows)
    ds.add_new(0x60000011, "US", columns)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", bits + b"\0" * (len(bits) % 2))
    done = Overlaid(tmp_path_factory.mktemp("overlay"), image,
                    Box(*draw.textbbox((60, 200), "MUSTERMANN, ERIKA", font=face)))
    write(ds, done.original / "img.dcm")
    anonymize(done, "off", "--pixels", "off", "--option", "clean-graphics")  # overlays kept
    return done


def test_text_in_an_overlay_the_output_keeps_is_found(overlaid: Overlaid,
                                                      tmp_path: Path) -> None:
    done, planted = overlaid, overlaid.planted
    result, data = report_json(["check", "--original", done.original, "--anonymized",
                                done.out("off"), "--ocr"], tmp_path, "overlay")
    assert result.exit_code == 1, result.output
    [found] = [f for f in pixel_findings(data) if overlap(planted, f["box"]) >= 0.8]
    assert found["element"] == "(6000,3000) OverlayData"
    assert found["category"] == "pixel-identifier" and found["kind"] == "name"
    scanned = report_json(["scan", done.out("off"), "--ocr"], tmp_path, "overlay-scan")[1]
    assert [f["element"] for f in pixel_findings(scanned)] == ["(6000,3000) OverlayData"]


def test_the_pixel_stage_blanks_text_that_is_only_in_an_overlay(overlaid: Overlaid,
                                                                tmp_path: Path) -> None:
    anonymize(overlaid, "clean", "--option", "clean-graphics")
    result, data = report_json(["check", "--original", overlaid.original, "--anonymized",
                                overlaid.out("clean"), "--ocr"], tmp_path, "overlay-clean")
    assert not pixel_findings(data), result.output
    original = pydicom.dcmread(overlaid.original / "img.dcm")
    [output] = [pydicom.dcmread(p) for p in overlaid.out("clean").rglob("*.dcm")]
    assert output.PixelData == original.PixelData  # no text in the image: not touched
    kept = output.overlay_array(0x6000)
    assert kept.shape == original.overlay_array(0x6000).shape and not kept.any()
    assert original.overlay_array(0x6000)[overlaid.planted.top:overlaid.planted.bottom,
                                          overlaid.planted.left:overlaid.planted.right].any()
