"""Shared test settings: pydicom must not warn about the odd values tests build on purpose."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydicom import config


@pytest.fixture(autouse=True)
def _pydicom_quiet() -> Iterator[None]:
    reading = config.settings.reading_validation_mode
    writing = config.settings.writing_validation_mode
    config.settings.reading_validation_mode = config.IGNORE
    config.settings.writing_validation_mode = config.IGNORE
    yield
    config.settings.reading_validation_mode = reading
    config.settings.writing_validation_mode = writing
