"""The command line: the only place that prints, exits or sets up logging."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

import click

from dcmanon import __version__
from dcmanon.anonymizer import Anonymizer, FileResult, describe_unexpected
from dcmanon.cli.folder import batch_options, run_folder_command
from dcmanon.config.loader import KEY_ENV, Config, load_config, parse_config
from dcmanon.errors import DcmanonError, InputError
from dcmanon.mapping import write_mapping_files
from dcmanon.profiles import PROFILES, Option

DEFAULT_CONFIG = "configuration.json"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"dcmanon: {message}", err=True)
    sys.exit(code)


def _read_key_file(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        _fail(f"{path}: cannot read key file ({exc.strerror or type(exc).__name__})")
    except UnicodeDecodeError:
        _fail(f"{path}: the key file is not UTF-8 text (write the secret as text)")
    if not key:
        _fail(f"{path}: key file is empty")
    return key


def _load(config_path: str | None, key_file: str | None, profile: str | None = None,
          options: tuple[str, ...] = (), *, writes: bool = True) -> Config:
    """The run's configuration; ``writes``: warn when pseudonyms will not match other runs
    (not for commands that only read: explain, --dry-run, check)."""
    overrides: dict[str, object] = {}
    if profile is not None:
        overrides["profile"] = profile
    if options:
        overrides["options"] = list(options)
    secret = _read_key_file(key_file)
    if config_path is None and not Path(DEFAULT_CONFIG).is_file():
        # No configuration at all: the built-in PS3.15 Basic Profile, which leaks nothing.
        overrides.setdefault("profile", "basic")
        try:
            config = parse_config(overrides, source="command line", secret=secret)
        except DcmanonError as exc:
            _fail(str(exc), exc.exit_code)
        return _warn_keys(config) if writes else config
    config_path = config_path or DEFAULT_CONFIG
    try:
        config = load_config(config_path, secret=secret, overrides=overrides)
    except DcmanonError as exc:
        _fail(str(exc), exc.exit_code)
    except Exception as exc:  # a loader bug must not print a traceback (or the file's text)
        _fail(f"{config_path}: cannot be read as a configuration ({type(exc).__name__})")
    return _warn_keys(config) if writes else config


def _warn_keys(config: Config) -> Config:
    if config.generated_keys:
        names = ", ".join(config.generated_keys)
        click.echo(f"dcmanon: warning: no key for {names}: a random key is used for this run, "
                   f"so its pseudonyms will not match other runs. Set {KEY_ENV}, use "
                   "--key-file, or give keys in the configuration.", err=True)
    return config


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
@click.option("-c", "--configFile", "config_file", type=click.Path(dir_okay=False),
              help=f"Configuration (JSON). Default: ./{DEFAULT_CONFIG}.")
@click.option("--validateInput", "validate_input", is_flag=True,
              help="Check every input value against its VR; failing files are not anonymized.")
@click.option("--validateOutput", "validate_output", is_flag=True,
              help="Check every output value against its VR; failing files are not written.")
@click.option("--key-file", "key_file", type=click.Path(dir_okay=False),
              help=f"File holding the project secret (else ${KEY_ENV}); keys every method "
                   "that has no key of its own.")
@click.option("--profile", "profile", type=click.Choice(sorted(PROFILES)),
              help="Built-in PS3.15 profile for elements no rule selects (default without a "
                   "configuration: basic).")
@click.option("--option", "options", multiple=True, metavar="NAME",
              type=click.Choice([o.value for o in Option]),
              help="A PS3.15 option on top of the profile; repeat for several.")
@click.option("--mapping-dir", "mapping_dir", type=click.Path(file_okay=False),
              help="Write uid_mapping.csv and patient_mapping.csv (id_old,id_new) here. They "
                   "re-identify the data: keep them apart from it.")
@click.option("--dry-run", "dry_run", is_flag=True,
              help="Print, for each input (-i or -I), what every rule does to every element "
                   "(as `dcmanon explain`); write nothing.")
@batch_options
@click.version_option(__version__, "--version")
@click.pass_context
def main(ctx: click.Context, /, input_file: str | None, output_file: str | None,
         input_folder: str | None, output_folder: str | None, config_file: str | None,
         validate_input: bool, validate_output: bool, key_file: str | None,
         profile: str | None, options: tuple[str, ...], mapping_dir: str | None,
         dry_run: bool, **batch: Any) -> None:
    """De-identify DICOM files: one file, or a whole folder tree.

    \b
      dcmanon -i in.dcm -o out.dcm -c config.json
      dcmanon -I in_dir -O out_dir -c config.json
      dcmanon decrypt -i out.dcm -o back.dcm -c config.json

    Every element, at every depth of nested sequences, gets the action of the first rule of
    the configuration that selects it: keep, remove, redact, perturb, dateShift, cryptoHash,
    encrypt, substitute or refreshUID. Elements no rule selects are kept (or removed, with
    "unmatched": "remove"). The configuration format is that of Microsoft's DICOM
    anonymizer; the whole configuration is checked before any file is read.

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
    if ctx.invoked_subcommand is not None:
        return
    with warnings.catch_warnings():
        # Library warnings (pydicom's) quote element values: they must never reach stderr.
        warnings.simplefilter("ignore")
        try:
            if dry_run:
                from dcmanon.cli.verify_commands import dry_run as explain_inputs

                explain_inputs(input_file, input_folder, config_file, key_file, profile,
                               options)
            _run(input_file, output_file, input_folder, output_folder, config_file,
                 validate_input, validate_output, key_file, profile, options, mapping_dir,
                 batch)
        except Exception as exc:  # last resort: a clear line, never a traceback or a value
            _fail(f"internal error ({describe_unexpected(exc)}); please report it", EXIT_FAILED)


