"""Where each output goes: the input tree mirrored, or names made of the new UIDs."""

from __future__ import annotations

import hashlib
import re
import warnings
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from dcmanon.errors import LayoutError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Layout(str, Enum):
    """How outputs are named.

    ``mirror``: the input's relative path, as the reference does (input names are kept, and
    may carry identifiers). ``uid``: ``<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``
    of the anonymized dataset, so nothing of the input's name reaches the output.
    ``fileset``: a standard file-set for media, ``PTxxxxxx/STxxxxxx/SExxxxxx/IMxxxxxx`` (each
    ``xxxxxx`` keyed by the new patient pseudonym, Study, Series and SOP Instance UID, so that
    every worker names a file alike) with a fresh DICOMDIR.
    """

    MIRROR = "mirror"
    UID = "uid"
    FILESET = "fileset"


def mirror_target(output_dir: Path, relative: str) -> Path:
    """The output path of an input at ``relative`` (a POSIX path inside the input folder)."""
    return output_dir.joinpath(*PurePosixPath(relative).parts)


def fileset_target(output_dir: Path, ds: Dataset, patient: str) -> Path:
    """``output_dir/PTxxxxxx/STxxxxxx/SExxxxxx/IMxxxxxx``: File IDs of a standard file-set,
    keyed by ``patient`` (the output's patient pseudonym) and the anonymized dataset's UIDs.

    Raises
    ------
    LayoutError
        As :func:`uid_target`, when a UID is missing, empty or invalid.
    """
    study, series, sop = uid_target(output_dir, ds).relative_to(output_dir).parts
    return output_dir.joinpath(*(prefix + _file_id_code(value) for prefix, value in (
        ("PT", patient), ("ST", study), ("SE", series), ("IM", sop.removesuffix(".dcm")))))


def _file_id_code(value: str) -> str:
    """Six characters of ``A-Z`` and ``0-9`` keyed by ``value`` (2**31 of them)."""
    number = int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big")
    code = ""
    for _ in range(6):
        number, digit = divmod(number, 36)
        code += _BASE36[digit]
    return code


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
