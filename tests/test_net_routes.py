"""Routes files and the node's command line, without a network: what a route may say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dcmanon.cli.main import main
from dcmanon.errors import UsageError
from dcmanon.net.routes import load_routes
from dcmanon.pixels import MODES
from dcmanon.pixels.clean import PixelMode


def _routes(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps({"routes": [{"name": "a", "forwardFolder": "out", **extra}]}),
                    encoding="utf-8")
    return path


def test_a_route_s_pixels_mode_is_read(tmp_path: Path) -> None:
    assert load_routes(_routes(tmp_path, pixels="Rules"))[0].pixels == "rules"
    assert load_routes(_routes(tmp_path))[0].pixels is None


@pytest.mark.parametrize("value", ["ocr", 3, ""])
def test_a_wrong_pixels_mode_names_its_place(tmp_path: Path, value: object) -> None:
    with pytest.raises(UsageError, match=r"routes\[0\]\.pixels: one of off, rules, flagged"):
        load_routes(_routes(tmp_path, pixels=value))


def test_the_modes_are_the_pixel_stage_s() -> None:
    assert tuple(mode.value for mode in PixelMode) == MODES


def test_serve_takes_the_main_command_s_pixels_option() -> None:
    def option(args: list[str]) -> str:
        text = CliRunner().invoke(main, args, terminal_width=200).output
        start = text.index("--pixels")
        return " ".join(text[start:].split("\n  -")[0].split())

    assert option(["serve", "--help"]) == option(["--help"])
    assert "[off|rules|flagged|all]" in option(["serve", "--help"])
