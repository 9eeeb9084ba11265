"""Walking a dataset without converting its elements: pydicom kept quiet, private creators
read from their reservations, every element's location at every depth."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dcmanon.dicom.elements import element_vr, file_encoding
from dcmanon.dicom.tags import ElementPath


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings about values it finds odd: we report problems ourselves."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def block_of(tag: int) -> int:
    """The tag of the private creator that reserves a private data element's block (or -1)."""
    group, element = tag >> 16, tag & 0xFFFF
    if not group & 1 or element < 0x1000:
        return -1
    return (group << 16) | (element >> 8)


def _creator_text(element: DataElement | RawDataElement) -> str | None:
    value = element.value
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("latin-1")
    if isinstance(value, MultiValue | list):
        value = "\\".join(str(v) for v in value)
    if not isinstance(value, str):
        return None
    text = value.strip(" \0")
    return text or None


def private_creators(ds: Dataset) -> dict[int, str]:
    """The private creators reserved in ``ds``, by the tag of their reservation.

    Values are read without converting the elements (so nothing about them changes).
    """
    creators: dict[int, str] = {}
    for tag in list(ds.keys()):  # iterating a Dataset would convert every element
        group, element = tag >> 16, tag & 0xFFFF
        if group & 1 and 0x10 <= element <= 0xFF:
            text = _creator_text(ds.get_item(tag))
            if text is not None:
                creators[int(tag)] = text
    return creators


def private_creator(ds: Dataset, tag: int) -> str | None:
    """The private creator of a private data element, read from its block's reservation."""
    block = block_of(tag)
    if block < 0 or block not in ds:
        return None
    return _creator_text(ds.get_item(block))


def iter_refs(ds: Dataset, path: ElementPath = (), implicit: bool | None = None
              ) -> Iterator[tuple[ElementPath, int, str]]:
    """Yield (path, tag, VR) of every element at every depth (for reports and tests)."""
    with quiet_pydicom():
        if implicit is None:
            implicit = file_encoding(ds).implicit
        for tag in list(ds.keys()):
            vr = element_vr(ds.get_item(tag), int(tag), implicit)
            yield path, int(tag), vr
            if vr == "SQ":
                for index, item in enumerate(ds[tag].value or ()):
                    yield from iter_refs(item, (*path, (int(tag), index)), implicit)
