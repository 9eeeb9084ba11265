"""dcmanon: de-identify DICOM files with rules compatible with Microsoft's DICOM anonymizer.

The library never prints or exits; errors are typed (:mod:`dcmanon.errors`).
"""

from __future__ import annotations

import logging

from dcmanon._version import __version__
from dcmanon.anonymizer import Anonymizer, FileResult, FileStatus
from dcmanon.config.loader import Config, default_config, load_config, parse_config

logging.getLogger(__name__).addHandler(logging.NullHandler())

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
