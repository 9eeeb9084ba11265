"""Between pydicom elements and :class:`ElementData`: decode what a method needs, encode back.

Rewritten elements are stored as raw bytes in the file's own encoding, so pydicom writes them
as they are and never second-guesses a value the configuration asked for (the reference
writes, for example, a hash into a DA element unless output validation is on).

Whether an element was already converted by pydicom (because something read its value) or is
still raw must not change what a rule sees: the VR and the value are derived from the file's
encoding (:class:`Encoding`) the same way in both cases.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from pydicom.charset import convert_encodings, decode_bytes, encode_string
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import UID

from dcmanon.dicom.constants import PIXEL_DATA, UNDEFINED_LENGTH
from dcmanon.dicom.values import (
    NUMBER_FORMATS,
    SINGLE_VALUED_STRING_VRS,
    STRING_VRS,
    ElementData,
    pack_numbers,
    unpack_numbers,
)

_ITEM = b"\xfe\xff\x00\xe0"
_PN_DELIMITERS = {0x5C, 0x3D, 0x5E}  # backslash, and PN's "=" and "^" for ISO 2022 switching
_DELIMITERS = {0x5C}
_TEXT_DELIMITERS = {0x0D, 0x0A, 0x09, 0x0C}  # LT, ST, UT: line breaks reset ISO 2022


@dataclass(frozen=True)
class Encoding:
    """How a dataset's values are encoded: VR form, byte order and character sets."""

    implicit: bool = False
    little: bool = True
    charsets: tuple[str, ...] = ("iso8859",)

    def for_item(self, item: Dataset) -> Encoding:
        """The encoding inside a sequence item (which may declare its own character set)."""
        if "SpecificCharacterSet" not in item:
            return self
        return Encoding(self.implicit, self.little, character_sets(item))


def character_sets(ds: Dataset) -> tuple[str, ...]:
    """Python codecs of the dataset's Specific Character Set (default repertoire if absent)."""
    charset = ds.get("SpecificCharacterSet", "ISO_IR 6")
    value: Any = charset if isinstance(charset, str | list | MultiValue) else "ISO_IR 6"
    if isinstance(value, MultiValue | list):
        value = [str(v) for v in value] or "ISO_IR 6"
    return tuple(convert_encodings(value or "ISO_IR 6"))


def file_encoding(ds: Dataset) -> Encoding:
    """The encoding ``ds`` was read with (Explicit VR Little Endian for a dataset built in memory).

    The character sets are those of ``ds`` as it is now: capture them before changing it.
    """
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None or little is None:
        meta = getattr(ds, "file_meta", None)
        syntax = meta.get("TransferSyntaxUID") if meta is not None else None
        if syntax:
            uid = UID(str(syntax))
            try:
                implicit, little = uid.is_implicit_VR, uid.is_little_endian
            except ValueError:  # an unknown private transfer syntax: assume the default
                implicit, little = False, True
        else:
            implicit, little = False, True
    return Encoding(bool(implicit), bool(little), character_sets(ds))


def _is_raw_implicit(element: DataElement | RawDataElement) -> bool:
    return isinstance(element, RawDataElement) and element.VR is None


def element_vr(element: DataElement | RawDataElement, tag: int,
               implicit: bool | None = None) -> str:
    """The element's VR as the reference sees it.

    Explicit VR files: the VR written in the file. Implicit VR files: the dictionary's (first
    choice when ambiguous, OW for pixel data); private creators are LO, other private elements
    UN (SQ when they have an undefined length). ``implicit`` says whether the dataset was read
    implicitly; when not given, only a still-raw element tells.
    """
    if implicit is None:
        implicit = _is_raw_implicit(element)
    vr = element.VR
    t = Tag(tag)
    if implicit or vr is None:
        if t.is_private:
            if t.is_private_creator:
                return "LO"
            undefined = getattr(element, "length", None) == UNDEFINED_LENGTH
            if vr == "SQ" or (isinstance(element, RawDataElement) and vr is None and undefined):
                return "SQ"
            return "UN"
        if tag == PIXEL_DATA:
            return "OW"
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            return "UN" if element.VR is None else str(element.VR).split(" or ")[0]
    if vr == "UN" and not t.is_private:
        # A standard element written as UN (common after a trip through an implicit-VR
        # system) is read with its dictionary VR, as pydicom does: otherwise a name or a
        # sequence of UIDs would pass through as opaque bytes, out of reach of VR rules.
        return _dictionary_vr(tag) or "UN"
    return str(vr).split(" or ")[0]


def _dictionary_vr(tag: int) -> str | None:
    try:
        known = str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return None
    return known if known and known != "UN" else None


def _texts_from_value(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, bytes):
        return [value.decode("latin-1")]
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _value_bytes(element: DataElement, encoding: Encoding) -> bytes:
    """The bytes pydicom would write for a converted element's value, in the file's encoding."""
    fp = DicomBytesIO()
    fp.is_little_endian = encoding.little
    fp.is_implicit_VR = True
    write_data_element(fp, element, list(encoding.charsets))
    value = fp.getvalue()[8:]  # implicit VR header: tag (4) and length (4)
    return value[:-8] if element.is_undefined_length else value  # sequence delimiter


def _delimiters(vr: str) -> set[int]:
    if vr == "PN":
        return _PN_DELIMITERS
    if vr in SINGLE_VALUED_STRING_VRS:
        return _TEXT_DELIMITERS
    return _DELIMITERS


