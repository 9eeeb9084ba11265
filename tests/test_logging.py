"""Logging: the library only logs (never prints, never configures handlers); the command line
shows warnings, and with --debug what dcmanon does — never an element's value."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dcmanon.cli import main

BIG_ENDIAN = Path(get_testdata_file("MR_small_bigendian.dcm", download=False) or "")


@pytest.fixture(autouse=True)
def _library_logger_restored() -> object:
    """The command line sets up the library's logger; leave it as the next test expects."""
    logger = logging.getLogger("dcmanon")
    level, handlers = logger.level, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers


def test_importing_the_library_configures_no_logging() -> None:
    code = ("import logging, dcmanon, dcmanon.batch, dcmanon.check.verify;"
            "root = logging.getLogger();"
            "lib = logging.getLogger('dcmanon');"
            "print(len(root.handlers), [type(h).__name__ for h in lib.handlers], lib.level)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["0", "['NullHandler']", "0"]


def test_debug_says_which_path_a_file_took_and_never_a_value(tmp_path: Path) -> None:
    name = str(dcmread(BIG_ENDIAN).PatientName)
    patient_id = str(dcmread(BIG_ENDIAN).PatientID)
    assert name and patient_id
    result = CliRunner().invoke(main, ["--debug", "--pixels", "off", "-i", str(BIG_ENDIAN),
                                       "-o", str(tmp_path / "out.dcm")],
                                env={"DCMANON_KEY": "test-secret"})
    assert result.exit_code == 0, result.output
    debug_lines = [line for line in result.stderr.splitlines() if ": DEBUG: " in line]
    assert any("takes pydicom's path" in line for line in debug_lines), result.stderr
    for value in (name, patient_id, name.split("^")[0]):
        assert value not in result.stderr


def test_without_debug_no_debug_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--pixels", "off",
                                       "-i", str(BIG_ENDIAN), "-o", str(tmp_path / "out.dcm")],
                                env={"DCMANON_KEY": "test-secret"})
    assert result.exit_code == 0, result.output
    assert ": DEBUG: " not in result.stderr
