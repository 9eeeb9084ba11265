"""The DICOM PS3.15 tables as the tests know them: tests/data/standard (see its PROVENANCE.md).

Derived from the standard by ``tools/generate_test_data.py``, independently of the table the
engine ships (``src/dcmanon/profiles/ps315_*.json``), so that an error in the engine's table
cannot move the tests' expectations with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

STANDARD = Path(__file__).resolve().parent / "data" / "standard"


@dataclass(frozen=True)
class StandardRow:
    """One row of Table E.1-1: codes by column key (only the non-empty option codes)."""

    tag: str
    keyword: str
    name: str
    vr: str
    basic: str
    options: dict[str, str]

    @property
    def tag_number(self) -> int | None:
        """The tag as a number; None for the pattern rows (50xx,xxxx), (60xx,3000)..."""
        text = self.tag.strip("()").replace(",", "")
        try:
            return int(text, 16)
        except ValueError:
            return None


@cache
def _load(name: str) -> str:
    return (STANDARD / name).read_text(encoding="utf-8")


def table_e1_1() -> dict[str, Any]:
    """The derived Table E.1-1: ``edition``, ``columns``, ``rows``..."""
    table: dict[str, Any] = json.loads(_load("ps315_e1_1.json"))
    return table


def e1_1_rows() -> list[StandardRow]:
    """Every row of Table E.1-1 (657 in 2026d), in tag order."""
    return [StandardRow(**row) for row in table_e1_1()["rows"]]


def option_columns() -> dict[str, str]:
    """Each option's column key, by the option's name in a configuration: the standard's name
    shortened ("Retain Longitudinal Temporal Information with Full Dates Option" →
    ``retain-longitudinal-full-dates``)."""
    columns = {}
    for column in table_e1_1()["columns"]:
        if column["key"] == "basic":
            continue
        name = column["name"].removesuffix(" Option").replace(" Temporal Information with", "")
        columns[name.lower().replace(" ", "-")] = column["key"]
    return columns


def cid7050_codes() -> dict[str, str]:
    """The CID 7050 code of the profile (``basic``) and of each option, by column key."""
    return {column["key"]: column["cid7050_code"] for column in table_e1_1()["columns"]}


def safe_private() -> set[tuple[int, str, int]]:
    """Table E.3.10-1: (group, private creator, element low byte) of each safe attribute."""
    rows = json.loads(_load("ps315_safe_private.json"))["rows"]
    return {(int(group, 16), creator, int(low, 16)) for group, creator, low in rows}
