"""Where each element of an encoded dataset lies, nothing decoded (for the fast path).

:func:`parse_file` reads a Part 10 file in Little Endian (explicit or implicit VR) into a
tree of :class:`RawElement` spans: tag, VR as the rules see it, where the header and the value
lie, and for sequences their items. Values are sliced from the buffer only when an element
changes. Large values beyond the buffer's end (pixel data) are never read: their position is
enough to copy them.

Anything unusual raises :class:`NotPlain`: big endian or deflated data, a standard element
written as UN, elements out of order, odd lengths, a value that runs past its parent or the
file, trailing bytes. Those files take pydicom's path, which either reads them the way pydicom
does or explains what is wrong. The one error this module reports itself is sequences nested
past the limit (:mod:`dcmanon.dicom.nesting`): pydicom's reader could not follow them.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from dcmanon.dicom.constants import (
    BULK_VRS,
    ITEM,
    ITEM_END,
    MAX_NESTING,
    PIXEL_DATA,
    SEQUENCE_END,
    SPECIFIC_CHARACTER_SET,
    UNDEFINED_LENGTH,
)
from dcmanon.dicom.elements import element_vr
from dcmanon.dicom.nesting import nesting_problem
from dcmanon.errors import InputError

HEAD_BYTES = 64 * 1024
"""How much of a file is read at first. A binary value that starts within it and runs to the
end of the file (pixel data) is left on disk: it is copied, never read. A header longer than
this is read again, up to :data:`MAX_HEAD_BYTES`; longer ones take pydicom's path."""
MAX_HEAD_BYTES = 16 << 20
LONG_VRS = frozenset(vr.encode() for vr in EXPLICIT_VR_LENGTH_32)
_IMPLICIT_LE = "1.2.840.10008.1.2"
_TAG = struct.Struct("<HH")
_TAG_LENGTH = struct.Struct("<LL")
"""An element header's first 8 bytes: the tag (group in the low half) and, in implicit VR
data, the length (in explicit VR data: the VR, and the length or reserved bytes)."""
_LENGTH = struct.Struct("<L")
LONG_VR_NAMES = frozenset(EXPLICIT_VR_LENGTH_32)
_VR_BY_CODE = {int.from_bytes(vr.encode(), "little"): (vr, vr in LONG_VR_NAMES) for vr in (
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    "UN UR US UT UV").split()}
"""The VRs of PS3.5 by their two bytes read as a little endian number, and whether their
length takes 4 bytes (anything else in an explicit VR header is not plain)."""


class NotPlain(Exception):
    """The file needs pydicom's reader; not an error in itself."""


@dataclass(slots=True)
class RawItem:
    """One item of a sequence: its elements, and whether its length was undefined."""

    undefined: bool
    elements: list[RawElement]


@dataclass(slots=True)
class RawElement:
    """One encoded element: its tag, VR and where it lies in the buffer (or the file)."""

    tag: int
    vr: str
    """The VR the rules see (:func:`dcmanon.dicom.elements.element_vr`)."""
    written_vr: str | None
    """The VR written in the file (None in implicit VR data)."""
    start: int
    """Offset of the element's first byte (its tag)."""
    value_start: int
    length: int
    """The value's length as written (:data:`UNDEFINED_LENGTH` for undefined lengths)."""
    end: int
    """Offset just after the element (sequence delimiter included)."""
    items: list[RawItem] | None = None
    on_disk: bool = False
    """The value lies beyond the buffer: copy it from the file."""

    def raw(self, buffer: bytes, implicit: bool, value: bytes | None = None) -> RawDataElement:
        """The element as pydicom's reader would give it (its value sliced from ``buffer``)."""
        if value is None:
            stop = self.end if self.length == UNDEFINED_LENGTH else self.value_start + self.length
            if self.length == UNDEFINED_LENGTH and self.tag == PIXEL_DATA:
                stop -= 8  # pydicom's value stops before the sequence delimiter
            value = buffer[self.value_start:stop]
        length = self.length if self.length == UNDEFINED_LENGTH else len(value)
        return RawDataElement(BaseTag(self.tag), self.written_vr, length, value,
                              self.value_start, implicit, True)


