"""``dcmanon check``: prove that outputs carry none of their originals' identifiers."""

from __future__ import annotations

import click

from dcmanon.check.categories import CHECK_CATEGORIES
from dcmanon.cli.options import config_options, configuration_given, guarded, load_run_config
from dcmanon.cli.reports import finish, ocr_options, progress_bar, report_options


@click.command("check")
@click.option("--original", required=True, type=click.Path(exists=True),
              help="The original files (a folder, read recursively, or one file).")
@click.option("--anonymized", required=True, type=click.Path(exists=True),
              help="The de-identified files (a folder, or one file).")
@report_options(CHECK_CATEGORIES)
@ocr_options
@config_options("the outputs were made with; the text of the elements it keeps is not "
                "looked for")
def check_command(original: str, anonymized: str, json_path: str | None,
                  html_path: str | None, show_values: bool, ignore: tuple[str, ...],
                  ocr: bool, ocr_frames: int, jobs: int | None, config_file: str | None,
                  key_file: str | None, profile: str | None,
                  options: tuple[str, ...]) -> None:
    """Prove that a de-identified set carries none of its originals' identifiers.

    \b
      dcmanon check --original in_dir --anonymized out_dir --html report.html

    The identifiers of the originals (person names in all their component forms, IDs, dates
    in common spellings, UIDs, and the text of every element the configuration does not
    keep) are looked for in every output: each element value at any depth, private elements,
    the file meta, the raw bytes outside pixel data, and file and folder names. Original
    dates and UIDs that survived are reported, and so is broken referential integrity (study
    and series grouping, SOPInstanceUID = MediaStorageSOPInstanceUID, references that no
    longer resolve within the set).

    With --ocr, the text left in the outputs' pixels is read too: a line holding an
    identifier of its original (pixel-identifier) or other text (pixel-text; labels such as
    R, L, 10 cm excepted), with its frame and box. The HTML page shows each cleaned image
    with the blanked regions outlined (the original beside it only with --show-values).
    Images are read by -j worker processes at once; the report is the same.

    Found values are masked (first character and length) unless --show-values.

    \b
    Exit status:
      0  nothing found
      1  findings (listed; see --json / --html for all of them)
      2  usage error
      130  interrupted (no report written)
    """
    def run() -> None:
        from dcmanon.batch.executors import available_cores
        from dcmanon.check.verify import check
        from dcmanon.config.loader import default_config

        # As the main command: -c, else ./configuration.json, else the Basic Profile (which
        # needs no key to be explained: no warning about one).
        config = load_run_config(config_file, key_file, profile, options, writes=False) \
            if configuration_given(config_file, profile, options) \
            else default_config(secret="dcmanon check")
        with progress_bar() as progress:
            report = check(original, anonymized, config=config, ignore=ignore, ocr=ocr,
                           ocr_frames=ocr_frames, show_values=show_values,
                           jobs=jobs or available_cores(), progress=progress)
        finish(report, json_path, html_path, show_values)

    guarded(run)
