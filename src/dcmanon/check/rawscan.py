"""The bytes of a file as text, pixel data left out: where values hide that no parser shows.

The preamble, OB/UN values, trailing padding, bytes after the end of the dataset and files
that are not DICOM at all are read as Latin-1 text in chunks (memory stays flat whatever the
file size). Pixel data is skipped: its bytes are image samples, and matching words in them
gives only chance hits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from dcmanon.dicom.constants import UNDEFINED_LENGTH
from dcmanon.dicom.tags import describe_tag

CHUNK = 8 << 20
OVERLAP = 1024
"""Chunks overlap so that a word across a chunk border is still found."""
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_HEADER = 12
_DEFLATED = "1.2.840.10008.1.2.1.99"

Span = tuple[int, int, int]
"""(start, end, tag) of an element in the file."""


def element_spans(ds: Dataset) -> list[Span]:
    """Where the still-unparsed top-level elements (and file meta) lie in the file."""
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
                if not isinstance(raw.value, bytes):
                    continue
                length = len(raw.value) + 8  # the sequence delimiter item
            spans.append((max(tell - _HEADER, 0), tell + length, int(tag)))
    return sorted(spans)


def raw_texts(path: Path, ds: Dataset | None) -> Iterator[tuple[str, Callable[[int], str]]]:
    """Yield the file's bytes (pixel data excepted) as Latin-1 text, chunk by chunk.

    Each chunk comes with a function naming the place of a character offset in it
    (``byte offset 1234 in (FFFC,FFFC) DataSetTrailingPadding``).
    """
    spans = element_spans(ds) if ds is not None else []
    size = path.stat().st_size
    skipped = [(start, end) for start, end, tag in spans if tag in PIXEL_TAGS]
    segments: list[tuple[int, int]] = []
    position = 0
    for start, end in skipped:
        if start > position:
            segments.append((position, start))
        position = max(position, end)
    if position < size:
        segments.append((position, size))
    with path.open("rb") as handle:
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