def _swap_at(data: bytes) -> bytes:
    """AT values are pairs of 16-bit numbers: swap each between byte orders."""
    return b"".join(data[i + 1:i + 2] + data[i:i + 1] for i in range(0, len(data) - 1, 2))


def decode_element(element: DataElement | RawDataElement, vr: str, root: Dataset | None,
                   encoding: Encoding | None = None) -> ElementData:
    """Decode an element into the form methods work on.

    ``vr`` comes from :func:`element_vr`; ``encoding`` (default: that of ``root``) gives the
    byte order and the character sets. AT data is always little endian.
    """
    enc = _encoding_of(root, encoding)
    tag = int(element.tag)
    if (isinstance(element, DataElement) and vr != element.VR and vr != "SQ"
            and " or " not in element.VR):
        # pydicom gave the element another VR than the file's view of it (ambiguous VR in an
        # implicit file, private element with a private dictionary entry): use its bytes.
        undefined = element.is_undefined_length
        element = RawDataElement(Tag(tag), None, UNDEFINED_LENGTH if undefined else 0,
                                 _value_bytes(element, enc), 0, True, enc.little)
    value = element.value
    raw = isinstance(element, RawDataElement)
    little = getattr(element, "is_little_endian", enc.little) if raw else enc.little
    length = getattr(element, "length", None)
    undefined = length == UNDEFINED_LENGTH or getattr(element, "is_undefined_length", False)
    if isinstance(value, bytes) and undefined and vr in ("OB", "OW", "UN"):
        endian = "<" if little else ">"
        # The first item is the Basic Offset Table, not a fragment.
        items = list(generate_fragments(value, endianness=endian))
        return ElementData(tag, vr, fragments=tuple(items[1:]))
    if vr in STRING_VRS:
        if raw:
            text = decode_bytes(value, list(enc.charsets), _delimiters(vr)) if value else ""
            text = text.rstrip("\0 " if vr == "UI" else " \0")
            if not text:
                texts: list[str] = []
            elif vr in SINGLE_VALUED_STRING_VRS:
                texts = [text]
            else:
                texts = text.split("\\")
        else:
            texts = _texts_from_value(value)
            if vr in SINGLE_VALUED_STRING_VRS:
                texts = ["\\".join(texts)] if texts else []
            else:
                texts = "\\".join(texts).split("\\") if texts else []
        return ElementData(tag, vr, texts=tuple(texts))
    if vr in NUMBER_FORMATS:
        if isinstance(value, bytes | bytearray) or value is None:
            return ElementData(tag, vr, numbers=unpack_numbers(vr, bytes(value or b""), little))
        numbers = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
        return ElementData(tag, vr, numbers=tuple(numbers))
    if vr == "AT":
        if isinstance(value, bytes | bytearray) or value is None:
            data = bytes(value or b"")
            return ElementData(tag, vr, data=data if little else _swap_at(data))
        tags = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
        data = b"".join(int(t >> 16).to_bytes(2, "little") + int(t & 0xFFFF).to_bytes(2, "little")
                        for t in tags)
        return ElementData(tag, vr, data=data)
    return ElementData(tag, vr, data=bytes(value or b""))


def _encoding_of(root: Dataset | None, encoding: Encoding | None) -> Encoding:
    if encoding is not None:
        return encoding
    if root is None:
        raise ValueError("either the dataset or its encoding is needed")
    return file_encoding(root)


def _pad(data: bytes, vr: str) -> bytes:
    if len(data) % 2:
        data += b"\0" if vr in ("UI", "OB", "UN") else b" "
    return data


def encode_element(data: ElementData, original: DataElement | RawDataElement,
                   root: Dataset | None, encoding: Encoding | None = None) -> RawDataElement:
    """Encode new data as a raw element in the file's byte order and VR form.

    Raises
    ------
    ValueError
        If a text cannot be encoded in the dataset's character set.
    """
    enc = _encoding_of(root, encoding)
    if isinstance(original, RawDataElement):
        little, implicit = original.is_little_endian, original.is_implicit_VR
    else:
        little, implicit = enc.little, enc.implicit
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
            encoded = _encode_text(joined, enc.charsets) if joined else b""
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
        raw_data = data.data or b""
        if data.vr == "AT" and not little:
            raw_data = _swap_at(raw_data)
        value = _pad(raw_data, data.vr)
        length = len(value)
    vr = None if implicit and data.vr == element_vr(original, data.tag, implicit) else data.vr
    return RawDataElement(Tag(data.tag), vr, length, value, offset, implicit, little)


def _encode_text(text: str, charsets: tuple[str, ...]) -> bytes:
    """``text`` in the dataset's character sets. ISO_IR 13 alone (JIS X 0201) mixes its romaji
    and katakana halves in one value without escapes; pydicom's encoder refuses that and
    writes ``?`` instead, so such text is encoded here."""
    if charsets == ("shift_jis",):
        try:
            encoded = text.encode("shift_jis")
        except UnicodeEncodeError:
            encoded = b""
        if encoded and len(encoded) == len(text):  # one byte each: JIS X 0201 only
            return encoded
    return encode_string(text, list(charsets))


def _swap(value: bytes, vr: str) -> bytes:
    fmt = NUMBER_FORMATS[vr]
    count = len(value) // struct.calcsize(fmt)
    return struct.pack(f">{count}{fmt}", *struct.unpack(f"<{count}{fmt}", value))
