"""The package's shape: layers import downwards (import-linter, `make lint`), no import cycle,
small modules, the public API where users import it from, and a map that matches the folders."""

from __future__ import annotations

import re
from pathlib import Path

import grimp
import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dcmanon"
ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
MAX_LINES = 600


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), i.e. import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_back() -> None:
    graph = grimp.build_graph("dcmanon", cache_dir=None)
    # A package's __init__ re-exporting its own modules is not a cycle of the code's layers.
    for package in [m for m in graph.modules if (SRC / m.replace("dcmanon.", "", 1)
                                                 .replace(".", "/") / "__init__.py").is_file()]:
        for child in list(graph.find_modules_directly_imported_by(package)):
            if child.startswith(package + "."):
                graph.remove_import(importer=package, imported=child)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    assert _cycles(graph) == []
    graph.add_import(importer="c", imported="a")
    assert _cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", sorted(p.relative_to(SRC).as_posix()
                                          for p in SRC.rglob("*.py")))
def test_modules_stay_small(module: str) -> None:
    lines = (SRC / module).read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module}: {lines} lines; split it by concern"


def test_public_api() -> None:
    from dcmanon import Anonymizer, load_config, parse_config
    from dcmanon.batch import BatchOptions, Layout, run_folder

    assert all(callable(x) for x in (Anonymizer, load_config, parse_config, BatchOptions,
                                     Layout, run_folder))


def test_architecture_page_names_every_package() -> None:
    packages = {p.parent.relative_to(SRC).as_posix() for p in SRC.rglob("__init__.py")} - {"."}
    named = set(re.findall(r"^\|\s*`([a-z_]+)/`", ARCHITECTURE.read_text(encoding="utf-8"),
                           re.M))
    assert named == packages


def test_the_command_line_starts_without_the_engine() -> None:
    """``dcmanon --help`` (and any command's start) loads neither pydicom nor pydantic: they
    are imported when a command runs (start-up time is measured by bench/, not here)."""
    import subprocess
    import sys

    code = ("import sys, dcmanon.cli; "
            "print(sorted(m for m in ('pydicom', 'pydantic', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
