"""``dcmanon explain`` and the main command's ``--dry-run``: what each rule will do."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from dcmanon.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    config_options,
    fail,
    guarded,
    load_run_config,
)
from dcmanon.errors import InputError, LookupMissing

if TYPE_CHECKING:
    from dcmanon.config.loader import Config


@click.command("explain")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--show-values", is_flag=True,
              help="Show each element's value; by default only its first character and length.")
@config_options("to explain")
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
        config = load_run_config(config_file, key_file, profile, options, writes=False)
        sys.exit(_explain_files([Path(file)], config, show_values))

    guarded(run)


def _explain_files(files: list[Path], config: Config, show_values: bool,
                   headers: bool = False) -> int:
    """Print the explain table of each file; return 1 if one could not be read."""
    from dcmanon.check.explain import explain_dataset, render_explain
    from dcmanon.header.engine import Engine
    from dcmanon.io.files import read_dicom

    engine = Engine(config)
    failed = 0
    for index, path in enumerate(files):
        try:
            ds = read_dicom(path)
        except InputError as exc:
            click.echo(f"dcmanon: error: {exc}", err=True)
            failed += 1
            continue
        try:
            decisions = explain_dataset(engine, ds, show_values)
        except LookupMissing as exc:  # names the table, never the patient
            click.echo(f"dcmanon: error: {path}: {exc}", err=True)
            failed += 1
            continue
        if headers:
            click.echo(("\n" if index else "") + f"== {path}")
        click.echo(render_explain(decisions))
    return EXIT_FAILED if failed else EXIT_OK


def dry_run(input_file: str | None, input_folder: str | None, config_file: str | None,
            key_file: str | None, profile: str | None, options: tuple[str, ...],
            sections: dict[str, object] | None = None) -> NoReturn:
    """The main command's ``--dry-run``: explain every input, write nothing, exit
    (``sections``: the command line's trial options)."""
    from dcmanon.io.discover import discover

    if input_file is None and input_folder is None:
        fail("--dry-run needs an input: -i FILE or -I FOLDER (see dcmanon --help)")
    config = load_run_config(config_file, key_file, profile, options, writes=False,
                             sections=sections)
    if input_file is not None:
        if not Path(input_file).is_file():
            fail(f"error: {input_file}: input file not found", EXIT_FAILED)
        files = [Path(input_file)]
    else:
        assert input_folder is not None
        if not Path(input_folder).is_dir():
            fail(f"{input_folder}: input folder not found")
        files = [item for item in discover(Path(input_folder)) if isinstance(item, Path)]
    code = _explain_files(files, config, show_values=False, headers=True)
    click.echo(f"dcmanon: dry run: {len(files)} file(s) explained, nothing written", err=True)
    sys.exit(code)
