"""Writing a dataset whose large values are still in its input file.

:func:`write_streamed` writes what ``ds.save_as`` would write, byte for byte, but copies the
deferred elements (header and value) from the input file in blocks, and writes the elements
the rules left untouched (still raw bytes in the file's own encoding) straight from those
bytes, without pydicom's per-element machinery. Everything else (changed elements, sequences)
is written by pydicom. A value may also be *generated* while it is written
(:class:`ValueSource`: e.g. pixel data decoded a frame at a time), never held whole.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_data_element, write_dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from dcmanon.dicom.constants import ITEM, PIXEL_DATA, SEQUENCE_END, UNDEFINED_LENGTH
from dcmanon.errors import InputError, OutputError
from dcmanon.io.streaming import deferred_element

COPY_BLOCK = 1 << 20


@dataclass(frozen=True)
class ValuePatch:
    """A change made to a deferred value while it is copied: ``apply(offset, block)`` edits a
    block of the value in place; blocks hold whole ``unit``s (frames), ``offset`` is where the
    block starts in the value. Memory stays at a block whatever the size of the value."""

    unit: int
    apply: Callable[[int, memoryview], None]


@dataclass(frozen=True)
class ValueSource:
    """A value generated while it is written: ``chunks()`` yields its bytes (already in the
    output's encoding) in pieces, ``length`` of them in all (even, as DICOM wants). The
    element's tag and VR are those of the element the dataset holds in its place (whose value
    is not written). Memory stays at a piece whatever the size of the value.

    Raises
    ------
    OutputError
        When written, if the pieces do not add up to ``length``.
    """

    length: int
    chunks: Callable[[], Iterable[bytes | bytearray | memoryview]]


Patches = Mapping[int, ValuePatch]
Sources = Mapping[int, ValueSource]
_TRUNCATED = "truncated (the file ends inside an element)"


def _segments(ds: Dataset, sources: Sources
              ) -> Iterator[list[int] | RawDataElement | tuple[int, ValueSource]]:
    """The dataset in tag order: runs of ordinary elements, and deferred and generated
    elements alone."""
    run: list[int] = []
    for tag in sorted(ds.keys()):
        raw = deferred_element(ds, tag)
        if raw is None and int(tag) not in sources:
            run.append(int(tag))
            continue
        if run:
            yield run
            run = []
        yield raw if raw is not None and int(tag) not in sources else (int(tag),
                                                                        sources[int(tag)])
    if run:
        yield run


def write_streamed(ds: FileDataset, handle: BinaryIO, *, enforce: bool,
                   patches: Patches | None = None, sources: Sources | None = None) -> None:
    """Write ``ds`` to ``handle``: the bytes ``ds.save_as`` would write.

    Deferred values are copied from the input file (never held in memory), changed on the way
    by ``patches`` (by tag; e.g. boxes blanked in native pixel data); untouched raw elements
    are written from their bytes. The values of ``sources`` (by top-level tag) are generated
    while they are written, in place of the value of the element ``ds`` holds there (its tag
    and VR are written, with the source's length).

    Raises
    ------
    InputError
        If the input file no longer holds the deferred elements where it did.
    OutputError
        If a source gives more or fewer bytes than its length.
    """
    sources = sources or {}
    syntax = _syntax(ds)
    encoding = None if syntax is None else (bool(syntax.is_implicit_VR),
                                            bool(syntax.is_little_endian))
    if syntax is None or encoding != tuple(ds.original_encoding) or (
            ds.original_character_set != ds._character_set):
        # pydicom converts every element to re-encode them: let it, but stream the bulk.
        if sources or any(deferred_element(ds, tag) for tag in list(ds.keys())):
            _write_segments(ds, handle, enforce, patches or {}, sources)
        else:
            if syntax is not None and encoding != tuple(ds.original_encoding):
                # Elements read as implicit VR have no VR until converted (at every depth).
                for _ in ds.iterall():
                    pass
            ds.save_as(handle, enforce_file_format=enforce)
        return
    implicit, little = bool(syntax.is_implicit_VR), bool(syntax.is_little_endian)
    _subset(ds, [], head=True).save_as(handle, enforce_file_format=enforce)  # preamble, meta
    fp = DicomFileLike(handle)
    fp.is_implicit_VR, fp.is_little_endian = implicit, little
    charset = ds.get("SpecificCharacterSet", "iso8859")
    endian = "<" if little else ">"
    source: io.BufferedReader | None = None
    try:
        for tag in sorted(ds.keys()):
            if tag.element == 0 and tag.group > 6:
                continue  # retired group lengths are never written (as pydicom)
            element = ds.get_item(tag, keep_deferred=True)
            if int(tag) in sources:
                write_generated(handle, int(tag), str(element.VR), sources[int(tag)],
                                implicit, little)
                continue
            if isinstance(element, RawDataElement) and element.value is None \
                    and not element.length:
                # An empty value, which pydicom reads as None (writing None fails).
                element = element._replace(value=b"")
            if tag == PIXEL_DATA and not deferred_element(ds, tag):
                # As dcmwrite: encapsulated pixel data has an undefined length.
                pixels = ds[tag]
                pixels.is_undefined_length = syntax.is_compressed
                write_data_element(fp, pixels, charset)
            elif not isinstance(element, RawDataElement):
                write_data_element(fp, element, charset)
            elif element.value is None and element.length:
                if source is None:
                    source = open(str(ds.filename), "rb")  # noqa: SIM115 (closed below)
                copy_element(source, element, handle, str(ds.filename),
                             (patches or {}).get(int(tag)))
            elif (isinstance(element.value, bytes) and element.length != UNDEFINED_LENGTH
                  and element.is_implicit_VR == implicit
                  and element.is_little_endian == little):
                handle.write(_raw_header(element, implicit, endian))
                handle.write(element.value)
            else:
                write_data_element(fp, element, charset)
    finally:
        if source is not None:
            source.close()


def _syntax(ds: FileDataset) -> UID | None:
    """The transfer syntax pydicom will write with, when it is a public, plain one."""
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not syntax:
        return None
    uid = UID(str(syntax))
    if uid.is_private or not uid.is_transfer_syntax or uid.is_deflated:
        return None
    return uid


def _raw_header(element: RawDataElement, implicit: bool, endian: str) -> bytes:
    """Tag, VR and length of a raw element, as pydicom writes them."""
    tag, length = int(element.tag), len(element.value or b"")
    if implicit:
        return struct.pack(f"{endian}HHL", tag >> 16, tag & 0xFFFF, length)
    vr = str(element.VR)
    if vr in EXPLICIT_VR_LENGTH_32:
        return struct.pack(f"{endian}HH2sHL", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    return struct.pack(f"{endian}HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _subset(ds: FileDataset, tags: list[int], *, head: bool) -> Dataset:
    """A dataset holding some of ``ds``'s elements, encoded exactly as ``ds`` would be."""
    part: Dataset
    implicit, little = ds.original_encoding
    if head:
        part = FileDataset("", Dataset(), preamble=ds.preamble, file_meta=ds.file_meta,
                           is_implicit_VR=bool(implicit), is_little_endian=bool(little))
    else:
        part = Dataset()
        part._parent_encoding = ds._character_set
    part.set_original_encoding(implicit, little, ds.original_character_set)
    for tag in tags:
        part._dict[BaseTag(tag)] = ds.get_item(tag, keep_deferred=True)
    return part


def _write_segments(ds: FileDataset, handle: BinaryIO, enforce: bool,
                    patches: Patches, sources: Sources) -> None:
    """Runs of ordinary elements by pydicom, deferred elements copied, generated ones
    generated (any encoding)."""
    source = str(ds.filename)
    charset = ds.get("SpecificCharacterSet", "iso8859")
    first = True
    fp: DicomFileLike | None = None
    with open(source, "rb") as src:
        for segment in _segments(ds, sources):
            if first:
                head = segment if isinstance(segment, list) else []
                _subset(ds, head, head=True).save_as(handle, enforce_file_format=enforce)
                fp = DicomFileLike(handle)
                implicit, little = ds.original_encoding
                fp.is_implicit_VR, fp.is_little_endian = bool(implicit), bool(little)
                first = False
                if isinstance(segment, list):
                    continue
            assert fp is not None
            if isinstance(segment, list):
                write_dataset(fp, _subset(ds, segment, head=False), charset)
            elif isinstance(segment, RawDataElement):  # (a named tuple: tested first)
                copy_element(src, segment, handle, source, patches.get(int(segment.tag)))
            else:
                tag, generated = segment
                write_generated(handle, tag, str(ds.get_item(tag, keep_deferred=True).VR),
                                generated, fp.is_implicit_VR, fp.is_little_endian)


def write_generated(out: BinaryIO, tag: int, vr: str, source: ValueSource, implicit: bool,
                    little: bool) -> None:
    """Write an element whose value ``source`` generates: its header, then its pieces.

    Raises
    ------
    OutputError
        If the pieces do not add up to the source's length (the output is then incomplete:
        the caller discards it).
    """
    endian = "<" if little else ">"
    if source.length % 2 or source.length >= UNDEFINED_LENGTH:
        raise OutputError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) a generated value must have "
                          f"an even, defined length, not {source.length}")
    if not implicit and vr not in EXPLICIT_VR_LENGTH_32 and source.length > 0xFFFF:
        raise OutputError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) a value of VR {vr} cannot "
                          f"hold {source.length} bytes")
    if implicit:
        out.write(struct.pack(f"{endian}HHL", tag >> 16, tag & 0xFFFF, source.length))
    elif vr in EXPLICIT_VR_LENGTH_32:
        out.write(struct.pack(f"{endian}HH2sHL", tag >> 16, tag & 0xFFFF, vr.encode(), 0,
                              source.length))
    else:
        out.write(struct.pack(f"{endian}HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(),
                              source.length))
    written = 0
    for piece in source.chunks():
        written += len(piece)
        if written > source.length:
            break
        out.write(piece)
    if written != source.length:
        raise OutputError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) the generated value gave "
                          f"{'more' if written > source.length else 'fewer'} bytes than its "
                          f"length ({source.length})")


