"""What every method works on besides the element's data: the file's context, the outcome."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum

from dcmanon.dicom.values import ElementData
from dcmanon.phi.identifiers import Identifiers


class Action(Enum):
    """Outcomes that leave no new data: keep the element as it is, or delete it."""

    KEEP = "keep"
    REMOVE = "remove"


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
