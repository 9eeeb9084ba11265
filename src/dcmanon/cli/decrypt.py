"""``dcmanon decrypt``: undo the configuration's encrypt rules (key holders only)."""

from __future__ import annotations

import os

import click

from dcmanon.cli.options import EXIT_FAILED, fail, load_run_config
from dcmanon.errors import DcmanonError, InputError, describe_os_error


@click.command("decrypt")
@click.option("-i", "--inputFile", "input_file", required=True,
              type=click.Path(dir_okay=False, exists=True), help="A file dcmanon encrypted.")
@click.option("-o", "--outputFile", "output_file", required=True,
              type=click.Path(dir_okay=False), help="Where to write the decrypted file.")
@click.option("-c", "--configFile", "config_file", required=True,
              type=click.Path(dir_okay=False), help="The configuration used to encrypt.")
@click.option("--key-file", "key_file", type=click.Path(dir_okay=False),
              help="The project secret used to encrypt, if the configuration had no key.")
def decrypt_command(input_file: str, output_file: str, config_file: str,
                    key_file: str | None) -> None:
    """Decrypt the elements that the configuration's encrypt rules encrypted.

    Only a holder of the encryption key can do this; the key comes from the configuration,
    --key-file or $DCMANON_KEY, exactly as when encrypting.
    """
    from dcmanon.dicom.walk import quiet_pydicom
    from dcmanon.header.decrypt import decrypt_dataset
    from dcmanon.io.files import read_dicom, write_dicom_atomic

    if os.path.abspath(input_file) == os.path.abspath(output_file):
        fail("input and output are the same file; the input is never overwritten")
    config = load_run_config(config_file, key_file)
    if config.generated_keys and "encrypt" in config.generated_keys:
        fail("no encryption key: give the key the file was encrypted with")
    try:
        with quiet_pydicom():
            ds = read_dicom(input_file)
            count = decrypt_dataset(ds, config)
            write_dicom_atomic(ds, output_file)
    except InputError as exc:
        fail(f"error: {exc}", EXIT_FAILED)
    except DcmanonError as exc:
        fail(f"error: {input_file}: {exc}", EXIT_FAILED)
    except OSError as exc:
        fail(f"error: {output_file}: cannot write ({describe_os_error(exc)})", EXIT_FAILED)
    except Exception as exc:  # noqa: BLE001  (never a traceback: messages may quote values)
        fail(f"error: {input_file}: could not be decrypted (unexpected "
             f"{type(exc).__name__}; please report it)", EXIT_FAILED)
    click.echo(f"dcmanon: {count} elements decrypted", err=True)
