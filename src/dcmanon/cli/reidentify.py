"""``dcmanon reidentify``: the way back for the holder of a recipient's private key."""

from __future__ import annotations

import os
from pathlib import Path

import click

from dcmanon.cli.options import EXIT_FAILED, EXIT_OK, fail, guarded
from dcmanon.errors import DcmanonError, InputError, describe_os_error, describe_unexpected


@click.command("reidentify")
@click.option("-i", "--inputFile", "input_file", type=click.Path(dir_okay=False),
              help="A file anonymized with --encrypt-to (with -o).")
@click.option("-o", "--outputFile", "output_file", type=click.Path(dir_okay=False),
              help="Where to write it with its original values.")
@click.option("-I", "--inputFolder", "input_folder", type=click.Path(file_okay=False),
              help="A folder of such files, read recursively (with -O).")
@click.option("-O", "--outputFolder", "output_folder", type=click.Path(file_okay=False),
              help="Output folder: the input tree mirrored.")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
              help="The private key (PEM or DER, RSA) of a certificate given to --encrypt-to.")
@click.option("--key-password-file", "password_file", type=click.Path(dir_okay=False),
              help="File holding the password of an encrypted private key.")
def reidentify_command(input_file: str | None, output_file: str | None,
                       input_folder: str | None, output_folder: str | None, key_file: str,
                       password_file: str | None) -> None:
    """Restore the original values a run kept encrypted with --encrypt-to.

    Each file's Encrypted Attributes Sequence is opened with the private key; the original
    values of the attributes the run changed or removed are put back, and the sequence and
    the de-identification record go. The outputs carry the patient's identity again: they
    are PHI.

    \b
    Exit status:
      0  every file restored
      1  some files failed (one line each: not anonymized with --encrypt-to, a key that is
         not a recipient's, unreadable); the others were written
      2  usage error (a missing or unreadable key; nothing written)
    """
    def run() -> None:
        if (input_file is None or output_file is None) == (
                input_folder is None or output_folder is None):
            fail("give an input and an output: -i FILE -o FILE, or -I FOLDER -O FOLDER")
        from dcmanon.trials.encrypted import load_private_key

        password = None
        if password_file is not None:
            try:
                password = Path(password_file).read_bytes().rstrip(b"\r\n")
            except OSError as exc:
                fail(f"{password_file}: cannot read ({describe_os_error(exc)})")
        key = load_private_key(key_file, password)
        if input_file is not None and output_file is not None:
            if os.path.abspath(input_file) == os.path.abspath(output_file):
                fail("input and output are the same file; the input is never overwritten")
            error = _one(input_file, output_file, key)
            if error:
                fail(f"error: {error}", EXIT_FAILED)
            raise SystemExit(EXIT_OK)
        assert input_folder is not None and output_folder is not None
        raise SystemExit(_folder(Path(input_folder), Path(output_folder), key))

    guarded(run)


def _one(source: str, target: str, key: object) -> str | None:
    """Restore one file; the error line when it fails (None: written)."""
    from dcmanon.trials.encrypted import reidentify_file

    try:
        reidentify_file(source, target, key)
    except InputError as exc:
        return str(exc)
    except DcmanonError as exc:
        return f"{source}: {exc}"
    except OSError as exc:
        return f"{target}: cannot write ({describe_os_error(exc)})"
    except Exception as exc:  # noqa: BLE001  (never a traceback: messages may quote values)
        return f"{source}: could not be re-identified (unexpected {describe_unexpected(exc)}; " \
               "please report it)"
    return None


def _folder(source: Path, target: Path, key: object) -> int:
    """Restore every DICOM file under ``source`` into the same place under ``target``."""
    from dcmanon.batch.run import check_folders
    from dcmanon.io.discover import Skipped, Unlisted, discover

    check_folders(source, target)
    done = failed = 0
    for item in discover(source):
        if isinstance(item, Skipped):
            continue
        if isinstance(item, Unlisted):
            click.echo(f"dcmanon: error: {item.path}: cannot list the folder ({item.reason})",
                       err=True)
            failed += 1
            continue
        output = target.joinpath(item.relative_to(source))
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            click.echo(f"dcmanon: error: {output.parent}: cannot create "
                       f"({describe_os_error(exc)})", err=True)
            failed += 1
            continue
        error = _one(str(item), str(output), key)
        if error:
            click.echo(f"dcmanon: error: {error}", err=True)
            failed += 1
        else:
            done += 1
    click.echo(f"dcmanon: {done} re-identified, {failed} failed", err=True)
    return EXIT_FAILED if failed else EXIT_OK