@dataclass(slots=True)
class RawFile:
    """A parsed Part 10 file: its file meta values and its dataset's elements."""

    path: str
    size: int
    buffer: bytes
    implicit: bool
    transfer_syntax: str
    meta: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    """File meta elements: tag → (VR, value bytes)."""
    elements: list[RawElement] = field(default_factory=list)
    nested_charset: bool = False
    """Whether an item declares its own Specific Character Set."""


def parse_file(path: str, *, max_nesting: int = MAX_NESTING) -> RawFile:
    """Parse a Part 10 file's header into element spans.

    Raises
    ------
    NotPlain
        If the file is not plain Little Endian Part 10 data this parser reads exactly as
        pydicom does (the caller then uses pydicom). Also for unreadable files: pydicom's
        path reports those.
    InputError
        If its sequences nest deeper than ``max_nesting`` levels (naming the file and the
        sequence where the limit is passed).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        raise NotPlain("cannot open") from None
    try:
        info = os.fstat(fd)
        if not (info.st_mode & 0o170000 == 0o100000):
            raise NotPlain("not a regular file")
        buffer = os.read(fd, min(info.st_size, HEAD_BYTES))
        try:
            return _parse(path, buffer, info.st_size, max_nesting)
        except NotPlain:
            if len(buffer) == info.st_size or len(buffer) >= MAX_HEAD_BYTES:
                raise
        # The header is longer than the first read (large private data, long sequences).
        buffer += os.read(fd, min(info.st_size, MAX_HEAD_BYTES) - len(buffer))
        return _parse(path, buffer, info.st_size, max_nesting)
    finally:
        os.close(fd)


def _parse(path: str, buffer: bytes, size: int, max_nesting: int) -> RawFile:
    if len(buffer) < 132 or buffer[128:132] != b"DICM":
        raise NotPlain("no Part 10 preamble")
    meta, position = _parse_meta(buffer, 132)
    syntax = _transfer_syntax(meta)
    raw = RawFile(path, size, buffer, syntax == _IMPLICIT_LE, syntax, meta)
    parser = _Parser(path, buffer, raw.implicit, size, max_nesting)
    raw.elements = parser.dataset(position, len(buffer), top=True)
    if not raw.elements:
        raise NotPlain("no data elements")
    raw.nested_charset = parser.nested_charset
    return raw


def _parse_meta(buffer: bytes, position: int) -> tuple[dict[int, tuple[str, bytes]], int]:
    meta: dict[int, tuple[str, bytes]] = {}
    while position + 8 <= len(buffer):
        group, element = _TAG.unpack_from(buffer, position)
        if group != 2:
            break
        vr = buffer[position + 4:position + 6]
        if vr in LONG_VRS:
            if position + 12 > len(buffer):
                raise NotPlain("truncated file meta")
            length = int.from_bytes(buffer[position + 8:position + 12], "little")
            start = position + 12
        else:
            length = int.from_bytes(buffer[position + 6:position + 8], "little")
            start = position + 8
        if length == UNDEFINED_LENGTH or start + length > len(buffer) or not vr.isalpha():
            raise NotPlain("unusual file meta")
        meta[group << 16 | element] = (vr.decode(), buffer[start:start + length])
        position = start + length
    return meta, position


@lru_cache(maxsize=64)
def _plain_syntax(syntax: str) -> bool:
    if syntax == _IMPLICIT_LE:
        return True
    uid = UID(syntax)
    try:
        return (uid.is_transfer_syntax and not uid.is_private and uid.is_little_endian
                and not uid.is_implicit_VR and not uid.is_deflated)
    except ValueError:
        return False


def _transfer_syntax(meta: dict[int, tuple[str, bytes]]) -> str:
    vr, value = meta.get(0x00020010, ("", b""))
    syntax = value.decode("latin-1").rstrip("\0 ")
    if vr != "UI" or not syntax or not _plain_syntax(syntax):
        raise NotPlain("transfer syntax not plain Little Endian")
    return syntax


@lru_cache(maxsize=4096)
def _implicit_vr(tag: int, undefined: bool) -> str:
    length = UNDEFINED_LENGTH if undefined else 0
    probe = RawDataElement(Tag(tag), None, length, None, 0, True, True)
    return element_vr(probe, tag, True)


class _Parser:
    """Reads elements from one buffer; raises :class:`NotPlain` on anything unusual."""

    def __init__(self, path: str, buffer: bytes, implicit: bool, file_size: int,
                 max_nesting: int) -> None:
        self.path = path
        self.max_nesting = max_nesting
        self.depth = 0
        """How many sequences enclose the one being read (itself included)."""
        self.buffer = buffer
        self.implicit = implicit
        self.file_size = file_size
        self.item_end = 0
        """Where the last item of undefined length ended (after its delimiter)."""
        self.nested_charset = False
        """Whether an item declares its own Specific Character Set."""

    def dataset(self, position: int, stop: int, *, top: bool = False,
                until_item_end: bool = False) -> list[RawElement]:
        """The elements from ``position`` to ``stop`` (or to an item delimiter)."""
        buffer, implicit = self.buffer, self.implicit
        elements: list[RawElement] = []
        previous = -1
        while True:
            if position == stop and not until_item_end:
                if top and stop != self.file_size:
                    raise NotPlain("the file goes on past what was read")
                return elements
            if position + 8 > stop:
                raise NotPlain("truncated element header")
            tag, length = _TAG_LENGTH.unpack_from(buffer, position)
            tag = (tag & 0xFFFF) << 16 | tag >> 16  # (group, element) as one number
            group = tag >> 16
            if tag == ITEM_END and until_item_end:
                if length:
                    raise NotPlain("unusual item delimiter")
                self.item_end = position + 8
                return elements
            if tag <= previous or group in (0, 2, 0xFFFE):
                raise NotPlain("element out of order or out of place")
            previous = tag
            if tag == SPECIFIC_CHARACTER_SET and not top:
                self.nested_charset = True
            if implicit:
                written: str | None = None
                vr = _implicit_vr(tag, length == UNDEFINED_LENGTH)
                value_start = position + 8
            else:
                known = _VR_BY_CODE.get(length & 0xFFFF)
                if known is None:
                    raise NotPlain("unknown VR")
                written = vr = known[0]
                if known[1]:
                    if position + 12 > stop or length >> 16:
                        raise NotPlain("unusual long VR header")
                    length = _LENGTH.unpack_from(buffer, position + 8)[0]
                    value_start = position + 12
                else:
                    length >>= 16
                    value_start = position + 8
                if vr == "UN" and not group & 1:
                    raise NotPlain("standard element written as UN")
            element = RawElement(tag, vr, written, position, value_start, length, 0)
            if vr == "SQ":
                self._sequence(element, stop)
            elif length == UNDEFINED_LENGTH:
                if tag != PIXEL_DATA or not top:
                    raise NotPlain("undefined length outside sequences and pixel data")
                element.end = self._fragments(value_start, stop)
            else:
                if length % 2:
                    raise NotPlain("odd value length")
                element.end = value_start + length
                if element.end > stop:
                    if not (top and stop == len(buffer) and vr in BULK_VRS
                            and element.end <= self.file_size):
                        raise NotPlain("value runs past its end")
                    element.on_disk = True
                    if element.end != self.file_size:
                        raise NotPlain("elements follow a value left on disk")
                    elements.append(element)
                    return elements
            elements.append(element)
            position = element.end

    def _sequence(self, element: RawElement, stop: int) -> None:
        self.depth += 1
        if self.depth > self.max_nesting:
            raise InputError(f"{self.path}: {nesting_problem(element.tag, self.max_nesting)}")
        self._items(element, stop)
        self.depth -= 1

    def _items(self, element: RawElement, stop: int) -> None:
        buffer = self.buffer
        items: list[RawItem] = []
        position = element.value_start
        end = stop if element.length == UNDEFINED_LENGTH else position + element.length
        if end > stop:
            raise NotPlain("sequence runs past its end")
        while True:
            if element.length != UNDEFINED_LENGTH and position == end:
                break
            if position + 8 > end:
                raise NotPlain("truncated sequence")
            group, number = _TAG.unpack_from(buffer, position)
            tag = group << 16 | number
            length = int.from_bytes(buffer[position + 4:position + 8], "little")
            if tag == SEQUENCE_END and element.length == UNDEFINED_LENGTH:
                if length:
                    raise NotPlain("unusual sequence delimiter")
                position += 8
                break
            if tag != ITEM:
                raise NotPlain("not an item inside a sequence")
            if length == UNDEFINED_LENGTH:
                children = self.dataset(position + 8, end, until_item_end=True)
                position = self.item_end
            else:
                if position + 8 + length > end:
                    raise NotPlain("item runs past its sequence")
                children = self.dataset(position + 8, position + 8 + length)
                position += 8 + length
            items.append(RawItem(length == UNDEFINED_LENGTH, children))
        element.items = items
        element.end = position

    def _fragments(self, position: int, stop: int) -> int:
        """The end of encapsulated pixel data (after its sequence delimiter)."""
        buffer = self.buffer
        while True:
            if position + 8 > stop:
                raise NotPlain("encapsulated data runs past what was read")
            group, number = _TAG.unpack_from(buffer, position)
            tag = group << 16 | number
            length = int.from_bytes(buffer[position + 4:position + 8], "little")
            if tag == SEQUENCE_END:
                if length:
                    raise NotPlain("unusual sequence delimiter")
                return position + 8
            if tag != ITEM or length == UNDEFINED_LENGTH:
                raise NotPlain("corrupt encapsulated data")
            position += 8 + length


def value_of(raw: RawFile, element: RawElement) -> bytes:
    """The bytes of an element's value."""
    return raw.buffer[element.value_start:element.value_start + element.length]


