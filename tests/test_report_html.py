"""The HTML report, opened in a real browser: headless Chromium (Debian package ``chromium``).

Chromium renders the page from a ``file://`` URL with networking features off; the DOM it
dumps must show the verdict, the counts by category and element, and no unmasked value. A
screenshot is saved under ``tmp_path``. ``scripts/install-system-deps.sh`` installs Chromium;
without it the browser tests skip, or fail with ``DCMANON_REQUIRE_PEERS=1`` (``make test``, CI).
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pydicom.dataset import FileDataset

from dcmanon.check.findings import Finding, Report, mask
from dcmanon.check.report_html import render_html
from dcmanon.check.verify import check
from tests.verify_sets import Sets, edit, make_sets, original

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1280,900")


@pytest.fixture(scope="module")
def chromium(external_tool: Callable[[str], str]) -> str:
    return external_tool("chromium")


def browse(chromium: str, page: Path, tmp_path: Path, *action: str) -> str:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action,
                           page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class Dom(HTMLParser):
    """The text of the elements with an id, and the rows of the tables, as Chromium shows."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self._open: list[tuple[str, str | None]] = []
        self._table: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ident = dict(attrs).get("id")
        self._open.append((tag, ident))
        if ident:
            self.by_id[ident] = ""
        if tag == "table":
            self._table = ident
            self.rows[ident or ""] = []
        elif tag == "tr" and self._table is not None:
            self.rows[self._table].append([])
        elif tag == "td" and self._table is not None and self.rows[self._table]:
            self.rows[self._table][-1].append("")

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()[0] == tag:
                break
        if tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        for _, ident in self._open:
            if ident:
                self.by_id[ident] += data
        if self._table is not None and self.rows[self._table] and \
                self.rows[self._table][-1] and any(t == "td" for t, _ in self._open):
            self.rows[self._table][-1][-1] += data


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Sets:
    return make_sets(tmp_path_factory.mktemp("clean"), patients=1)


def failing_report(clean: Sets, tmp_path: Path) -> tuple[Report, str]:
    sets = clean.copy(tmp_path / "out")
    name = str(original(sets).PatientName)

    def change(out: FileDataset) -> None:
        out.PerformedProtocolCodeSequence[0].ProtocolContextSequence[0].PersonName = name
        out.StudyDate = str(original(sets).StudyDate)

    edit(sets.output(0), change)
    edit(sets.output(1), lambda out: setattr(out, "StudyDate", str(original(sets, 1).StudyDate)))
    return check(sets.original, sets.anonymized), name


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.browser
def test_a_failing_report_shows_its_verdict_and_counts(chromium: str, clean: Sets,
                                                       tmp_path: Path) -> None:
    report, name = failing_report(clean, tmp_path)
    assert dict(report.by_category) == {"nested": 1, "original-date": 2}
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")

    dom = Dom(browse(chromium, page, tmp_path, "--dump-dom"))
    assert dom.by_id["verdict"].strip() == "FAIL"
    assert dom.by_id["total"].strip() == "3"
    assert dom.by_id["files"].strip() == str(len(clean.originals))
    categories = {row[0]: int(row[1]) for row in dom.rows["by-category"] if len(row) >= 2}
    assert categories == {"original-date": 2, "nested": 1}
    elements = {row[0]: int(row[1]) for row in dom.rows["by-element"] if len(row) >= 2}
    assert elements["(0008,0020) StudyDate"] == 2
    assert len(dom.rows["findings"]) == 1 + 3  # header row + one per finding
    assert mask(name) in dom.by_id["findings"] and name not in dom.by_id["findings"]

    shot = tmp_path / "shot.png"
    browse(chromium, page, tmp_path, f"--screenshot={shot}")
    assert png_size(shot) == (1280, 900)
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank image


@pytest.mark.browser
def test_a_passing_report_shows_pass(chromium: str, clean: Sets, tmp_path: Path) -> None:
    report = check(clean.original, clean.anonymized)
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    dom = Dom(browse(chromium, page, tmp_path, "--dump-dom"))
    assert dom.by_id["verdict"].strip() == "PASS"
    assert dom.by_id["total"].strip() == "0"
    assert dom.by_id["findings"].strip() == "None."
    shot = tmp_path / "pass.png"
    browse(chromium, page, tmp_path, f"--screenshot={shot}")
    assert png_size(shot) == (1280, 900)


def test_the_page_is_self_contained_and_escapes_what_it_shows() -> None:
    report = Report("scan")
    report.add(Finding("name", "<b>a.dcm</b>", "(0020,4000) ImageComments", "name",
                       "<script>alert(1)</script>", "free text that looks like a name"))
    page = render_html(report, show_values=True)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "src=" not in page and "href=" not in page and "@import" not in page
    assert "default-src 'none'" in page
