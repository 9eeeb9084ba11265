"""substitute: replace the value with a fixed text, parsed to the element's VR."""

from __future__ import annotations

from dcmanon.config.selectors import SelectorError, TagSelector, parse_selector
from dcmanon.config.settings import SubstituteSettings
from dcmanon.methods.base import (
    NUMBER_FORMATS,
    SINGLE_VALUED_STRING_VRS,
    STRING_VRS,
    ElementData,
    FileContext,
    MethodError,
    unsupported,
)

_INVALID = "the replacement value cannot be written in this VR"
_SINGLE_NUMBER_VRS = frozenset({"OW", "OL", "OD", "OF"})


def _number(text: str, vr: str) -> int | float:
    try:
        if vr in ("FL", "FD", "OF", "OD"):
            return float(text)
        value = int(text)
    except ValueError:
        raise MethodError(_INVALID) from None
    return value


def substitute(data: ElementData, settings: SubstituteSettings,
               context: FileContext) -> ElementData:
    """Write ``replaceWith`` in place of the value.

    Text VRs take it verbatim (a backslash splits values, except in LT, ST, UT, UR); numeric VRs
    parse it; AT parses a tag. OB, UN, SQ, OV and encapsulated data are not supported.
    """
    text = settings.replace_with
    if data.fragments is not None or data.vr in ("OB", "UN", "SQ", "OV"):
        raise unsupported("substitute", data.vr)
    if data.vr in STRING_VRS:
        values = [text] if data.vr in SINGLE_VALUED_STRING_VRS else text.split("\\")
        return data.with_texts(values)
    if data.vr == "AT":
        try:
            selector = parse_selector(text)
        except SelectorError:
            raise MethodError(_INVALID) from None
        if not isinstance(selector, TagSelector):
            raise MethodError(_INVALID)
        tag = selector.tag
        return ElementData(data.tag, "AT", data=(tag >> 16).to_bytes(2, "little")
                           + (tag & 0xFFFF).to_bytes(2, "little"))
    if data.vr in NUMBER_FORMATS:
        parts = [text] if data.vr in _SINGLE_NUMBER_VRS else [p for p in text.split("\\") if p]
        numbers = [_number(p.strip(), data.vr) for p in parts]
        if not numbers:
            raise MethodError(_INVALID)
        if data.vr in ("US", "UL", "UV", "OW", "OL") and any(n < 0 for n in numbers):
            raise MethodError(_INVALID)
        return data.with_numbers(numbers)
    raise unsupported("substitute", data.vr)
