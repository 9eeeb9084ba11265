"""Reading inputs (never for writing) and writing outputs atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dcmanon import __version__
from dcmanon.errors import InputError

IMPLEMENTATION_CLASS_UID = "2.25.100671212457638642182829867890137592573"
IMPLEMENTATION_VERSION_NAME = f"DCMANON_{__version__.replace('.', '')}"[:16]
META_ELEMENTS_DROPPED = (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102)
"""AE titles and private information of the file meta: they can name sites or people."""


def read_dicom(path: str | os.PathLike[str]) -> FileDataset:
    """Read a DICOM file (Part 10, or a bare dataset without preamble).

    Large values (pixel data) are read lazily from the file when they are written.

    Raises
    ------
    InputError
        If the file is missing, unreadable, not DICOM, or truncated.
    """
    name = os.fspath(path)
    if os.path.isdir(name):
        raise InputError(f"{name}: is a folder, not a file")
    try:
        try:
            ds = dcmread(name, defer_size="256 KB")
        except InvalidDicomError:
            ds = dcmread(name, force=True, defer_size="256 KB")
            if not _looks_like_dataset(ds):
                raise InputError(f"{name}: not a DICOM file") from None
        # Touch every top-level element now, so a truncated file fails here, not mid-write.
        for tag in list(ds.keys()):
            ds.get_item(tag, keep_deferred=True)
    except FileNotFoundError:
        raise InputError(f"{name}: file not found") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied") from None
    except InputError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, NotImplementedError,
            IndexError, AttributeError) as exc:
        raise InputError(f"{name}: not a readable DICOM file ({type(exc).__name__})") from None
    return ds


def _looks_like_dataset(ds: Dataset) -> bool:
    keys = list(ds.keys())
    return bool(keys) and ("SOPClassUID" in ds or "SOPInstanceUID" in ds)


def prepare_file_meta(ds: FileDataset) -> None:
    """Make the file meta follow the dataset (MediaStorage UIDs = SOP UIDs) and name us."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = FileMetaDataset()
        ds.file_meta = meta
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = (ImplicitVRLittleEndian if ds.original_encoding[0]
                                  else ExplicitVRLittleEndian)
    for tag in META_ELEMENTS_DROPPED:
        if tag in meta:
            del meta[tag]
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.preamble = b"\0" * 128


def write_dicom_atomic(ds: FileDataset, path: str | os.PathLike[str]) -> None:
    """Write ``ds`` to ``path``: a temporary file in the same folder, renamed when complete.

    Nothing is left at ``path`` (or beside it) if writing fails.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".dcmanon-", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            ds.save_as(handle, enforce_file_format=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
