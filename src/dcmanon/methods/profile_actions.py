"""The actions of PS3.15 that are not among the reference's nine methods.

``dummy`` (D: a non-empty value that fits the VR), ``clean`` (C: free text without
identifiers), ``pseudonym`` (PatientID / PatientName), and ``shift_patient_dates`` (the
Retain Longitudinal Modified Dates option: one keyed offset per patient, time of day kept).
"""

from __future__ import annotations

import datetime as dt

from dcmanon.dicom.dates import DateFormatError, format_da, parse_da, parse_dt
from dcmanon.dicom.values import NUMBER_FORMATS, STRING_VRS, ElementData
from dcmanon.methods.base import MethodError
from dcmanon.phi.identifiers import Identifiers

DUMMY_TEXT = {
    "AE": "ANONYMOUS", "AS": "000Y", "CS": "ANONYMOUS", "DA": "19000101",
    "DT": "19000101000000.000000", "TM": "000000.00", "DS": "0", "IS": "0",
    "LO": "ANONYMOUS", "LT": "ANONYMOUS", "PN": "ANONYMOUS", "SH": "ANONYMOUS",
    "ST": "ANONYMOUS", "UC": "ANONYMOUS", "UT": "ANONYMOUS", "UR": "http://anonymous.invalid",
}


def dummy(data: ElementData) -> ElementData:
    """A fixed, non-identifying value that fits the VR (one value)."""
    if data.vr in DUMMY_TEXT:
        return data.with_texts([DUMMY_TEXT[data.vr]])
    if data.vr in NUMBER_FORMATS:
        return data.with_numbers([0])
    if data.vr == "UI":
        raise MethodError("UIDs are replaced with keyed UIDs, not dummies")
    if data.vr == "SQ":
        raise MethodError("a sequence cannot take a dummy value")
    return ElementData(data.tag, data.vr, data=b"\0\0")


def clean(data: ElementData, identifiers: Identifiers) -> ElementData:
    """Text with every identifier replaced; non-text values get a dummy."""
    if data.vr in ("LO", "LT", "SH", "ST", "UC", "UT", "PN", "AE", "CS"):
        return data.with_texts([identifiers.scrub(t) for t in data.texts or ()])
    if data.vr in STRING_VRS or data.vr in NUMBER_FORMATS:
        return dummy(data) if not data.is_empty else data
    if data.vr in ("OB", "UN", "OW"):
        return ElementData(data.tag, data.vr, data=b"")
    return data


def pseudonym(data: ElementData, value: str) -> ElementData:
    """Write the patient's pseudonym."""
    return data.with_texts([value])


def shift_patient_dates(data: ElementData, days: int) -> ElementData:
    """Move every DA / DT value by ``days``, keeping DT's time of day, precision and offset."""
    delta = dt.timedelta(days=days)
    shifted: list[str] = []
    try:
        for text in data.texts or ():
            if data.vr == "DA":
                shifted.append(format_da(parse_da(text) + delta))
            else:
                value = parse_dt(text)
                moved = value.value + delta
                shifted.append(_format_kept_time(text, value.components, moved))
    except (DateFormatError, OverflowError):
        raise MethodError("not a valid date, or out of range once shifted") from None
    return data.with_texts(shifted)


def year_only(data: ElementData) -> ElementData:
    """Every DA / DT value reduced to its year, as a whole date: ``YYYY0101`` (a DA has no
    shorter form; a DT does, but a whole date reads the same in both VRs). A DT's time and
    UTC offset go with the rest of the date."""
    years: list[str] = []
    try:
        for text in data.texts or ():
            if not text.strip():
                years.append(text)
                continue
            year = parse_da(text).year if data.vr == "DA" else parse_dt(text).value.year
            years.append(f"{year:04d}0101")
    except DateFormatError:
        raise MethodError("not a valid date") from None
    return data.with_texts(years)


def _format_kept_time(text: str, components: int, moved: dt.datetime) -> str:
    """Rewrite the date part of a DT in place, so the rest keeps its exact spelling."""
    date = format_da(moved.date())
    width = {1: 4, 2: 6}.get(components, 8)
    return date[:width] + text.strip()[width:]
