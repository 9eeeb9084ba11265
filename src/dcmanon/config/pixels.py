"""The configuration's ``pixels`` section: how burned-in text is handled.

.. code-block:: json

    "pixels": {"mode": "flagged", "defaultLibrary": true, "identifiersOnly": false,
               "ctpScripts": ["DicomPixelAnonymizer.script"], "deidRecipes": ["deid.dicom"],
               "rules": [{"name": "...", "when": [...], "blank": [[0, 0, 640, 30]]}]}

Checked here for its shape; the rules themselves are compiled (and refused, with their JSON
location) by :mod:`dcmanon.pixels` when the anonymizer is built, before any file is read.
Scripts and recipes are read from paths relative to the configuration file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MODES = ("off", "rules", "flagged", "all")
FIELDS = ("mode", "defaultLibrary", "identifiersOnly", "ctpScripts", "deidRecipes", "rules")


@dataclass(frozen=True)
class PixelSection:
    """The ``pixels`` section as written (defaults: ``flagged``, with the default library)."""

    mode: str = "flagged"
    default_library: bool = True
    identifiers_only: bool = False
    ctp_scripts: tuple[str, ...] = ()
    deid_recipes: tuple[str, ...] = ()
    rules_json: str = "[]"
    """The ``rules`` list as canonical JSON (the config stays hashable and comparable)."""

    @property
    def rules(self) -> Any:
        return json.loads(self.rules_json)


def pixel_section(raw: Any, problem: Callable[[str, str], None],
                  base: str | None = None) -> PixelSection:
    """Check the ``pixels`` section's shape; report each problem with its location."""
    if raw is None:
        return PixelSection()
    if not isinstance(raw, Mapping):
        problem("pixels", "must be an object")
        return PixelSection()
    by_lower = {f.lower(): f for f in FIELDS}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = by_lower.get(str(key).lower())
        if name is None:
            problem(f"pixels.{key}", "unknown field (known: " + ", ".join(FIELDS) + ")")
        else:
            values[name] = value
    mode = values.get("mode", "flagged")
    if not isinstance(mode, str) or mode.lower() not in MODES:
        problem("pixels.mode", "must be one of " + ", ".join(f'"{m}"' for m in MODES))
        mode = "flagged"
    flags = {}
    for name in ("defaultLibrary", "identifiersOnly"):
        value = values.get(name, name == "defaultLibrary")
        if not isinstance(value, bool):
            problem(f"pixels.{name}", "must be true or false")
            value = name == "defaultLibrary"
        flags[name] = value
    paths: dict[str, tuple[str, ...]] = {}
    for name in ("ctpScripts", "deidRecipes"):
        value = values.get(name, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problem(f"pixels.{name}", "must be a list of file paths")
            value = []
        paths[name] = tuple(_resolved(v, base) for v in value)
    rules = values.get("rules", [])
    if not isinstance(rules, list):
        problem("pixels.rules", "must be a list of rule objects")
        rules = []
    return PixelSection(mode.lower(), flags["defaultLibrary"], flags["identifiersOnly"],
                        paths["ctpScripts"], paths["deidRecipes"],
                        json.dumps(rules, sort_keys=True))


def _resolved(path: str, base: str | None) -> str:
    import os

    if base is None or os.path.isabs(path):
        return path
    return os.path.join(os.path.dirname(os.path.abspath(base)), path)
