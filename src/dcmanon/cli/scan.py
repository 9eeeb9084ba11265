"""``dcmanon scan``: look for what PHI looks like in outputs, without the originals."""

from __future__ import annotations

import click

from dcmanon.check.categories import SCAN_CATEGORIES
from dcmanon.cli.options import guarded
from dcmanon.cli.reports import finish, report_options


@click.command("scan")
@click.argument("target", type=click.Path(exists=True))
@report_options(SCAN_CATEGORIES)
def scan_command(target: str, json_path: str | None, html_path: str | None,
                 show_values: bool, ignore: tuple[str, ...]) -> None:
    """Look for signs of PHI in de-identified files, without the originals.

    \b
      dcmanon scan out_dir --html scan.html

    Person names, dates, telephone numbers, e-mail and postal addresses in text values;
    private elements; PatientIdentityRemoved missing; images that may carry burned-in text
    (BurnedInAnnotation YES, or a modality that often does). Patterns report what looks like
    PHI: check each finding. With the originals at hand, `dcmanon check` is the proof.

    \b
    Exit status:
      0  nothing found
      1  findings
      2  usage error
    """
    def run() -> None:
        from dcmanon.check.scan import scan

        finish(scan(target, ignore=ignore), json_path, html_path, show_values)

    guarded(run)
