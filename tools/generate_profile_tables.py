"""Generate dcmanon's PS3.15 profile tables from the standard's tables.

Inputs (not part of the project, never committed):

* ``../shared/standard/ps315_e1_1.json`` — Table E.1-1 (all 657 rows, every option column);
* ``../shared/standard/ps315_safe_private.json`` — Table E.3.10-1 (safe private attributes);
* ``../shared/standard/tcia_private_tag_kb_*.csv`` — TCIA's private tag knowledge base;
* highdicom's PS3.3 tables (``highdicom/_standard``, ``pip install highdicom``) for the Type of
  each attribute with a compound action code (Z/D, X/Z, X/D, X/Z/D, X/Z/U*) in each IOD.

Output: ``src/dcmanon/profiles/ps315_<edition>.json``, which records the edition and sources.

Run: ``.venv/bin/python tools/generate_profile_tables.py [--shared ../shared]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from pydicom.datadict import tag_for_keyword

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = ROOT / "src" / "dcmanon" / "profiles"
_TCIA_SIMPLE = re.compile(r'^\(([0-9a-fA-F]{4}),"?([^",]+?)"?,([0-9a-fA-F]{2})\)$')
_TCIA_STEP = re.compile(r'\(([0-9a-fA-F]{4}),"?(.+?)"?,([0-9a-fA-F]{2})\)$')
TYPE_STRICTNESS = {"1": 0, "1C": 0, "2": 1, "2C": 1, "3": 2}


def _compound_types(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Type of each compound-code attribute, per IOD and per sequence path (tags)."""
    import highdicom

    standard = resources.files(highdicom) / "_standard"
    sop_iod = json.loads((standard / "sop_class_iod_map.json").read_text())
    iod_modules = json.loads((standard / "iod_module_map.json").read_text())
    module_attributes = json.loads((standard / "module_attribute_map.json").read_text())
    wanted = {r["keyword"] for r in rows if "/" in r["basic"] and r["keyword"]}
    types: dict[str, dict[str, dict[str, str]]] = {}
    for iod, modules in iod_modules.items():
        table: dict[str, dict[str, str]] = {}
        for module in modules:
            for attribute in module_attributes.get(module["key"], []):
                if attribute["keyword"] not in wanted:
                    continue
                tag = tag_for_keyword(attribute["keyword"])
                parents = [tag_for_keyword(k) for k in attribute["path"]]
                if tag is None or None in parents:
                    continue
                type_ = attribute["type"]
                if module["usage"] != "M" and type_ in ("1", "2"):
                    # Attributes of optional modules are required only when the module is there.
                    type_ += "C"
                path = "/".join(f"{p:08X}" for p in parents if p is not None)
                slot = table.setdefault(f"{tag:08X}", {})
                # The strictest Type wins, so the output conforms whatever the module.
                if path not in slot or TYPE_STRICTNESS[type_] < TYPE_STRICTNESS[slot[path]]:
                    slot[path] = type_
        if table:
            types[iod] = table
    return types, sop_iod


def _safe_private(shared: Path) -> list[list[str]]:
    """Private attributes known to be safe: Table E.3.10-1, and TCIA's "k" rows."""
    safe: dict[tuple[str, str, str], str] = {}
    table = json.loads((shared / "standard" / "ps315_safe_private.json").read_text())
    for row in table["rows"]:
        key = (row["group"].upper(), row["private_creator"].strip(),
               row["element_low_byte"].upper())
        safe[key] = "PS3.15 E.3.10-1"
    tcia_files = sorted((shared / "standard").glob("tcia_private_tag_kb_*.csv"))
    dispositions: dict[tuple[str, str, str], set[str]] = {}
    for path in tcia_files:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            for row in csv.DictReader(handle):
                pattern = (row.get("element_sig_pattern") or "").strip()
                # Only the last step matters: a private element is identified by its block.
                step = _TCIA_STEP.search(pattern)
                if not step:
                    continue
                key = (step[1].upper(), step[2].strip().strip('"'), step[3].upper())
                disposition = (row.get("private_disposition") or "").strip().lower()
                dispositions.setdefault(key, set()).add(disposition)
    for key, values in dispositions.items():
        # Kept only when TCIA keeps it in every context it lists.
        if values == {"k"} and int(key[0], 16) & 1:
            safe.setdefault(key, tcia_files[-1].stem)
    return [[g, c, e, source] for (g, c, e), source in sorted(safe.items())]


def generate(shared: Path) -> Path:
    """Write the profile table and return its path."""
    source = json.loads((shared / "standard" / "ps315_e1_1.json").read_text())
    rows = source["rows"]
    option_keys = [c["key"] for c in source["columns"] if c["key"] != "basic"]
    out_rows = []
    for row in rows:
        options = {k: row[k] for k in option_keys if row[k]}
        out_rows.append({"tag": row["tag"], "keyword": row["keyword"], "vr": row["vr"],
                         "name": row["name"], "basic": row["basic"], "options": options})
    types, sop_iod = _compound_types(rows)
    import highdicom

    table = {
        "edition": source["edition"],
        "generated_by": "tools/generate_profile_tables.py",
        "sources": {
            "table_e1_1": source["source"],
            "safe_private": "PS3.15 Table E.3.10-1 and the TCIA private tag knowledge base",
            "types": f"highdicom {highdicom.__version__} _standard (PS3.3 module tables)",
        },
        "columns": source["columns"],
        "rows": out_rows,
        "iod_types": types,
        "sop_class_iod": sop_iod,
        "safe_private": _safe_private(shared),
    }
    target = OUTPUT_DIR / f"ps315_{source['edition']}.json"
    target.write_text(json.dumps(table, separators=(",", ":"), sort_keys=True) + "\n")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    path = generate(args.shared)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