def _run(input_file: str | None, output_file: str | None, input_folder: str | None,
         output_folder: str | None, config_file: str | None, validate_input: bool,
         validate_output: bool, key_file: str | None, profile: str | None,
         options: tuple[str, ...], mapping_dir: str | None,
         batch: dict[str, Any] | None = None) -> None:
    """Dispatch to file or folder mode (after the configuration is loaded)."""
    if (input_file is None or output_file is None) and (
            input_folder is None or output_folder is None):
        _fail("give an input and an output: -i FILE -o FILE, or -I FOLDER -O FOLDER "
              "(see dcmanon --help)")
    config = _load(config_file, key_file, profile, options)
    anonymizer = Anonymizer(config, validate_input=validate_input,
                            validate_output=validate_output,
                            record_mappings=mapping_dir is not None)
    results: list[FileResult] = []
    try:
        if input_file is not None and output_file is not None:
            results = [_run_file(anonymizer, input_file, output_file)]
        elif input_folder is not None and output_folder is not None:
            results = run_folder_command(anonymizer, input_folder, output_folder, batch or {})
    finally:
        if mapping_dir is not None and results:
            rows = [row for result in results for row in result.mappings]
            write_mapping_files(Path(mapping_dir), rows)
    failed = any(r.status == "failed" for r in results)
    if input_file is not None and output_file is not None and failed:
        _fail(f"error: {results[0].error or 'failed'}", EXIT_FAILED)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def _flag_lines(results: list[FileResult]) -> None:
    flagged = [r for r in results if r.flags]
    if flagged:
        click.echo(f"dcmanon: note: {len(flagged)} file(s) may carry burned-in text in their "
                   f"pixels (e.g. {flagged[0].target}: {flagged[0].flags[0]}); "
                   "pixel data is not cleaned yet", err=True)


def _run_file(anonymizer: Anonymizer, source: str, target: str) -> FileResult:
    if os.path.abspath(source) == os.path.abspath(target) or (
            os.path.exists(source) and os.path.exists(target)
            and os.path.samefile(source, target)):
        _fail("input and output are the same file; the input is never overwritten")
    if not os.path.isfile(source):
        _fail(f"error: {source}: input file not found", EXIT_FAILED)
    try:
        result = anonymizer.anonymize_file(source, target)
    except KeyboardInterrupt:
        _fail(f"interrupted: {target} was not written", EXIT_INTERRUPTED)
    _flag_lines([result])
    return result


@main.command()
@click.option("-i", "--inputFile", "input_file", required=True,
              type=click.Path(dir_okay=False, exists=True), help="A file dcmanon encrypted.")
@click.option("-o", "--outputFile", "output_file", required=True,
              type=click.Path(dir_okay=False), help="Where to write the decrypted file.")
@click.option("-c", "--configFile", "config_file", required=True,
              type=click.Path(dir_okay=False), help="The configuration used to encrypt.")
@click.option("--key-file", "key_file", type=click.Path(dir_okay=False),
              help="The project secret used to encrypt, if the configuration had no key.")
def decrypt(input_file: str, output_file: str, config_file: str, key_file: str | None) -> None:
    """Decrypt the elements that the configuration's encrypt rules encrypted.

    Only a holder of the encryption key can do this; the key comes from the configuration,
    --key-file or $DCMANON_KEY, exactly as when encrypting.
    """
    from dcmanon.decrypt import decrypt_dataset
    from dcmanon.dicomio import read_dicom, write_dicom_atomic
    from dcmanon.engine import quiet_pydicom

    if os.path.abspath(input_file) == os.path.abspath(output_file):
        _fail("input and output are the same file; the input is never overwritten")
    config = _load(config_file, key_file)
    if config.generated_keys and "encrypt" in config.generated_keys:
        _fail("no encryption key: give the key the file was encrypted with")
    try:
        with quiet_pydicom():
            ds = read_dicom(input_file)
            count = decrypt_dataset(ds, config)
            write_dicom_atomic(ds, output_file)
    except InputError as exc:
        _fail(f"error: {exc}", EXIT_FAILED)
    except DcmanonError as exc:
        _fail(f"error: {input_file}: {exc}", EXIT_FAILED)
    except OSError as exc:
        _fail(f"error: {output_file}: cannot write ({exc.strerror or type(exc).__name__})",
              EXIT_FAILED)
    except Exception as exc:  # never a traceback: library messages may quote values
        _fail(f"error: {input_file}: could not be decrypted (unexpected "
              f"{type(exc).__name__}; please report it)", EXIT_FAILED)
    click.echo(f"dcmanon: {count} elements decrypted", err=True)


from dcmanon.cli.verify_commands import register  # noqa: E402  (needs main, defined above)

register(main)
