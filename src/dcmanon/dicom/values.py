"""An element's value in the form methods work on, and the VR facts that decoding needs."""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

STRING_VRS = frozenset("AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())
SINGLE_VALUED_STRING_VRS = frozenset({"LT", "ST", "UT", "UR"})
NUMBER_FORMATS = {
    "US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q", "UV": "Q",
    "OW": "H", "OL": "I", "OF": "f", "OD": "d", "OV": "Q",
}
"""struct format of one value of each numeric VR."""


@dataclass(frozen=True)
class ElementData:
    """An element's value in the form methods work on.

    Exactly one of ``texts`` (string VRs: the values, padding stripped), ``numbers`` (numeric
    VRs), ``data`` (OB, UN and AT bytes) or ``fragments`` (encapsulated data) is set.
    """

    tag: int
    vr: str
    texts: tuple[str, ...] | None = None
    numbers: tuple[int | float, ...] | None = None
    data: bytes | None = None
    fragments: tuple[bytes, ...] | None = None

    def with_texts(self, texts: list[str] | tuple[str, ...]) -> ElementData:
        """A copy holding new text values."""
        return replace(self, texts=tuple(texts))

    def with_numbers(self, numbers: list[int | float]) -> ElementData:
        """A copy holding new numbers."""
        return replace(self, numbers=tuple(numbers))

    @property
    def is_empty(self) -> bool:
        """Whether the element has no value at all."""
        for part in (self.texts, self.numbers, self.data, self.fragments):
            if part is not None:
                return len(part) == 0
        return True


def pack_numbers(vr: str, numbers: list[int | float] | tuple[int | float, ...]) -> bytes:
    """Encode numbers of a numeric VR as little-endian bytes."""
    return struct.pack(f"<{len(numbers)}{NUMBER_FORMATS[vr]}", *numbers)


def unpack_numbers(vr: str, data: bytes, little_endian: bool = True) -> tuple[int | float, ...]:
    """Decode the bytes of a numeric VR (a trailing partial value is ignored)."""
    size = struct.calcsize(NUMBER_FORMATS[vr])
    count = len(data) // size
    order = "<" if little_endian else ">"
    return struct.unpack(f"{order}{count}{NUMBER_FORMATS[vr]}", data[: count * size])
