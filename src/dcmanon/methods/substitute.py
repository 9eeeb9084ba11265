"""substitute: replace the value with a fixed text, parsed to the element's VR.

Text VRs take the text verbatim. Numbers and tags are parsed as the reference does (fo-dicom's
``AddOrUpdate`` with a string): the text is split on backslashes when the tag may hold several
values, blank pieces are skipped, and each piece is parsed with .NET's number grammar (not
Python's, which also accepts ``1_000``, ``inf`` or non-ASCII digits). A value the VR cannot
hold fails the file.
"""

from __future__ import annotations

import math
import re
import struct

from pydicom.datadict import dictionary_VM

from dcmanon.config.selectors import SelectorError, TagSelector, parse_selector
from dcmanon.config.settings import SubstituteSettings
from dcmanon.dicom.values import NUMBER_FORMATS, SINGLE_VALUED_STRING_VRS, STRING_VRS, ElementData
from dcmanon.methods.base import FileContext, MethodError, unsupported

_INVALID = "the replacement value cannot be written in this VR"
_OUT_OF_RANGE = "the replacement value is out of the range of this VR"
_SINGLE_NUMBER_VRS = frozenset({"OW", "OL", "OD", "OF"})
"""Binary VRs the reference fills with exactly one parsed number."""
_FLOAT_VRS = frozenset({"FL", "FD", "OF", "OD"})
_FLOAT32_VRS = frozenset({"FL", "OF"})
_INT_RANGES = {
    "US": (0, 2**16 - 1), "OW": (0, 2**16 - 1),
    "SS": (-(2**15), 2**15 - 1),
    "UL": (0, 2**32 - 1), "OL": (0, 2**32 - 1),
    "SL": (-(2**31), 2**31 - 1),
    "UV": (0, 2**64 - 1), "OV": (0, 2**64 - 1),
    "SV": (-(2**63), 2**63 - 1),
}
# .NET NumberStyles.Integer / Float | AllowThousands (invariant culture): ASCII digits only,
# optional sign, white space around; floats also take a point, an exponent, thousands commas
# in the integer part, and the NaN / Infinity symbols (case-insensitive since .NET Core 3.0).
_WHITE = "[ \t\n\v\f\r]*"
_INT = re.compile(rf"^{_WHITE}([+-]?[0-9]+){_WHITE}$")
_FLOAT = re.compile(
    rf"^{_WHITE}([+-]?)((?:[0-9][0-9,]*)?(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?){_WHITE}$")
_SPECIAL = re.compile(rf"^{_WHITE}([+-]?)(nan|infinity){_WHITE}$", re.IGNORECASE)


def parse_number(text: str, vr: str) -> int | float:
    """Parse one number for ``vr`` as .NET does, or raise :class:`MethodError`.

    Examples
    --------
    >>> parse_number(" -23456 ", "SS")
    -23456
    >>> parse_number("1,000.5", "FD")
    1000.5
    """
    if vr in _FLOAT_VRS:
        return _parse_float(text, vr)
    match = _INT.match(text)
    if match is None:
        raise MethodError(_INVALID)
    value = int(match[1])
    low, high = _INT_RANGES[vr]
    if not low <= value <= high:
        raise MethodError(_OUT_OF_RANGE)
    return value


def _parse_float(text: str, vr: str) -> float:
    if special := _SPECIAL.match(text):
        magnitude = math.nan if special[2].lower() == "nan" else math.inf
        return -magnitude if special[1] == "-" else magnitude
    match = _FLOAT.match(text)
    if match is None or not re.search("[0-9]", re.split("[eE]", match[2])[0]):
        raise MethodError(_INVALID)
    value = float(match[1] + match[2].replace(",", ""))
    if vr in _FLOAT32_VRS:
        try:
            struct.pack("<f", value)
        except OverflowError:
            # .NET Core parses a number beyond the float range as infinity (IEEE 754).
            value = math.copysign(math.inf, value)
    return value


def _may_hold_several(tag: int) -> bool:
    """Whether the data dictionary lets ``tag`` hold more than one value (unknown: yes)."""
    try:
        return str(dictionary_VM(tag)).strip() != "1"
    except KeyError:
        return True


def _pieces(text: str, tag: int) -> list[str]:
    """Split as fo-dicom does: on backslashes if the tag's VM allows, blank pieces dropped."""
    pieces = text.split("\\") if _may_hold_several(tag) else [text]
    return [p for p in pieces if p.strip()]


def _tag_bytes(text: str) -> bytes:
    try:
        selector = parse_selector(text.strip())
    except SelectorError:
        raise MethodError(_INVALID) from None
    if not isinstance(selector, TagSelector):
        raise MethodError(_INVALID)
    tag = selector.tag
    return (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little")


def substitute(data: ElementData, settings: SubstituteSettings,
               context: FileContext) -> ElementData:
    """Write ``replaceWith`` in place of the value.

    Text VRs take it verbatim (a backslash splits values, except in LT, ST, UT, UR); numeric VRs
    and AT parse it (OW, OL, OD, OF take exactly one number). OB, UN, SQ, OV and encapsulated
    data are not supported.
    """
    text = settings.replace_with
    if data.fragments is not None or data.vr in ("OB", "UN", "SQ", "OV"):
        raise unsupported("substitute", data.vr)
    if data.vr in STRING_VRS:
        values = [text] if data.vr in SINGLE_VALUED_STRING_VRS else text.split("\\")
        return data.with_texts(values)
    if data.vr == "AT":
        tags = b"".join(_tag_bytes(p) for p in _pieces(text, data.tag))
        return ElementData(data.tag, "AT", data=tags)
    if data.vr in _SINGLE_NUMBER_VRS:
        return data.with_numbers([parse_number(text, data.vr)])
    if data.vr in NUMBER_FORMATS:
        return data.with_numbers([parse_number(p, data.vr) for p in _pieces(text, data.tag)])
    raise unsupported("substitute", data.vr)
