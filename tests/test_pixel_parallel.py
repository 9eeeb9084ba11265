"""``check --ocr`` and ``scan --ocr`` read the pixels in worker processes (``-j N``) and give
the report the one-process run gives, finding for finding and in the same order, pictures
included; an image that fails, or whose worker dies, gives its ``unreadable`` finding and the
run goes on.

Six images of the pixel corpus (text drawn with a real font) are de-identified with their
text left in the pixels; one output also gets an identifier in a header element (findings of
the header and of the pixels interleave) and one gets pixel data that cannot be decoded.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner

from dcmanon import cli
from dcmanon.check.findings import Finding, Report
from dcmanon.check.ocrpool import OcrPool, PixelResult
from tests import pixel_corpus as corpus

KINDS = ("monochrome2_8", "rgb_planar0", "monochrome1_16", "ct_signed", "palette", "rle")


def invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, [str(a) for a in args])
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def write(ds: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=True)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pixel-parallel")
    for number, kind in enumerate(KINDS):
        write(corpus.make(kind).ds, root / "orig" / f"img{number}.dcm")
    code, output = invoke("-I", root / "orig", "-O", root / "out", "--pixels", "off")
    assert code == 0, output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        leaky = root / "out" / "img2.dcm"
        ds = pydicom.dcmread(leaky)
        ds.StudyDescription = corpus.PATIENT_NAME  # a header finding among pixel ones
        ds.save_as(leaky)
        broken = root / "out" / "img4.dcm"
        ds = pydicom.dcmread(broken)
        ds.PixelData = ds.PixelData[:100]  # cannot be decoded: unreadable
        ds.save_as(broken)
    return root / "orig", root / "out"


def reports(args: list[object], tmp_path: Path, jobs: int) -> tuple[int, dict, str]:
    json_path, html_path = tmp_path / f"{jobs}.json", tmp_path / f"{jobs}.html"
    code, output = invoke(*args, "-j", jobs, "--json", json_path, "--html", html_path)
    assert code == 1, output
    return code, json.loads(json_path.read_text("utf-8")), html_path.read_text("utf-8")


@pytest.mark.parametrize("command", ["check", "scan"])
def test_two_workers_give_the_report_of_one_process(command: str, outputs: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    original, anonymized = outputs
    args: list[object] = ["check", "--original", original, "--anonymized", anonymized] \
        if command == "check" else ["scan", anonymized]
    args += ["--ocr", "--show-values"]
    _, one, one_html = reports(args, tmp_path, 1)
    _, two, two_html = reports(args, tmp_path, 2)
    assert two == one
    assert two_html == one_html
    files = [f["file"] for f in one["findings"]]
    assert files == sorted(files)  # file by file, as the files are read
    pixel = {f["file"] for f in one["findings"] if f["category"].startswith("pixel-")}
    assert pixel >= {"img0.dcm", "img1.dcm", "img2.dcm", "img3.dcm"}
    assert [f["file"] for f in one["findings"] if f["category"] == "unreadable"] == \
        ["img4.dcm"]
    if command == "check":
        elements = [f["category"] for f in one["findings"] if f["file"] == "img2.dcm"]
        assert "element" in elements and "pixel-identifier" in elements
    assert "data:image/png;base64," in one_html


def read(task: tuple[str, int]) -> PixelResult:
    """A stand-in for the OCR of an image: a finding per task; task "die" kills its worker."""
    if task[0] == "die":
        os._exit(3)
    return PixelResult([Finding("pixel-text", task[0], "(7FE0,0010) PixelData", "text",
                                "", "read")], counts=[1, 1, 1, 1, 0])


def start() -> None:
    """Nothing to load."""


def test_a_worker_that_dies_gives_an_unreadable_finding_and_the_run_goes_on() -> None:
    report = Report("scan")
    counts = [0] * 5
    pool: OcrPool[tuple[str, int]] = OcrPool(report, 2, read, start, (), counts)
    names = ["a", "b", "die", "c", "d", "e", "f"]
    for name in names:
        report.add(Finding("element", name, "(0010,0010) PatientName"))
        pool.submit(name, lambda name=name: read((name, 0)), (name, 0))
    pool.finish()
    assert [(f.file, f.category) for f in report.findings] == [
        (n, c) for n in names for c in ("element", "unreadable" if n == "die" else "pixel-text")]
    died = next(f for f in report.findings if f.category == "unreadable")
    assert died.message == "its pixels could not be read by OCR: unexpected BrokenProcessPool"
    assert counts == [6, 6, 6, 6, 0] and report.total == 14


def test_findings_put_in_their_place_keep_the_first_ones_when_too_many() -> None:
    from dcmanon.check import findings

    report = Report("check", ignored=frozenset({"pixel-text"}))
    kept = findings.FINDINGS_KEPT
    for number in range(kept):
        report.add(Finding("element", f"{number}"))
    assert report.add_at(kept - 1, Finding("pixel-identifier", "late"))
    assert not report.add_at(0, Finding("pixel-text", "ignored"))
    assert report.add_at(kept + 1, Finding("pixel-identifier", "beyond"))
    assert len(report.findings) == kept and report.findings[-1].file == "late"
    assert report.findings[-2].file == f"{kept - 2}" and report.total == kept + 2
