"""Shared test settings: pydicom must not warn about the odd values tests build on purpose; and
the one way a test gets an external tool (a *peer*: DCMTK, dicom3tools, GDCM, Chromium).

A test that runs an external tool is marked ``peer`` (a DICOM tool) or ``browser`` (Chromium)
and gets the tool's path from the ``external_tool`` fixture, never from ``shutil.which`` of
its own. A missing tool skips the test with the reason, unless ``DCMANON_REQUIRE_PEERS=1``
(set by ``make test`` and CI, which install the tools first): then the test fails, naming the
tool and how to install it, so that a run cannot pass without its peers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest
from pydicom import config

REQUIRE_PEERS = "DCMANON_REQUIRE_PEERS"
TOOL_MARKERS = ("peer", "browser")
# Each tool's Debian package: scripts/install-system-deps.sh installs them all.
PACKAGES = {
    "dcmdump": "dcmtk",
    "storescu": "dcmtk",
    "storescp": "dcmtk",
    "echoscu": "dcmtk",
    "Orthanc": "orthanc",
    "dciodvfy": "dicom3tools",
    "gdcmdump": "libgdcm-tools",
    "gdcminfo": "libgdcm-tools",
    "gdcmanon": "libgdcm-tools",
    "chromium": "chromium",
    "openssl": "openssl",
}


@pytest.fixture(autouse=True)
def _pydicom_quiet() -> Iterator[None]:
    reading = config.settings.reading_validation_mode
    writing = config.settings.writing_validation_mode
    config.settings.reading_validation_mode = config.IGNORE
    config.settings.writing_validation_mode = config.IGNORE
    yield
    config.settings.reading_validation_mode = reading
    config.settings.writing_validation_mode = writing


def peers_required() -> bool:
    """Whether a missing external tool fails its tests (``DCMANON_REQUIRE_PEERS=1``)."""
    return os.environ.get(REQUIRE_PEERS, "") not in ("", "0")


def find_tool(name: str) -> str:
    """The path of the external tool ``name`` on ``PATH``; skip the test without it, or fail
    when peers are required."""
    if name not in PACKAGES:
        raise ValueError(f"unknown external tool {name!r}: add it to PACKAGES in conftest.py "
                         "and to scripts/install-system-deps.sh")
    found = shutil.which(name)
    if found is not None:
        return found
    message = (f"{name} is not installed (Debian package {PACKAGES[name]}): "
               "run scripts/install-system-deps.sh")
    if peers_required():
        pytest.fail(f"{message}; {REQUIRE_PEERS}=1 requires every external tool",
                    pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def external_tool() -> Callable[[str], str]:
    """``external_tool("dcmdump")``: the tool's path, as :func:`find_tool` finds it."""
    return find_tool


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked peer or browser get their tools from ``external_tool``, and only they use
    it: ``-m "not peer and not browser"`` then deselects exactly the tests that need a tool,
    and none of them can skip its tool on its own terms."""
    wrong = []
    for item in items:
        marked = any(item.get_closest_marker(name) is not None for name in TOOL_MARKERS)
        uses = "external_tool" in getattr(item, "fixturenames", ())
        if marked != uses:
            wrong.append(item.nodeid)
    if wrong:
        raise pytest.UsageError(
            "a test marked peer or browser must get its tool from the external_tool fixture "
            "(tests/conftest.py), and a test that does must be so marked: " + ", ".join(wrong))


@pytest.fixture
def no_process_left() -> Iterator[None]:
    """Whatever happens in a test, the processes it started (tests/net_peers.py) end with it."""
    from tests.net_peers import reap

    yield
    reap()
