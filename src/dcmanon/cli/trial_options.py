"""The clinical-trial options of the main command: the subject table and age brackets."""

from __future__ import annotations

from typing import Any

import click

from dcmanon.cli.options import F, _apply

TRIAL_KEYS = ("lookup", "lookup_missing", "age_brackets")


def trial_options(func: F) -> F:
    """``--lookup``, ``--lookup-missing``, ``--age-brackets`` (configuration sections
    ``lookup``, ``lookupMissing``, ``ageBrackets``; the command line wins)."""
    return _apply(func, [
        click.option("--lookup", "lookup", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Subject table: a CSV with the header keyword,original,replacement "
                          "(PatientID rows give the trial's subject IDs; rows for other "
                          "elements, e.g. AccessionNumber, too). Listed originals get their "
                          "replacement at every depth and in kept text."),
        click.option("--lookup-missing", "lookup_missing",
                     type=click.Choice(["fail", "pseudonym"]),
                     help="A patient the table does not list: its files fail, not written "
                          "(fail, the default), or get the keyed pseudonym."),
        click.option("--age-brackets", "age_brackets", type=click.IntRange(2, 50),
                     metavar="N", help="Group kept ages into N-year brackets (045Y for 45 to "
                                       "49 with N = 5); over 89 is always 090Y."),
    ])


def trial_overrides(values: dict[str, Any]) -> dict[str, object]:
    """Take the trial options out of a command's keyword arguments, as configuration
    sections (only those given)."""
    lookup, missing, brackets = (values.pop(key, None) for key in TRIAL_KEYS)
    overrides: dict[str, object] = {}
    if lookup is not None:
        overrides["lookup"] = lookup
    if missing is not None:
        overrides["lookupMissing"] = missing
    if brackets is not None:
        overrides["ageBrackets"] = brackets
    return overrides
