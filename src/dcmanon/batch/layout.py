"""Where each output goes: the input tree mirrored, or names made of the new UIDs."""

from __future__ import annotations

import re
import warnings
from enum import Enum
from pathlib import Path, PurePosixPath

from pydicom.dataset import Dataset

from dcmanon.errors import LayoutError

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


class Layout(str, Enum):
    """How outputs are named.

    ``mirror``: the input's relative path, as the reference does (input names are kept, and
    may carry identifiers). ``uid``: ``<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``
    of the anonymized dataset, so nothing of the input's name reaches the output.
    """

    MIRROR = "mirror"
    UID = "uid"


def mirror_target(output_dir: Path, relative: str) -> Path:
    """The output path of an input at ``relative`` (a POSIX path inside the input folder)."""
    return output_dir.joinpath(*PurePosixPath(relative).parts)


def uid_target(output_dir: Path, ds: Dataset) -> Path:
    """``output_dir/<Study>/<Series>/<SOP>.dcm`` from the anonymized dataset's UIDs.

    Raises
    ------
    LayoutError
        If one of the three UIDs is missing, empty or not a UID (the message names the
        element, never its value).
    """
    parts = []
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ds.get(keyword)
        text = str(value).strip("\0 ") if value is not None else ""
        if not text:
            raise LayoutError(f"{keyword} is missing or empty after anonymization: "
                              "--layout uid cannot name the output")
        if not _UID.fullmatch(text) or len(text) > 64:
            raise LayoutError(f"{keyword} is not a valid UID after anonymization: "
                              "--layout uid cannot name the output")
        parts.append(text)
    return output_dir / parts[0] / parts[1] / f"{parts[2]}.dcm"
