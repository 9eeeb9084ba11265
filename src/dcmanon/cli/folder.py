"""Folder mode on the command line: its options, progress bar, error lines and summary."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dcmanon.batch.layout import Layout
from dcmanon.cli.options import EXIT_INTERRUPTED, F, fail, jobs_option
from dcmanon.errors import UsageError
from dcmanon.remote.urls import display, is_url

if TYPE_CHECKING:
    from dcmanon.anonymizer import Anonymizer, FileResult
    from dcmanon.batch.run import BatchOptions, BatchResult
    from dcmanon.io.discover import Skipped


def batch_options(command: F) -> F:
    """The options of folder mode (-I/-O), added to a click command."""
    decorators = [
        jobs_option("for a folder"),
        click.option("--executor", "executor", type=click.Choice(["processes", "dask"]),
                     default="processes", show_default=True,
                     help="Where folder work runs: local processes, or a Dask cluster "
                          "(needs the 'distributed' extra)."),
        click.option("--scheduler", "scheduler", metavar="ADDRESS",
                     help="Dask scheduler (tcp://host:8786) for --executor dask; without "
                          "it a local cluster of -j workers is started."),
        click.option("--layout", "layout", type=click.Choice([m.value for m in Layout]),
                     default=Layout.MIRROR.value, show_default=True,
                     help="Output names: the input tree mirrored (identifiers in names "
                          "replaced by their pseudonyms; a DICOMDIR rebuilt), "
                          "<Study>/<Series>/<SOP>.dcm from the new UIDs, or a standard "
                          "file-set (PTxxxxxx/STxxxxxx/SExxxxxx/IMxxxxxx and a fresh "
                          "DICOMDIR) for media."),
        click.option("--overwrite", "overwrite", is_flag=True,
                     help="Replace outputs that exist (default: keep them, so that a "
                          "re-run resumes where a stopped run ended)."),
        click.option("--quarantine", "quarantine", type=click.Path(file_okay=False),
                     help="Copy each failing input here, with a .reason.txt beside it."),
        click.option("--report", "report", type=click.Path(dir_okay=False),
                     help="Write a JSON-lines run report: one record per file (status, "
                          "actions counted, error class), then a summary."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _options(values: dict[str, Any]) -> BatchOptions:
    from dcmanon.batch.run import BatchOptions

    quarantine, report = values.get("quarantine"), values.get("report")
    return BatchOptions(jobs=values.get("jobs"),
                        executor=values.get("executor") or "processes",
                        scheduler=values.get("scheduler"),
                        layout=Layout(values.get("layout") or Layout.MIRROR.value),
                        overwrite=bool(values.get("overwrite")),
                        quarantine=Path(quarantine) if quarantine else None,
                        report=Path(report) if report else None,
                        mapping_db=Path(values["mapping_db"]) if values.get("mapping_db")
                        else None,
                        keep_mappings=values.get("keep_mappings", True))


def summary_line(batch: BatchResult) -> str:
    """``dcmanon: 9 anonymized, 0 failed, 1 skipped in 0.4 s (22.5 files/s)``."""
    counts = batch.summary
    seconds = counts.seconds
    rate = (counts.done + counts.failed) / seconds if seconds > 0 else 0.0
    parts = [f"{counts.done} anonymized", f"{counts.failed} failed"]
    if counts.skipped:
        parts.append(f"{counts.skipped} skipped")
    if counts.renamed:
        parts.append(f"{counts.renamed} path component(s) renamed (they held identifiers)")
    if counts.existing:
        parts.append(f"{counts.existing} already done (kept; --overwrite replaces them)")
    return f"dcmanon: {', '.join(parts)} in {seconds:.1f} s ({rate:.1f} files/s)"


def _folder(location: str) -> Path | str:
    """A local folder as a path; a URL (s3://, ftp://...) as it is."""
    return location if is_url(location) else Path(location)


def run_folder_command(anonymizer: Anonymizer, source: str, target: str,
                       values: dict[str, Any]) -> BatchResult:
    """Run folder mode; print error lines, notes and the summary on stderr."""
    from tqdm import tqdm

    from dcmanon.anonymizer import FileResult, FileStatus
    from dcmanon.batch.run import run_folder

    # No monitor thread: worker processes are then forked from a single-threaded process,
    # which starts them at once (see dcmanon.batch.executors).
    tqdm.monitor_interval = 0
    options = _options(values)
    if options.executor == "dask":
        logging.getLogger("distributed").setLevel(logging.ERROR)
    bar = tqdm(unit="file", file=sys.stderr, disable=not sys.stderr.isatty(), leave=False,
               dynamic_ncols=True)

    def progress(outcome: FileResult | Skipped) -> None:
        bar.update(1)
        if isinstance(outcome, FileResult) and outcome.status == FileStatus.FAILED:
            bar.write(f"dcmanon: error: {outcome.error}", file=sys.stderr)

    def started(files: int) -> None:
        bar.total = bar.n + files
        bar.refresh()

    try:
        batch = run_folder(anonymizer, _folder(source), _folder(target), progress,
                           options=options, on_start=started)
    except UsageError as exc:
        bar.close()
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        bar.close()
        fail("interrupted: the files already written are complete; the files in progress "
              "and the rest were not written (run again to resume)", EXIT_INTERRUPTED)
    bar.close()
    counts = batch.summary
    if counts.done + counts.failed + counts.existing == 0:
        click.echo(f"dcmanon: warning: no DICOM file found in {display(source)}", err=True)
    if batch.flagged:
        click.echo(flagged_note(counts.flagged, batch.flagged[0]), err=True)
    click.echo(summary_line(batch), err=True)
    return batch


def flagged_note(count: int, first: FileResult) -> str:
    """The note that ``count`` outputs may carry burned-in text, ``first`` as an example."""
    return (f"dcmanon: note: {count} file(s) may carry burned-in text in their pixels "
            f"(e.g. {first.target}: {first.flags[0]}); the report's pixels record says what "
            "was blanked")
