"""``dcmanon mapping``: the mapping database (``--mapping-db``) for its key holder."""

from __future__ import annotations

from pathlib import Path

import click

from dcmanon.cli.options import EXIT_FAILED, EXIT_USAGE, fail, guarded
from dcmanon.errors import MappingStoreError

_DB_HELP = "The mapping database that runs wrote with --mapping-db."


def _existing(path: str) -> None:
    """Refuse a database that is not there (opening it would create an empty one)."""
    if not Path(path).is_file():
        fail(f"{path}: mapping database not found", EXIT_USAGE)


@click.group("mapping")
def mapping_group() -> None:
    """The mapping database: every (original, pseudonym) pair of the runs that wrote it.

    It re-identifies the data: keep it with the key holder, apart from the data.
    """


@mapping_group.command("export")
@click.option("--mapping-db", "mapping_db", required=True, type=click.Path(dir_okay=False),
              help=_DB_HELP)
@click.option("-O", "--outputFolder", "output_folder", required=True,
              type=click.Path(file_okay=False),
              help="Where to write uid_mapping.csv and patient_mapping.csv.")
def export_command(mapping_db: str, output_folder: str) -> None:
    """Write the mapping files that --mapping-dir writes (id_old,id_new), from every pair of
    the database."""
    _existing(mapping_db)

    def run() -> None:
        from dcmanon.trials.mapping_db import MappingStore

        try:
            with MappingStore(mapping_db) as store:
                written = store.export(output_folder)
        except OSError as exc:
            from dcmanon.errors import describe_os_error

            fail(f"{output_folder}: cannot write ({describe_os_error(exc)})", EXIT_FAILED)
        except MappingStoreError as exc:
            fail(str(exc), EXIT_FAILED)
        click.echo(f"dcmanon: wrote {', '.join(str(p) for p in written)}", err=True)

    guarded(run)


@mapping_group.command("lookup")
@click.argument("value")
@click.option("--mapping-db", "mapping_db", required=True, type=click.Path(dir_okay=False),
              help=_DB_HELP)
def lookup_command(value: str, mapping_db: str) -> None:
    """Print the pairs whose original or pseudonym is VALUE: one line each, tab-separated
    (kind, original, pseudonym, first seen, last seen; times in UTC).

    \b
    Exit status:
      0  found
      1  VALUE is in no pair
      2  the database is missing or unusable
    """
    _existing(mapping_db)

    def run() -> None:
        from dcmanon.trials.mapping_db import MappingStore

        try:
            with MappingStore(mapping_db) as store:
                found = store.lookup(value)
        except MappingStoreError as exc:
            fail(str(exc), EXIT_USAGE)
        if not found:
            # The value itself is not repeated: messages never carry one.
            fail(f"no pair in {mapping_db} has that value as original or pseudonym",
                 EXIT_FAILED)
        for row in found:
            click.echo("\t".join((row.kind, row.original, row.pseudonym, row.first_seen,
                                  row.last_seen)))

    guarded(run)
