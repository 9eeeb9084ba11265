"""Reading inputs (never for writing) and writing outputs atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dcmanon._version import __version__
from dcmanon.dicom.constants import MAX_NESTING, UNDEFINED_LENGTH
from dcmanon.dicom.nesting import nesting_problem, too_deep
from dcmanon.errors import InputError
from dcmanon.io.inflate import MAX_INFLATED_SIZE, inflate_bounded
from dcmanon.io.rawdataset import NotPlain, parse_file
from dcmanon.io.rawwrite import Patches, Sources, write_streamed

IMPLEMENTATION_CLASS_UID = "2.25.100671212457638642182829867890137592573"
IMPLEMENTATION_VERSION_NAME = f"DCMANON_{__version__.replace('.', '')}"[:16]
META_ELEMENTS_KEPT = frozenset({
    0x00020001,  # FileMetaInformationVersion
    0x00020002,  # MediaStorageSOPClassUID
    0x00020003,  # MediaStorageSOPInstanceUID (follows the dataset)
    0x00020010,  # TransferSyntaxUID
    0x00020012,  # ImplementationClassUID (ours)
    0x00020013,  # ImplementationVersionName (ours)
})
"""The only file meta elements written. All others go: AE titles (0016-0018), presentation
addresses (0026-0028), private information (0100, 0102), RTV identifiers (0031-0038) can
name sites, people or instances."""

DEFER_SIZE = 256 * 1024
"""Values longer than this stay on disk until needed (and are copied, never loaded, if kept)."""
_ELEMENT_HEADER = 8
_TRUNCATED = "truncated (the file ends inside an element)"


def read_dicom(path: str | os.PathLike[str], *, defer: bool = True,
               max_inflated_size: int = MAX_INFLATED_SIZE,
               max_nesting: int = MAX_NESTING) -> FileDataset:
    """Read a DICOM file (Part 10, or a bare dataset without preamble).

    Large values (pixel data) are left on disk when ``defer`` (the default): pydicom reads
    them only when asked, and :mod:`dcmanon.io.streaming` copies them without reading them.
    Deflated files are always read in full (their bytes on disk are not the dataset's),
    inflated in bounded steps (:mod:`dcmanon.io.inflate`), and so are files whose dataset is
    encoded otherwise than their transfer syntax declares. pydicom's warnings are never shown
    (they quote values); a file that ends inside an element is refused rather than read in
    part.

    Parameters
    ----------
    path : path-like
        The file.
    defer : bool
        Leave large values on disk.
    max_inflated_size : int
        Refuse a deflated file whose dataset inflates to more bytes than this.
    max_nesting : int
        Refuse a file whose sequences nest deeper than this many levels
        (:mod:`dcmanon.dicom.nesting`).

    Raises
    ------
    InputError
        If the file is missing, unreadable, not DICOM, truncated, inflates past
        ``max_inflated_size`` or nests past ``max_nesting``. The message names the file and
        the kind of problem (and the sequence, for nesting), never a value.
    """
    name = os.fspath(path)
    if os.path.isdir(name):
        raise InputError(f"{name}: is a folder, not a file")
    if os.path.exists(name) and not os.path.isfile(name):
        # A FIFO, socket or device: opening it could block forever or read endlessly.
        raise InputError(f"{name}: not a regular file (never opened)")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            deflated = _read_deflated(name, max_inflated_size)
            if deflated is not None:
                ds, inflated = deflated
                size, tail = len(inflated), (lambda start: any(inflated[start:]))
            else:
                ds = _read(name, defer)
                size, tail = os.path.getsize(name), (lambda start: _nonzero_tail(name, start))
                misread = _encoding_against_its_syntax(ds)
                if defer and misread:
                    return read_dicom(name, defer=False, max_inflated_size=max_inflated_size,
                                      max_nesting=max_nesting)
                if misread:
                    # pydicom notes the declared encoding; the one read makes the writer
                    # re-encode.
                    ds.set_original_encoding(*misread, ds.original_character_set)
        if any("end of file" in str(w.message).lower() for w in caught):
            raise InputError(f"{name}: {_TRUNCATED}")
        _check_complete(ds, name, size, tail)
        if len(ds) == 0:
            raise InputError(f"{name}: not a DICOM file (no data elements)")
        deep = too_deep(ds, max_nesting)
        if deep is not None:
            raise InputError(f"{name}: {nesting_problem(deep, max_nesting)}")
    except FileNotFoundError:
        raise InputError(f"{name}: file not found") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied") from None
    except InputError:
        raise
    except EOFError:
        raise InputError(f"{name}: {_TRUNCATED}") from None
    except RecursionError:
        # pydicom's reader follows sequences of undefined length by recursion.
        raise _nesting_error(name, max_nesting) from None
    except Exception as exc:  # noqa: BLE001  (pydicom raises many kinds on a corrupt file)
        # pydicom's messages may quote bytes of the file: only the class is reported.
        raise InputError(f"{name}: not a readable DICOM file, corrupt or truncated "
                         f"({type(exc).__name__})") from None
    return ds


def _read(name: str, defer: bool) -> FileDataset:
    """pydicom's read of a file that is not deflated (as a bare dataset if need be)."""
    try:
        return dcmread(name, defer_size=DEFER_SIZE if defer else None)
    except InvalidDicomError:
        ds = dcmread(name, force=True, defer_size=DEFER_SIZE if defer else None)
        if not _looks_like_dataset(ds):
            raise InputError(f"{name}: not a DICOM file") from None
        return ds


def _read_deflated(name: str, limit: int) -> tuple[FileDataset, bytes] | None:
    """A deflated file read in full, and its inflated dataset; None if it is not deflated.

    Inflated in bounded steps (:func:`dcmanon.io.inflate.inflate_bounded`), never past
    ``limit``; pydicom then reads the inflated bytes as Explicit VR Little Endian (as its own
    reader does after inflating the whole file at once).
    """
    with open(name, "rb") as handle:
        try:
            preamble = read_preamble(handle, True)
            meta = _read_file_meta_info(handle)
        except Exception:  # noqa: BLE001  (not a file meta pydicom reads: dcmread explains)
            return None
        syntax = meta.get("TransferSyntaxUID")
        if not syntax or not UID(str(syntax)).is_deflated:
            return None
        inflated = inflate_bounded(handle, name, limit)
    dataset = read_dataset(cast(BinaryIO, DicomBytesIO(inflated)), False, True)
    ds = FileDataset(name, dataset, preamble, meta, False, True)
    ds.set_original_encoding(False, True, dataset._character_set)
    return ds, inflated


def _nesting_error(name: str, limit: int) -> InputError:
    """The error for a file pydicom could not read for its nesting: the byte-level parser
    names the sequence where the limit is passed (when it can read the file)."""
    try:
        parse_file(name, max_nesting=limit)
    except InputError as exc:
        return exc
    except (NotPlain, RecursionError):
        pass
    return InputError(f"{name}: sequences nested too deeply to be read (more than {limit} "
                      "levels)")


def _encoding_against_its_syntax(ds: Dataset) -> tuple[bool, bool] | None:
    """The encoding the dataset was read in (implicit VR, little endian), when it is not the
    one its transfer syntax declares (implicit VR under an explicit syntax, say); else None.

    Such a file is written again as declared, every element re-encoded, so its values are
    read in full.
    """
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not syntax:
        return None
    uid = UID(str(syntax))
    if not uid.is_transfer_syntax or uid.is_private or uid.is_deflated:
        return None
    for tag in list(ds.keys()):  # (iterating a Dataset converts its elements)
        element = ds.get_item(tag, keep_deferred=True)
        if isinstance(element, RawDataElement):
            read = (bool(element.is_implicit_VR), bool(element.is_little_endian))
            return read if read != (uid.is_implicit_VR, uid.is_little_endian) else None
    return None


def _looks_like_dataset(ds: Dataset) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keys = list(ds.keys())
        return bool(keys) and ("SOPClassUID" in ds or "SOPInstanceUID" in ds)


def _check_complete(ds: Dataset, name: str, size: int, tail: Callable[[int], bool]) -> None:
    """Refuse a dataset pydicom read in part.

    pydicom stops quietly at the end of a file: a value shorter than its declared length, or
    the first bytes of a next element, would otherwise be anonymized and written as a shorter
    file (a cut pixel data, missing elements). A cut exactly between two elements cannot be
    told from a complete file.
    """
    end = 0
    for tag in list(ds.keys()):
        elem = ds.get_item(tag, keep_deferred=True)
        if not isinstance(elem, RawDataElement):
            end = -1  # a parsed sequence: its end is not known
            continue
        length = elem.length
        if length == UNDEFINED_LENGTH:
            end = -1
            continue
        end = elem.value_tell + length
        if not length:
            continue
        if elem.value is None:  # deferred: must lie inside the file
            if end > size:
                raise InputError(f"{name}: {_TRUNCATED}")
        elif len(elem.value) != length:
            raise InputError(f"{name}: {_TRUNCATED}")
    if 0 < end < size and size - end < _ELEMENT_HEADER and tail(end):
        raise InputError(f"{name}: {_TRUNCATED}")


def _nonzero_tail(name: str, start: int) -> bool:
    """Whether the bytes after ``start`` hold something (a cut element header), not padding."""
    with open(name, "rb") as handle:
        handle.seek(start)
        return any(handle.read())


def prepare_file_meta(ds: FileDataset) -> None:
    """Make the file meta follow the dataset and name us; keep only what identifies nothing.

    MediaStorageSOPInstanceUID is the dataset's (new) SOPInstanceUID, and empty when a rule
    removed or emptied it: the original is never kept. MediaStorageSOPClassUID follows
    SOPClassUID, and keeps the input's class when a rule removed it (a class identifies no one).
    """
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = FileMetaDataset()
        ds.file_meta = meta
    if "TransferSyntaxUID" not in meta or not meta.TransferSyntaxUID:
        implicit, little = ds.original_encoding
        if implicit:
            meta.TransferSyntaxUID = ImplicitVRLittleEndian
        elif little is False:
            meta.TransferSyntaxUID = ExplicitVRBigEndian
        else:
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for tag in list(meta.keys()):
        if int(tag) not in META_ELEMENTS_KEPT:
            del meta[tag]
    meta.MediaStorageSOPInstanceUID = _uid_of(ds, "SOPInstanceUID")
    sop_class = _uid_of(ds, "SOPClassUID")
    if sop_class or "MediaStorageSOPClassUID" not in meta:
        meta.MediaStorageSOPClassUID = sop_class
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.preamble = b"\0" * 128


def _uid_of(ds: Dataset, keyword: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = ds.get(keyword)
        return str(value).rstrip("\0 ") if value else ""


def _complete_meta(meta: FileMetaDataset) -> bool:
    """Whether pydicom's own Part 10 checks will accept ``meta`` (no empty Type 1 UID)."""
    return all(meta.get(keyword) for keyword in
               ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID"))


def write_dicom_atomic(ds: FileDataset, path: str | os.PathLike[str], *,
                       exclusive: bool = False,
                       temp_dir: str | os.PathLike[str] | None = None,
                       replace_before: float | None = None, sync: bool = True,
                       patches: Patches | None = None,
                       sources: Sources | None = None) -> None:
    """Write ``ds`` to ``path``: a temporary file, renamed when complete.

    When a rule emptied the SOP Instance UID, the file meta is written with an empty
    MediaStorageSOPInstanceUID (pydicom would refuse it; the original UID must not be kept).
    Values still on disk (see :mod:`dcmanon.io.streaming`) are copied from the input file. The
    keyword arguments are those of :func:`write_atomic`, and ``patches`` (by tag) change
    values still on disk while they are copied (:class:`dcmanon.io.rawwrite.ValuePatch`);
    ``sources`` (by tag) generate values while they are written
    (:class:`dcmanon.io.rawwrite.ValueSource`).
    """
    meta = getattr(ds, "file_meta", None)
    enforce = meta is None or _complete_meta(meta)
    if not enforce:
        assert meta is not None
        # What pydicom adds itself when it enforces the format.
        meta.FileMetaInformationGroupLength = 0  # recomputed while writing
        if not meta.get("FileMetaInformationVersion"):
            meta.FileMetaInformationVersion = b"\x00\x01"
        meta.MediaStorageSOPClassUID = meta.get("MediaStorageSOPClassUID") or ""
        meta.MediaStorageSOPInstanceUID = meta.get("MediaStorageSOPInstanceUID") or ""
        if not meta.get("ImplementationClassUID"):
            meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
        if not getattr(ds, "preamble", None):
            ds.preamble = b"\0" * 128
    write_atomic(path, lambda handle: write_streamed(ds, handle, enforce=enforce,
                                                     patches=patches, sources=sources),
                 exclusive=exclusive, temp_dir=temp_dir, replace_before=replace_before,
                 sync=sync)


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], None], *,
                 exclusive: bool = False, temp_dir: str | os.PathLike[str] | None = None,
                 replace_before: float | None = None, sync: bool = True) -> None:
    """Write a file with ``write``: to a temporary name, renamed to ``path`` when complete.

    Nothing is left at ``path`` (or beside it) if writing fails, not even folders this call
    created.

    Parameters
    ----------
    exclusive : bool
        Never replace an existing file: :class:`FileExistsError` instead (checked at the
        rename itself, so two writers of one path cannot both succeed).
    temp_dir : path-like, optional
        Where the temporary file is made (default: beside ``path``); on the same file system.
    replace_before : float, optional
        With ``exclusive``: an existing file last modified before this time (seconds since
        the epoch) is replaced all the same (an output of an earlier run).
    sync : bool
        Flush the file to disk before renaming it (a batch syncs once at its end instead).
    """
    target = Path(path)
    folder = Path(temp_dir) if temp_dir is not None else target.parent
    created: list[Path] = []
    try:
        # Folders are made only when missing (most outputs go where others already went).
        try:
            fd, temp = tempfile.mkstemp(prefix=".dcmanon-", suffix=".part", dir=folder)
        except FileNotFoundError:
            created = _make_parents(folder)
            fd, temp = tempfile.mkstemp(prefix=".dcmanon-", suffix=".part", dir=folder)
    except BaseException:
        _remove_folders(created)
        raise
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            # mkstemp makes the file private (0600); an output gets the usual mode instead.
            os.fchmod(handle.fileno(), 0o666 & ~_UMASK)
            if sync:
                os.fsync(handle.fileno())
            else:
                _start_writeback(handle.fileno())
        try:
            _publish(temp, target, exclusive, replace_before)
        except FileNotFoundError:
            if temp_dir is None or not Path(temp).exists():
                raise
            created = _make_parents(target.parent) + created
            _publish(temp, target, exclusive, replace_before)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        _remove_folders(created)
        raise


def _start_writeback(fd: int) -> None:
    """Ask the kernel to start writing a file to disk now and not to keep it cached.

    A batch flushes once at its end; without this, all its outputs would wait in memory for
    that flush (measured: ~0.6 s of the end-of-run flush for 790 MB of CT slices, then ~0).
    Linux starts the writeback at once on this advice; elsewhere it is only advice.
    """
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _publish(temp: str, target: Path, exclusive: bool, replace_before: float | None) -> None:
    """Rename ``temp`` to ``target``; with ``exclusive``, only if ``target`` does not exist
    (or, with ``replace_before``, is older than that)."""
    if not exclusive:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)  # fails if target exists, atomically
    except FileExistsError:
        if replace_before is None or _mtime(target) >= replace_before:
            raise
        os.replace(temp, target)
        return
    except OSError:  # a file system without hard links: check, then rename
        if target.exists() and (replace_before is None or _mtime(target) >= replace_before):
            raise FileExistsError(17, "File exists", str(target)) from None
        os.replace(temp, target)
        return
    os.unlink(temp)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")


def _umask() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


_UMASK = _umask()
"""Read once: os.umask can only be read by setting it, which is not thread-safe."""


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, deepest first."""
    missing: list[Path] = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_folders(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
