"""``dcmanon scan``: look for what PHI looks like in outputs, without the originals."""

from __future__ import annotations

import click

from dcmanon.check.categories import SCAN_CATEGORIES
from dcmanon.cli.options import guarded
from dcmanon.cli.reports import finish, ocr_options, progress_bar, report_options


@click.command("scan")
@click.argument("target", type=click.Path(exists=True))
@report_options(SCAN_CATEGORIES)
@ocr_options
def scan_command(target: str, json_path: str | None, html_path: str | None,
                 show_values: bool, ignore: tuple[str, ...], ocr: bool, ocr_frames: int,
                 jobs: int | None) -> None:
    """Look for signs of PHI in de-identified files, without the originals.

    \b
      dcmanon scan out_dir --html scan.html

    Person names, dates, telephone numbers, e-mail and postal addresses in text values;
    private elements; PatientIdentityRemoved missing; images that may carry burned-in text
    (BurnedInAnnotation YES, or a modality that often does). Patterns report what looks like
    PHI: check each finding. With the originals at hand, `dcmanon check` is the proof.

    With --ocr, the text left in the pixels is read (pixel-text findings, with frame and
    box; labels such as R, L, 10 cm excepted); it replaces the burned-in warning of the images
    read. Images are read by -j worker processes at once; the report is the same.

    \b
    Exit status:
      0  nothing found
      1  findings
      2  usage error
      130  interrupted (no report written)
    """
    def run() -> None:
        from dcmanon.batch.executors import available_cores
        from dcmanon.check.scan import scan

        with progress_bar() as progress:
            report = scan(target, ignore=ignore, ocr=ocr, ocr_frames=ocr_frames,
                          show_values=show_values, jobs=jobs or available_cores(),
                          progress=progress)
        finish(report, json_path, html_path, show_values)

    guarded(run)
