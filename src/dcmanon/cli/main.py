"""The main command: one file or a folder tree in, de-identified copies out; and the group
that holds every other command."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dcmanon._version import __version__
from dcmanon.cli.check import check_command
from dcmanon.cli.decrypt import decrypt_command
from dcmanon.cli.explain import dry_run, explain_command
from dcmanon.cli.folder import batch_options, flagged_note, run_folder_command
from dcmanon.cli.mapping import mapping_group
from dcmanon.cli.options import (
    DEFAULT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    config_options,
    fail,
    guarded,
    limit_options,
    load_run_config,
    pixels_option,
    setup_logging,
)
from dcmanon.cli.reidentify import reidentify_command
from dcmanon.cli.scan import scan_command
from dcmanon.cli.serve import pull_command, serve_command
from dcmanon.cli.trial_options import trial_options, trial_overrides

if TYPE_CHECKING:
    from dcmanon.anonymizer import Anonymizer, FileResult
    from dcmanon.trials.mapping_db import MappingStore


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-i", "--inputFile", "input_file",
              # Not click's readability check: an unreadable input is that file's failure
              # (exit 1, "permission denied"), as a missing one is.
              type=click.Path(dir_okay=False, readable=False),
              help="Input DICOM file (with -o).")
@click.option("-o", "--outputFile", "output_file", type=click.Path(dir_okay=False),
              help="Output file; written only when complete.")
@click.option("-I", "--inputFolder", "input_folder", type=click.Path(file_okay=False),
              help="Input folder, read recursively (with -O); or a URL every worker reaches "
              "(s3://bucket/in, ftp://host/in...).")
@click.option("-O", "--outputFolder", "output_folder", type=click.Path(file_okay=False),
              help="Output folder (or URL); the input tree is mirrored in it.")
@config_options("to apply")
@click.option("--validateInput", "validate_input", is_flag=True,
              help="Check every input value against its VR; failing files are not anonymized.")
@click.option("--validateOutput", "validate_output", is_flag=True,
              help="Check every output value against its VR; failing files are not written.")
@click.option("--mapping-dir", "mapping_dir", type=click.Path(file_okay=False),
              help="Write uid_mapping.csv and patient_mapping.csv (id_old,id_new) here. They "
                   "re-identify the data: keep them apart from it.")
@click.option("--mapping-db", "mapping_db", type=click.Path(dir_okay=False),
              help="Add every (original, pseudonym) pair to this SQLite database, with when "
                   "it was first and last seen; runs (and their workers) share it. Read it "
                   "with `dcmanon mapping`. It re-identifies the data: keep it apart from it.")
@click.option("--encrypt-to", "encrypt_to", type=click.Path(dir_okay=False), multiple=True,
              metavar="CERT.pem",
              help="Keep the original of every attribute the run changes or removes in the "
                   "output, encrypted to this X.509 certificate's RSA key (PS3.15 Encrypted "
                   "Attributes Sequence); repeat for several recipients. Only a recipient's "
                   "private key reads it (`dcmanon reidentify`).")
@click.option("--dry-run", "dry_run_", is_flag=True,
              help="Print, for each input (-i or -I), what every rule does to every element "
                   "(as `dcmanon explain`); write nothing.")
@trial_options
@pixels_option
@batch_options
@limit_options
@click.option("--debug", "debug", is_flag=True,
              help="Log what dcmanon does on stderr (files, tags, decisions; never a value).")
@click.version_option(__version__, "--version")
@click.pass_context
def main(ctx: click.Context, /, input_file: str | None, output_file: str | None,
         input_folder: str | None, output_folder: str | None, config_file: str | None,
         key_file: str | None, profile: str | None, options: tuple[str, ...],
         validate_input: bool, validate_output: bool, mapping_dir: str | None,
         mapping_db: str | None, encrypt_to: tuple[str, ...], dry_run_: bool,
         max_inflated_size: int, max_nesting: int, debug: bool, pixels: str | None,
         **batch: Any) -> None:
    """De-identify DICOM files: one file, or a whole folder tree.

    \b
      dcmanon -i in.dcm -o out.dcm -c config.json
      dcmanon -I in_dir -O out_dir -c config.json
      dcmanon decrypt -i out.dcm -o back.dcm -c config.json
      dcmanon reidentify -i out.dcm -o back.dcm --key key.pem

    Every element, at every depth of nested sequences, gets the action of the first rule of
    the configuration that selects it: keep, remove, redact, perturb, dateShift, cryptoHash,
    encrypt, substitute or refreshUID. Elements no rule selects follow the profile (without
    a configuration: the PS3.15 Basic Profile), or are kept (or removed, with "unmatched":
    "remove"). The configuration format is that of Microsoft's DICOM anonymizer; the whole
    configuration is checked before any file is read.

    With -I/-O the input folder is read recursively: every .dcm file and every file with the
    DICM marker is anonymized to the same relative path under the output folder; other files
    are skipped, never copied. A failing file does not stop the run; a summary ends it.

    Outputs are written under a temporary name and renamed when complete; inputs are only
    ever read. Messages name files, elements and rules, never values or keys.

    Keys: a method's own key in the configuration, else --key-file, else $DCMANON_KEY; with
    none, a random key is used for the run (its pseudonyms will not match other runs).

    \b
    Exit status:
      0  every file anonymized
      1  some files failed (one line each; the others were written)
      2  usage or configuration error (nothing written)
      130  interrupted (the file in progress was not written)
    """
    setup_logging(debug)
    trial = trial_overrides(batch)
    if ctx.invoked_subcommand is not None:
        return

    def run() -> None:
        if dry_run_:
            dry_run(input_file, input_folder, config_file, key_file, profile, options, trial)
        if (input_file is None or output_file is None) and (
                input_folder is None or output_folder is None):
            fail("give an input and an output: -i FILE -o FILE, or -I FOLDER -O FOLDER "
                 "(see dcmanon --help)")
        config = load_run_config(config_file, key_file, profile, options, sections=trial)
        from dcmanon.anonymizer import Anonymizer, FileStatus

        recipients = None
        if encrypt_to:
            from dcmanon.trials.encrypted import load_recipients

            recipients = load_recipients(encrypt_to)
        anonymizer = Anonymizer(config, validate_input=validate_input,
                                validate_output=validate_output,
                                record_mappings=mapping_dir is not None or mapping_db is not None,
                                max_inflated_size=max_inflated_size, max_nesting=max_nesting,
                                encrypt_to=recipients, pixels=pixels)
        if input_file is not None and output_file is not None:
            store = _open_store(mapping_db)
            result = _run_file(anonymizer, input_file, output_file)
            _write_mappings(mapping_dir, result.mappings)
            if store is not None:
                with store:
                    if result.status == FileStatus.DONE:
                        store.record(result.mappings)
            if result.status == FileStatus.FAILED:
                fail(f"error: {result.error or 'failed'}", EXIT_FAILED)
            sys.exit(EXIT_OK)
        assert input_folder is not None and output_folder is not None
        batch.update(mapping_db=mapping_db, keep_mappings=mapping_dir is not None)
        outcome = run_folder_command(anonymizer, input_folder, output_folder, batch)
        _write_mappings(mapping_dir, sorted(outcome.mappings))
        sys.exit(EXIT_FAILED if outcome.failed else EXIT_OK)

    guarded(run)


def _write_mappings(mapping_dir: str | None, rows: Iterable[tuple[str, str, str]]) -> None:
    """Write the mapping files when asked (header-only files when nothing was mapped)."""
    if mapping_dir is not None:
        from dcmanon.header.mapping import write_mapping_files

        write_mapping_files(Path(mapping_dir), rows)


def _open_store(path: str | None) -> MappingStore | None:
    """The mapping database, opened before anything is written (exit 2 if it cannot be)."""
    if path is None:
        return None
    from dcmanon.errors import MappingStoreError
    from dcmanon.trials.mapping_db import MappingStore

    try:
        return MappingStore(path)
    except MappingStoreError as exc:
        fail(str(exc))


def _run_file(anonymizer: Anonymizer, source: str, target: str) -> FileResult:
    if os.path.abspath(source) == os.path.abspath(target) or (
            os.path.exists(source) and os.path.exists(target)
            and os.path.samefile(source, target)):
        fail("input and output are the same file; the input is never overwritten")
    if not os.path.isfile(source):
        fail(f"error: {source}: input file not found", EXIT_FAILED)
    try:
        result = anonymizer.anonymize_file(source, target)
    except KeyboardInterrupt:
        fail(f"interrupted: {target} was not written", EXIT_INTERRUPTED)
    if result.flags:
        click.echo(flagged_note(1, result), err=True)
    return result


for _command in (check_command, decrypt_command, explain_command, mapping_group, pull_command,
                 reidentify_command, scan_command, serve_command):
    main.add_command(_command)

__all__ = ["DEFAULT_CONFIG", "main"]
