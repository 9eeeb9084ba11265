"""Bytes of an output file made of pieces: spans of the input, new elements, and values left
on disk in the input (copied inside the kernel where it can, never loaded).

The encoders here write what pydicom writes for the same element, so that the fast path's
output is the pydicom path's, byte for byte (:mod:`dcmanon.io.fastpath`).
"""

from __future__ import annotations

import contextlib
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.tag import BaseTag

from dcmanon.dicom.constants import SPECIFIC_CHARACTER_SET, UNDEFINED_LENGTH
from dcmanon.errors import InputError
from dcmanon.header.record import record_deidentification
from dcmanon.io.files import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from dcmanon.io.rawdataset import (
    LONG_VRS,
    NotPlain,
    RawFile,
)
from dcmanon.io.rawwrite import COPY_BLOCK
from dcmanon.profiles import Profile

JOINED_PIECE = 64 * 1024
"""Pieces smaller than this are joined before writing (one write instead of hundreds)."""
TRUNCATED = "truncated (the file ends inside an element)"
PREAMBLE = b"\0" * 128 + b"DICM"
ITEM_UNDEFINED = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
ITEM_END = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"

Piece = bytes | memoryview


@dataclass(frozen=True)
class OnDisk:
    """Bytes of the input file copied into the output as they are (never loaded)."""

    offset: int
    length: int


def encode_new(element: RawDataElement, implicit: bool) -> bytes:
    """A new element's bytes, as pydicom writes a raw element."""
    value = bytes(element.value or b"")
    if element.length == UNDEFINED_LENGTH:
        raise NotPlain("a new value of undefined length")
    tag = int(element.tag)
    if implicit:
        return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(value)) + value
    vr = str(element.VR).encode()
    if vr in LONG_VRS:
        return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr, 0, len(value)) + value
    if len(value) > 0xFFFF:
        raise NotPlain("a new value too long for its VR")
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


def sequence_header(tag: int, length: int, implicit: bool, *, undefined: bool) -> bytes:
    """A sequence's header (tag, VR, length), as pydicom writes it."""
    if implicit:
        return struct.pack("<HHL", tag >> 16, tag & 0xFFFF,
                           UNDEFINED_LENGTH if undefined else length)
    return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, b"SQ", 0,
                       UNDEFINED_LENGTH if undefined else length)


def size_of(pieces: list[Piece | OnDisk]) -> int:
    """The length of encoded pieces (none may be left on disk: sequences are in the header)."""
    total = 0
    for piece in pieces:
        if isinstance(piece, OnDisk):
            raise NotPlain("a value left on disk inside a sequence")
        total += len(piece)
    return total


def pad(value: bytes, padding: bytes) -> bytes:
    """A value padded to an even length."""
    return value + padding if len(value) % 2 else value


def meta_element(tag: int, vr: str, value: bytes) -> bytes:
    """A file meta element (always Explicit VR Little Endian)."""
    if vr.encode() in LONG_VRS:
        return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


def write_pieces(pieces: list[Piece | OnDisk], source_path: str, handle: BinaryIO) -> None:
    """Write an anonymized file's pieces; values left on disk are copied from the input at
    ``source_path``.

    Raises
    ------
    InputError
        If the input no longer holds the values left on disk (it was truncated).
    """
    source: BinaryIO | None = None
    small: list[Piece] = []
    try:
        for piece in pieces:
            if not isinstance(piece, OnDisk):
                if len(piece) < JOINED_PIECE:
                    small.append(piece)
                    continue
                handle.write(b"".join(small))
                small.clear()
                handle.write(piece)
                continue
            handle.write(b"".join(small))
            small.clear()
            if source is None:
                source = open(source_path, "rb")  # noqa: SIM115 (closed below)
            handle.flush()
            _copy_range(source, handle, piece, source_path)
        handle.write(b"".join(small))
    finally:
        if source is not None:
            source.close()


