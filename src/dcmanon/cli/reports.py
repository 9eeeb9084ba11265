"""The report options of ``check`` and ``scan``, and how their reports are written."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from dcmanon.cli.options import EXIT_FAILED, EXIT_OK, F, fail, jobs_option
from dcmanon.errors import describe_os_error

if TYPE_CHECKING:
    from dcmanon.check.findings import Report


def report_options(categories: tuple[str, ...]) -> Callable[[F], F]:
    """``--json``, ``--html``, ``--show-values``, ``--ignore`` (one of ``categories``)."""
    def decorate(func: F) -> F:
        for option in reversed([
            click.option("--json", "json_path", type=click.Path(dir_okay=False),
                         help="Also write the report as JSON to this file ('-': stdout)."),
            click.option("--html", "html_path", type=click.Path(dir_okay=False),
                         help="Also write the report as one self-contained HTML page."),
            click.option("--show-values", is_flag=True,
                         help="Show the values found; by default only their first character "
                              "and length (the report would otherwise carry the PHI)."),
            click.option("--ignore", "ignore", multiple=True, metavar="CATEGORY",
                         type=click.Choice(categories),
                         help="Do not count this category (e.g. original-uid when UIDs were "
                              "kept on purpose); repeat for several."),
        ]):
            func = option(func)
        return func
    return decorate


def ocr_options(func: F) -> F:
    """``--ocr``, ``--ocr-frames`` and ``-j/--jobs``."""
    func = jobs_option("reading the pixels with --ocr",
                       "; the report is the same whatever their number")(func)
    func = click.option("--ocr-frames", "ocr_frames", type=click.IntRange(min=0), default=32,
                        show_default=True, metavar="N",
                        help="With --ocr: frames read per image at most; longer multi-frame "
                             "images are sampled evenly, first and last frame included "
                             "(0: every frame).")(func)
    return click.option("--ocr", "ocr", is_flag=True,
                        help="Also read the text left in the outputs' pixels (every image, "
                             "frame by frame; needs dcmanon[ocr]). The HTML report then "
                             "shows the cleaned images with the blanked regions "
                             "outlined.")(func)


@contextmanager
def progress_bar(unit: str = "file") -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr (only on a terminal): the callback the checks call per file."""
    from tqdm import tqdm

    bar = tqdm(unit=unit, file=sys.stderr, disable=not sys.stderr.isatty(), leave=False,
               dynamic_ncols=True)
    try:
        yield lambda _rel: bar.update(1)
    finally:
        bar.close()


def finish(report: Report, json_path: str | None, html_path: str | None,
           show_values: bool) -> NoReturn:
    """Print the summary, write the report files, exit 0 (clean) or 1 (findings)."""
    from dcmanon.check.report_html import render_html
    from dcmanon.check.report_text import render_text, report_dict

    if json_path is not None:
        text = json.dumps(report_dict(report, show_values), indent=2, ensure_ascii=False)
        if json_path == "-":
            click.echo(text)
        else:
            _write(json_path, text + "\n")
    if html_path is not None:
        _write(html_path, render_html(report, show_values))
    click.echo(render_text(report, show_values), err=json_path == "-")
    sys.exit(EXIT_OK if report.passed else EXIT_FAILED)


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"{path}: cannot write the report ({describe_os_error(exc)})")
