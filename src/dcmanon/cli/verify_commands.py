"""``dcmanon check``, ``dcmanon scan``, ``dcmanon explain`` and the main command's ``--dry-run``.

Thin: the work is in :mod:`dcmanon.verify`, :mod:`dcmanon.scan`, :mod:`dcmanon.explain` and the
report renderers; this module reads options, prints, writes the report files and exits.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from dcmanon.anonymizer import describe_unexpected
from dcmanon.categories import CHECK_CATEGORIES, SCAN_CATEGORIES
from dcmanon.config.loader import KEY_ENV, Config, default_config
from dcmanon.errors import DcmanonError, InputError
from dcmanon.profiles import PROFILES, Option

if TYPE_CHECKING:
    from dcmanon.findings import Report

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"dcmanon: {message}", err=True)
    sys.exit(code)


def _config_options(purpose: str) -> Callable[[F], F]:
    """-c, --key-file, --profile, --option: the main command's configuration options."""
    def decorate(func: F) -> F:
        for option in reversed([
            click.option("-c", "--configFile", "config_file", type=click.Path(dir_okay=False),
                         help=f"The configuration {purpose} (JSON). Default: "
                              "./configuration.json, else the PS3.15 Basic Profile."),
            click.option("--key-file", "key_file", type=click.Path(dir_okay=False),
                         help=f"File holding the project secret (else ${KEY_ENV})."),
            click.option("--profile", "profile", type=click.Choice(sorted(PROFILES)),
                         help="Built-in PS3.15 profile for elements no rule selects."),
            click.option("--option", "options", multiple=True, metavar="NAME",
                         type=click.Choice([o.value for o in Option]),
                         help="A PS3.15 option on top of the profile; repeat for several."),
        ]):
            func = option(func)
        return func
    return decorate


def _report_options(categories: tuple[str, ...]) -> Callable[[F], F]:
    """--json, --html, --show-values, --ignore."""
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


def _load_config(config_file: str | None, key_file: str | None, profile: str | None,
                 options: tuple[str, ...]) -> Config:
    from dcmanon.cli import _load  # imported late: dcmanon.cli registers this module

    return _load(config_file, key_file, profile, options, writes=False)


def _finish(report: Report, json_path: str | None, html_path: str | None,
            show_values: bool) -> NoReturn:
    """Print the summary, write the report files, exit 0 (clean) or 1 (findings)."""
    from dcmanon.report import render_text, report_dict
    from dcmanon.report_html import render_html

    if json_path is not None:
        text = json.dumps(report_dict(report, show_values), indent=2, ensure_ascii=False)
        if json_path == "-":
            click.echo(text)
        else:
            _write(json_path, text + "\n")
    if html_path is not None:
        _write(html_path, render_html(report, show_values))
    click.echo(render_text(report, show_values), err=json_path == "-")
    sys.exit(EXIT_CLEAN if report.passed else EXIT_FINDINGS)


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"{path}: cannot write the report ({exc.strerror or type(exc).__name__})")


def _guarded(run: Callable[[], None]) -> None:
    """Run with pydicom's warnings silenced (they quote values); map errors to exit codes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run()
        except DcmanonError as exc:
            _fail(str(exc), exc.exit_code)
        except Exception as exc:  # never a traceback: library messages may quote values
            _fail(f"internal error ({describe_unexpected(exc)}); please report it",
                  EXIT_FINDINGS)


@click.command("check")
@click.option("--original", required=True, type=click.Path(exists=True),
              help="The original files (a folder, read recursively, or one file).")
@click.option("--anonymized", required=True, type=click.Path(exists=True),
              help="The de-identified files (a folder, or one file).")
@_report_options(CHECK_CATEGORIES)
@_config_options("the outputs were made with; the text of the elements it keeps is not "
                 "looked for")
def check_command(original: str, anonymized: str, json_path: str | None,
                  html_path: str | None, show_values: bool, ignore: tuple[str, ...],
                  config_file: str | None, key_file: str | None, profile: str | None,
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

    Found values are masked (first character and length) unless --show-values.

    \b
    Exit status:
      0  nothing found
      1  findings (listed; see --json / --html for all of them)
      2  usage error
    """
    def run() -> None:
        from dcmanon.cli import DEFAULT_CONFIG
        from dcmanon.verify import check

        # As the main command: -c, else ./configuration.json, else the Basic Profile (which
        # needs no key to be explained: no warning about one).
        given = config_file is not None or profile is not None or bool(options) or \
            Path(DEFAULT_CONFIG).is_file()
        config = _load_config(config_file, key_file, profile, options) if given else \
            default_config(secret="dcmanon check")
        report = check(original, anonymized, config=config, ignore=ignore)
        _finish(report, json_path, html_path, show_values)

    _guarded(run)


