"""Documentation that is generated or promised stays true."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dcmanon.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _generator() -> object:
    spec = importlib.util.spec_from_file_location(
        "generate_conformance_doc", ROOT / "tools" / "generate_conformance_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conformance_page_is_up_to_date() -> None:
    generator = _generator()
    expected = generator.render()  # type: ignore[attr-defined]
    assert (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8") == expected, (
        "run tools/generate_conformance_doc.py")


def test_every_command_line_option_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for parameter in main.params:
        for name in parameter.opts:
            if name.startswith("--") and name not in ("--help", "--version"):
                assert f"`{name}" in readme or f"/{name}`" in readme, name


def test_help_lists_every_option() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for parameter in main.params:
        assert parameter.opts[-1] in result.output


def test_the_example_configuration_is_valid_and_removes_the_planted_phi(tmp_path: Path) -> None:
    from dcmanon import Anonymizer, load_config
    from dcmanon.testing import make_instance, make_patient, phi_markers

    patient = make_patient(0)
    source = tmp_path / "in.dcm"
    make_instance(patient).save_as(source, enforce_file_format=True)
    config = load_config(ROOT / "examples" / "rules-example.json", secret="k")
    result = Anonymizer(config).anonymize_file(source, tmp_path / "out.dcm")
    assert result.status == "done", result.error
    data = (tmp_path / "out.dcm").read_bytes()
    assert [m for m in phi_markers(patient) if m.encode() in data] == []


def test_the_readme_configuration_example_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from dcmanon import parse_config

    monkeypatch.setenv("HASH_KEY", "a-hash-key")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```jsonc\n(.*?)```", readme, re.DOTALL)
    assert example is not None
    config = parse_config(example.group(1), secret="k")
    assert len(config.rules) == 7 and config.profile is not None
