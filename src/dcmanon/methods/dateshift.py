"""dateShift: move DA and DT values by a keyed offset; dates over 89 years old are dropped."""

from __future__ import annotations

import datetime as dt

from dcmanon.config.settings import DateShiftScope, DateShiftSettings
from dcmanon.dicom.dates import (
    DateFormatError,
    format_da,
    format_dt,
    older_than_hipaa_limit,
    parse_da,
    parse_dt,
)
from dcmanon.dicom.values import ElementData
from dcmanon.keys import reference_date_shift
from dcmanon.methods.base import FileContext, MethodError, unsupported


def shift_days(settings: DateShiftSettings, context: FileContext) -> int:
    """The offset for this file: the reference's algorithm over (scope UID + key)."""
    if settings.prefix is not None:
        prefix = settings.prefix
    elif settings.scope is DateShiftScope.STUDY_INSTANCE:
        prefix = context.study_uid
    elif settings.scope is DateShiftScope.SERIES_INSTANCE:
        prefix = context.series_uid
    else:
        prefix = context.sop_uid
    return reference_date_shift(prefix, settings.key or "", settings.range)


def date_shift(data: ElementData, settings: DateShiftSettings,
               context: FileContext) -> ElementData:
    """Shift every DA or DT value.

    DT keeps its precision and UTC offset; its time of day is reset to midnight (the time can
    identify an encounter); a DT read with seconds is written with six fraction digits, as the
    reference does.
    """
    if data.vr not in ("DA", "DT"):
        raise unsupported("dateShift", data.vr)
    delta = dt.timedelta(days=shift_days(settings, context))
    shifted: list[str] = []
    try:
        for text in data.texts or ():
            if data.vr == "DA":
                date = parse_da(text)
                if not older_than_hipaa_limit(date, context.today):
                    shifted.append(format_da(_add(date, delta)))
            else:
                value = parse_dt(text)
                date = value.value.date()
                if not older_than_hipaa_limit(date, context.today):
                    shifted.append(format_dt(value.with_date(_add(date, delta))))
    except DateFormatError as exc:
        raise MethodError(str(exc)) from None
    return data.with_texts(shifted)


def _add(date: dt.date, delta: dt.timedelta) -> dt.date:
    try:
        return date + delta
    except OverflowError:
        raise MethodError("date out of range after shifting") from None