def creators_at(buffer: bytes, elements: list[RawElement]) -> dict[int, str]:
    """The private creators reserved at one level, by the tag of their reservation."""
    creators: dict[int, str] = {}
    for element in elements:
        tag = element.tag
        if tag >> 16 & 1 and 0x10 <= tag & 0xFFFF <= 0xFF and not element.items:
            text = buffer[element.value_start:element.value_start + element.length].decode(
                "latin-1").strip(" \0")
            if text:
                creators[tag] = text
    return creators


_COMPRESSED: dict[str, bool] = {}


def is_compressed(syntax: str) -> bool:
    """Whether a transfer syntax encapsulates its pixel data (cached: asked per file)."""
    known = _COMPRESSED.get(syntax)
    if known is None:
        known = _COMPRESSED[syntax] = bool(UID(syntax).is_compressed)
    return known


def dataset_of(output: dict[int, RawDataElement | None], tags: Iterable[int],
                implicit: bool) -> Dataset:
    """A dataset of the output elements ``tags`` (with the character set), as pydicom reads
    them."""
    ds = Dataset()
    charset = output.get(SPECIFIC_CHARACTER_SET)
    if charset is not None:
        ds._dict[BaseTag(SPECIFIC_CHARACTER_SET)] = charset
    for tag in tags:
        element = output.get(tag)
        if element is not None:
            ds._dict[BaseTag(tag)] = element
    ds.set_original_encoding(implicit, True, ds._character_set)
    return ds


def bytes_of(element: RawDataElement | None) -> bytes | None:
    """The value bytes of an output element (None if it is absent)."""
    return None if element is None else bytes(element.value or b"")


def uid_text(element: RawDataElement | None) -> str:
    """The text of a UI output element, padding stripped (empty if absent)."""
    if element is None or not element.value:
        return ""
    return bytes(element.value).decode("latin-1").rstrip("\0 ")
