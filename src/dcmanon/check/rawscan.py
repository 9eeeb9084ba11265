"""The bytes of a file as text, pixel data left out: where values hide that no parser shows.

The preamble, OB/UN values, trailing padding, bytes after the end of the dataset and files
that are not DICOM at all are read as Latin-1 text in chunks (memory stays flat whatever the
file size). Pixel data, native or encapsulated, is skipped: its bytes are image samples, and
matching words in them gives only chance hits. Only runs of printable characters are searched
(as ``strings`` does), so that a word never spans binary bytes; a short identifier counts only
in a run long enough to be text.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from dcmanon.dicom.constants import ITEM, SEQUENCE_END, UNDEFINED_LENGTH
from dcmanon.dicom.tags import describe_tag

CHUNK = 8 << 20
OVERLAP = 1024
"""Chunks overlap so that a word across a chunk border is still found."""
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_HEADER = 12
MIN_RUN = 4
"""Shortest run of printable characters searched (that of ``strings``)."""
SHORT_TERM = 5
"""Identifiers shorter than this (initials, three-letter codes) count only in a run of at least
:data:`TEXT_RUN` characters: in shorter runs they turn up by chance in any binary data."""
TEXT_RUN = 8
_PRINTABLE_RUN = re.compile(r"[\x20-\x7e\xa0-\xff]{" + str(MIN_RUN) + ",}")
_ITEM_HEADER = struct.Struct("<HHL")
_DEFLATED = "1.2.840.10008.1.2.1.99"

Span = tuple[int, int, int]
"""(start, end, tag) of an element in the file."""


def element_spans(ds: Dataset, handle: BinaryIO | None = None) -> list[Span]:
    """Where the still-unparsed top-level elements (and file meta) lie in the file.

    An element of undefined length whose value was left on disk (encapsulated pixel data)
    is measured by walking its items in ``handle``.
    """
    spans: list[Span] = []
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    sources = [meta] if meta is not None else []
    if syntax != _DEFLATED:  # positions in a deflated dataset are not positions in the file
        sources.append(ds)
    for source in sources:
        for tag in list(source.keys()):
            raw = source.get_item(tag, keep_deferred=True)
            tell = getattr(raw, "value_tell", None)
            if not isinstance(raw, RawDataElement) or tell is None:
                continue
            length = raw.length
            if length == UNDEFINED_LENGTH:
                if isinstance(raw.value, bytes):
                    length = len(raw.value) + 8  # the sequence delimiter item
                elif handle is not None:
                    end = _items_end(handle, tell)
                    if end is None:
                        continue
                    length = end - tell
                else:
                    continue
            spans.append((max(tell - _HEADER, 0), tell + length, int(tag)))
    return sorted(spans)


def _items_end(handle: BinaryIO, position: int) -> int | None:
    """Where a value of undefined length made of items (fragments) ends: after its sequence
    delimiter. None if the bytes there are not items."""
    while True:
        handle.seek(position)
        head = handle.read(_ITEM_HEADER.size)
        if len(head) < _ITEM_HEADER.size:
            return None
        group, element, length = _ITEM_HEADER.unpack(head)
        tag = group << 16 | element
        if tag == SEQUENCE_END:
            return position + _ITEM_HEADER.size
        if tag != ITEM or length == UNDEFINED_LENGTH:
            return None
        position += _ITEM_HEADER.size + length


def text_runs(text: str) -> Iterator[tuple[int, str]]:
    """The runs of printable characters in ``text`` worth searching: (offset, run)."""
    for match in _PRINTABLE_RUN.finditer(text):
        yield match.start(), match.group()


def raw_texts(path: Path, ds: Dataset | None) -> Iterator[tuple[str, Callable[[int], str]]]:
    """Yield the file's bytes (pixel data excepted) as Latin-1 text, chunk by chunk.

    Each chunk comes with a function naming the place of a character offset in it
    (``byte offset 1234 in (FFFC,FFFC) DataSetTrailingPadding``).
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        spans = element_spans(ds, handle) if ds is not None else []
        skipped = [(start, end) for start, end, tag in spans if tag in PIXEL_TAGS]
        segments: list[tuple[int, int]] = []
        position = 0
        for start, end in skipped:
            if start > position:
                segments.append((position, start))
            position = max(position, end)
        if position < size:
            segments.append((position, size))
        for start, end in segments:
            offset = start
            while offset < end:
                handle.seek(offset)
                data = handle.read(min(CHUNK, end - offset))
                if not data:
                    break
                yield data.decode("latin-1"), _locator(offset, spans)
                if offset + len(data) >= end:
                    break
                offset += max(len(data) - OVERLAP, 1)


def _locator(base: int, spans: list[Span]) -> Callable[[int], str]:
    def locate(index: int) -> str:
        where = base + index
        for start, end, tag in spans:
            if start <= where < end:
                return f"byte offset {where} in {describe_tag(tag)}"
        return f"byte offset {where}"
    return locate
