"""dcmanon: de-identify DICOM files with rules compatible with Microsoft's DICOM anonymizer.

The library never prints or exits; errors are typed (:mod:`dcmanon.errors`). The names below
are imported on first use, so that a command that needs neither pydicom nor pydantic (``dcmanon
--help``) starts without loading them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dcmanon._lazy import lazy_attributes
from dcmanon._version import __version__

if TYPE_CHECKING:
    from dcmanon.anonymizer import Anonymizer, FileResult, FileStatus
    from dcmanon.config.loader import Config, default_config, load_config, parse_config

logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "Anonymizer": "dcmanon.anonymizer",
    "FileResult": "dcmanon.anonymizer",
    "FileStatus": "dcmanon.anonymizer",
    "Config": "dcmanon.config.loader",
    "default_config": "dcmanon.config.loader",
    "load_config": "dcmanon.config.loader",
    "parse_config": "dcmanon.config.loader",
}

__all__ = [
    "Anonymizer",
    "Config",
    "FileResult",
    "FileStatus",
    "__version__",
    "default_config",
    "load_config",
    "parse_config",
]

__getattr__ = lazy_attributes(__name__, _LAZY)