def copy_element(src: io.BufferedReader, raw: RawDataElement, out: BinaryIO, name: str,
                 patch: ValuePatch | None = None) -> None:
    """Copy one element (header and value) from the input to the output, in blocks (changed
    by ``patch`` on the way, when given and the value has a defined length)."""
    explicit_long = not raw.is_implicit_VR and raw.VR in EXPLICIT_VR_LENGTH_32
    header_length = 12 if explicit_long else 8
    src.seek(raw.value_tell - header_length)
    header = src.read(header_length)
    endian = "<" if raw.is_little_endian else ">"
    if len(header) != header_length:
        raise InputError(f"{name}: {_TRUNCATED}")
    group, element = struct.unpack(f"{endian}HH", header[:4])
    if (group << 16 | element) != raw.tag:
        raise InputError(f"{name}: changed while it was being read")
    out.write(header)
    if raw.length != UNDEFINED_LENGTH:
        _copy(src, out, raw.length, name, patch)
        return
    while True:  # encapsulated: items, then the sequence delimiter
        item = src.read(8)
        if len(item) != 8:
            raise InputError(f"{name}: {_TRUNCATED}")
        out.write(item)
        group, element, length = struct.unpack(f"{endian}HHL", item)
        tag = group << 16 | element
        if tag == SEQUENCE_END:
            return
        if tag != ITEM or length == UNDEFINED_LENGTH:
            raise InputError(f"{name}: not a readable DICOM file, corrupt encapsulated data")
        _copy(src, out, length, name)


def _copy(src: io.BufferedReader, out: BinaryIO, length: int, name: str,
          patch: ValuePatch | None = None) -> None:
    block = COPY_BLOCK if patch is None else max(1, COPY_BLOCK // patch.unit) * patch.unit
    buffer = bytearray(min(block, max(length, 1)))
    view = memoryview(buffer)
    remaining = length
    while remaining:
        wanted = min(remaining, len(buffer))
        count = 0
        while count < wanted:  # whole blocks: a patch sees whole units
            read = src.readinto(view[count:wanted])
            if not read:
                raise InputError(f"{name}: {_TRUNCATED}")
            count += read
        if patch is not None:
            patch.apply(length - remaining, view[:count])
        out.write(view[:count])
        remaining -= count