@click.command("scan")
@click.argument("target", type=click.Path(exists=True))
@_report_options(SCAN_CATEGORIES)
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
        from dcmanon.scan import scan

        _finish(scan(target, ignore=ignore), json_path, html_path, show_values)

    _guarded(run)


@click.command("explain")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--show-values", is_flag=True,
              help="Show each element's value; by default only its first character and length.")
@_config_options("to explain")
def explain_command(file: str, show_values: bool, config_file: str | None,
                    key_file: str | None, profile: str | None, options: tuple[str, ...]) -> None:
    """Show what the configuration will do to each element of FILE; change nothing.

    \b
      dcmanon explain in.dcm -c config.json

    One line per element, nested elements indented under their sequence: tag and keyword,
    VR, action, value (masked unless --show-values), and why: the rule that matched (its
    index and selector), the profile's row, or "unmatched". Elements inside a sequence that
    is removed or emptied go with it and are not listed.
    """
    def run() -> None:
        config = _load_config(config_file, key_file, profile, options)
        code = _explain_files([Path(file)], config, show_values)
        sys.exit(code)

    _guarded(run)


def _explain_files(files: list[Path], config: Config, show_values: bool,
                   headers: bool = False) -> int:
    """Print the explain table of each file; return 1 if one could not be read."""
    from dcmanon.dicomio import read_dicom
    from dcmanon.engine import Engine
    from dcmanon.explain import explain_dataset, render_explain

    engine = Engine(config)
    failed = 0
    for index, path in enumerate(files):
        try:
            ds = read_dicom(path)
        except InputError as exc:
            click.echo(f"dcmanon: error: {exc}", err=True)
            failed += 1
            continue
        if headers:
            click.echo(("\n" if index else "") + f"== {path}")
        click.echo(render_explain(explain_dataset(engine, ds, show_values)))
    return EXIT_FINDINGS if failed else EXIT_CLEAN


def dry_run(input_file: str | None, input_folder: str | None, config_file: str | None,
            key_file: str | None, profile: str | None, options: tuple[str, ...]) -> NoReturn:
    """The main command's ``--dry-run``: explain every input, write nothing, exit."""
    from dcmanon.batch import discover

    if input_file is None and input_folder is None:
        _fail("--dry-run needs an input: -i FILE or -I FOLDER (see dcmanon --help)")
    config = _load_config(config_file, key_file, profile, options)
    if input_file is not None:
        if not Path(input_file).is_file():
            _fail(f"error: {input_file}: input file not found", EXIT_FINDINGS)
        files = [Path(input_file)]
    else:
        assert input_folder is not None
        if not Path(input_folder).is_dir():
            _fail(f"{input_folder}: input folder not found")
        files = [item for item in discover(Path(input_folder)) if isinstance(item, Path)]
    code = _explain_files(files, config, show_values=False, headers=True)
    click.echo(f"dcmanon: dry run: {len(files)} file(s) explained, nothing written", err=True)
    sys.exit(code)


def register(main: click.Group) -> None:
    """Add ``check``, ``scan`` and ``explain`` to the main command group."""
    main.add_command(check_command)
    main.add_command(scan_command)
    main.add_command(explain_command)