def _copy_range(source: BinaryIO, handle: BinaryIO, piece: OnDisk, name: str) -> None:
    """Copy bytes of the input into the output inside the kernel where it can."""
    offset, remaining = piece.offset, piece.length
    # Not supported here (an old kernel, another file system): the rest is copied in blocks.
    with contextlib.suppress(OSError):
        while remaining:
            count = os.copy_file_range(source.fileno(), handle.fileno(), remaining, offset)
            if not count:
                raise InputError(f"{name}: {TRUNCATED}")
            offset += count
            remaining -= count
    source.seek(offset)
    while remaining:
        block = source.read(min(remaining, COPY_BLOCK))
        if not block:
            raise InputError(f"{name}: {TRUNCATED}")
        handle.write(block)
        remaining -= len(block)


def encode_file_meta(raw: RawFile, sop_class: str, sop_instance: str) -> bytes:
    """The file meta the pydicom path writes: what identifies nothing, the SOP UIDs given
    (the dataset's new ones), dcmanon's implementation UID and name."""
    version = raw.meta.get(0x00020001, ("OB", b"\x00\x01"))
    if version[0] != "OB":
        raise NotPlain("unusual file meta version")
    elements = [
        meta_element(0x00020001, "OB", version[1]),
        meta_element(0x00020002, "UI", pad(sop_class.encode(), b"\0")),
        meta_element(0x00020003, "UI", pad(sop_instance.encode(), b"\0")),
        meta_element(0x00020010, "UI", pad(raw.transfer_syntax.encode(), b"\0")),
        meta_element(0x00020012, "UI", pad(IMPLEMENTATION_CLASS_UID.encode(), b"\0")),
        meta_element(0x00020013, "SH", pad(IMPLEMENTATION_VERSION_NAME.encode(), b" ")),
    ]
    body = b"".join(elements)
    return meta_element(0x00020000, "UL", len(body).to_bytes(4, "little")) + body


def first_bytes(pieces: list[Piece | OnDisk]) -> bytes:
    """The first piece of an element's output (its header, for a sequence)."""
    if isinstance(pieces[0], OnDisk):
        raise NotPlain("an element left on disk where a small one was expected")
    return bytes(pieces[0][:12])


def without_orphan_creators(out: list[tuple[int, list[Piece | OnDisk]]]
                             ) -> list[tuple[int, list[Piece | OnDisk]]]:
    """As :func:`dcmanon.header.profile.drop_orphan_creators`."""
    used = {(t >> 16, (t & 0xFFFF) >> 8) for t, _ in out if t >> 16 & 1 and t & 0xFFFF >= 0x1000}
    return [(t, p) for t, p in out
            if not (t >> 16 & 1 and 0x10 <= t & 0xFFFF <= 0xFF) or (t >> 16, t & 0xFFFF) in used]


RECORD_TAGS = (0x00120062, 0x00120063, 0x00120064, 0x00280303)
"""PatientIdentityRemoved, DeidentificationMethod, its code sequence, and
LongitudinalTemporalInformationModified: what :func:`encode_record_elements` may write."""
RECORD_VRS = (b"CS", b"LO", b"SQ", b"CS")


def encode_record_elements(profile: Profile, implicit: bool, charset: RawDataElement | None,
                           composite: bool, undefined: bool) -> list[tuple[int, bytes]]:
    """The de-identification record's elements, encoded by pydicom as its path does."""
    ds = Dataset()
    if charset is not None:
        ds._dict[BaseTag(SPECIFIC_CHARACTER_SET)] = charset
    if composite:
        ds.SOPClassUID = "1.2"
    record_deidentification(ds, profile)
    ds[RECORD_TAGS[2]].is_undefined_length = undefined
    encodings = ds.get("SpecificCharacterSet", "iso8859")
    records = []
    for tag in RECORD_TAGS:
        if tag in ds:
            fp = DicomBytesIO()
            fp.is_little_endian, fp.is_implicit_VR = True, implicit
            write_data_element(fp, ds[tag], encodings)
            records.append((tag, fp.getvalue()))
    return records
