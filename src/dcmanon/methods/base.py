"""What every method works on: an element's decoded data, the file's context, the outcome."""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, field, replace
from enum import Enum

from dcmanon.scrub import Identifiers

STRING_VRS = frozenset("AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())
SINGLE_VALUED_STRING_VRS = frozenset({"LT", "ST", "UT", "UR"})
BYTES_VRS = frozenset({"OB", "UN"})
NUMBER_FORMATS = {
    "US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q", "UV": "Q",
    "OW": "H", "OL": "I", "OF": "f", "OD": "d", "OV": "Q",
}
"""struct format of one value of each numeric VR."""


class Action(Enum):
    """Outcomes that leave no new data: keep the element as it is, or delete it."""

    KEEP = "keep"
    REMOVE = "remove"


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


@dataclass(frozen=True)
class FileContext:
    """What a method may know about the file besides the element: original UIDs, today."""

    study_uid: str = ""
    series_uid: str = ""
    sop_uid: str = ""
    today: dt.date = field(default_factory=dt.date.today)
    sop_class_uid: str = ""
    patient_id: str = ""
    """The original PatientID (or PatientName when there is no ID): keys patient pseudonyms."""
    identifiers: Identifiers = field(default_factory=lambda: Identifiers(()))
    """The dataset's own identifying strings, for cleaning free text."""


Outcome = Action | ElementData


class MethodError(Exception):
    """A method cannot process an element; the engine adds where and which rule."""

    def __init__(self, reason: str, *, unsupported_vr: bool = False) -> None:
        self.reason = reason
        self.unsupported_vr = unsupported_vr
        super().__init__(reason)


def unsupported(method: str, vr: str) -> MethodError:
    """The error for a method given a VR it does not handle."""
    return MethodError(f"{method} does not support VR {vr}", unsupported_vr=True)


def pack_numbers(vr: str, numbers: list[int | float] | tuple[int | float, ...]) -> bytes:
    """Encode numbers of a numeric VR as little-endian bytes."""
    return struct.pack(f"<{len(numbers)}{NUMBER_FORMATS[vr]}", *numbers)


def unpack_numbers(vr: str, data: bytes, little_endian: bool = True) -> tuple[int | float, ...]:
    """Decode the bytes of a numeric VR (a trailing partial value is ignored)."""
    size = struct.calcsize(NUMBER_FORMATS[vr])
    count = len(data) // size
    order = "<" if little_endian else ">"
    return struct.unpack(f"{order}{count}{NUMBER_FORMATS[vr]}", data[: count * size])
