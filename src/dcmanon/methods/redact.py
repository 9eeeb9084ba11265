"""redact: keep the element, empty its value; partial modes keep the year or ages up to 89."""

from __future__ import annotations

from dcmanon.config.settings import RedactSettings
from dcmanon.dicom.dates import (
    HIPAA_MAX_YEARS,
    DateFormatError,
    format_da,
    format_dt,
    older_than_hipaa_limit,
    parse_age,
    parse_da,
    parse_dt,
)
from dcmanon.dicom.values import ElementData
from dcmanon.methods.base import FileContext, MethodError


def redact(data: ElementData, settings: RedactSettings, context: FileContext) -> ElementData:
    """Empty the element, or with partial options keep what HIPAA allows.

    AS, DA and DT values are always parsed (a malformed value fails the file, as in the
    reference). Partial dates: ``YYYY0101`` (DT at midnight), dates older than 89 years
    dropped. Partial ages: ages up to 89 years kept.
    """
    texts = data.texts or ()
    kept: list[str] = []
    try:
        if data.vr == "AS":
            for text in texts:
                age = parse_age(text)
                if settings.partial_ages and age.years <= HIPAA_MAX_YEARS:
                    kept.append(text)
        elif data.vr == "DA":
            for text in texts:
                date = parse_da(text)
                if settings.partial_dates and not older_than_hipaa_limit(date, context.today):
                    kept.append(format_da(date.replace(month=1, day=1)))
        elif data.vr == "DT":
            for text in texts:
                value = parse_dt(text)
                if settings.partial_dates and not older_than_hipaa_limit(value.value.date(),
                                                                         context.today):
                    kept.append(format_dt(value.with_date(value.value.date().replace(
                        month=1, day=1))))
    except DateFormatError as exc:
        raise MethodError(str(exc)) from None
    if data.texts is not None:
        return ElementData(data.tag, data.vr, texts=tuple(kept))
    if data.fragments is not None:
        # Encapsulated data becomes an empty native OB element, as in the reference.
        return ElementData(data.tag, "OB", data=b"")
    if data.numbers is not None:
        return ElementData(data.tag, data.vr, numbers=())
    return ElementData(data.tag, data.vr, data=b"")
