"""Between pydicom elements and :class:`ElementData`: decode what a method needs, encode back.

Rewritten elements are stored as raw bytes in the file's own encoding, so pydicom writes them
as they are and never second-guesses a value the configuration asked for (the reference
writes, for example, a hash into a DA element unless output validation is on).
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom.charset import convert_encodings, decode_bytes, encode_string
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from dcmanon.methods.base import (
    NUMBER_FORMATS,
    SINGLE_VALUED_STRING_VRS,
    STRING_VRS,
    ElementData,
    pack_numbers,
    unpack_numbers,
)

UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
_ITEM = b"\xfe\xff\x00\xe0"
_DELIMITERS = {0x5C, 0x3D, 0x5E}  # backslash, and PN's "=" and "^" for ISO 2022 switching


def element_vr(element: DataElement | RawDataElement, tag: int) -> str:
    """The element's VR: explicit, else the dictionary's (first choice when ambiguous)."""
    vr = element.VR
    if vr is None or " or " in vr:
        if Tag(tag).is_private:
            return "UN" if vr is None else vr.split(" or ")[0]
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            return "UN"
        if tag == PIXEL_DATA:
            return "OW"
        vr = vr.split(" or ")[0]
    return str(vr)


def _encodings(root: Dataset) -> list[str]:
    charset = root.get("SpecificCharacterSet", "ISO_IR 6")
    return list(convert_encodings(charset))


def _texts_from_value(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, bytes):
        return [value.decode("latin-1")]
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def decode_element(element: DataElement | RawDataElement, vr: str, root: Dataset) -> ElementData:
    """Decode an element into the form methods work on."""
    tag = int(element.tag)
    value = element.value
    length = getattr(element, "length", None)
    undefined = length == UNDEFINED_LENGTH or getattr(element, "is_undefined_length", False)
    if isinstance(value, bytes) and undefined and vr in ("OB", "OW", "UN"):
        little = getattr(element, "is_little_endian", True)
        endian = "<" if little else ">"
        return ElementData(tag, vr, fragments=tuple(generate_fragments(value, endianness=endian)))
    if vr in STRING_VRS:
        if isinstance(element, RawDataElement):
            text = decode_bytes(value or b"", _encodings(root), _DELIMITERS) if value else ""
            texts = [text] if text else []
        else:
            texts = _texts_from_value(value)
            if vr in SINGLE_VALUED_STRING_VRS:
                texts = ["\\".join(texts)] if texts else []
            else:
                texts = "\\".join(texts).split("\\") if texts else []
        if isinstance(element, RawDataElement) and texts:
            text = texts[0].rstrip("\0 " if vr == "UI" else " \0")
            texts = [text] if vr in SINGLE_VALUED_STRING_VRS else text.split("\\")
            if texts == [""]:
                texts = []
        return ElementData(tag, vr, texts=tuple(texts))
    if vr in NUMBER_FORMATS:
        if isinstance(value, bytes | bytearray) or value is None:
            little = getattr(element, "is_little_endian", True)
            return ElementData(tag, vr, numbers=unpack_numbers(vr, bytes(value or b""), little))
        numbers = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
        return ElementData(tag, vr, numbers=tuple(numbers))
    if vr == "AT" and not isinstance(value, bytes | type(None)):
        tags = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
        data = b"".join(int(t >> 16).to_bytes(2, "little") + int(t & 0xFFFF).to_bytes(2, "little")
                        for t in tags)
        return ElementData(tag, vr, data=data)
    return ElementData(tag, vr, data=bytes(value or b""))


def _pad(data: bytes, vr: str) -> bytes:
    if len(data) % 2:
        data += b"\0" if vr in ("UI", "OB", "UN") else b" "
    return data


def encode_element(data: ElementData, original: DataElement | RawDataElement,
                   root: Dataset) -> RawDataElement:
    """Encode new data as a raw element in the original element's byte order and VR form.

    Raises
    ------
    ValueError
        If a text cannot be encoded in the dataset's character set.
    """
    little = getattr(original, "is_little_endian", True)
    implicit = getattr(original, "is_implicit_VR", False)
    offset = getattr(original, "value_tell", 0) or 0
    length: int
    if data.fragments is not None:
        body = _ITEM + b"\0\0\0\0"  # empty basic offset table
        for fragment in data.fragments:
            padded = _pad(fragment, "OB")
            body += _ITEM + len(padded).to_bytes(4, "little") + padded
        value, length = body, UNDEFINED_LENGTH
    elif data.texts is not None:
        joined = "\\".join(data.texts)
        try:
            encoded = encode_string(joined, _encodings(root)) if joined else b""
        except (UnicodeEncodeError, LookupError):
            raise ValueError("new value cannot be encoded in the dataset's character set") from None
        value = _pad(encoded, data.vr)
        length = len(value)
    elif data.numbers is not None:
        value = pack_numbers(data.vr, list(data.numbers))
        if not little:
            value = _swap(value, data.vr)
        length = len(value)
    else:
        value = _pad(data.data or b"", data.vr)
        length = len(value)
    vr = None if implicit and data.vr == element_vr(original, data.tag) else data.vr
    return RawDataElement(Tag(data.tag), vr, length, value, offset, implicit, little)


def _swap(value: bytes, vr: str) -> bytes:
    fmt = NUMBER_FORMATS[vr]
    count = len(value) // struct.calcsize(fmt)
    return struct.pack(f">{count}{fmt}", *struct.unpack(f"<{count}{fmt}", value))
