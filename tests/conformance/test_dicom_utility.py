"""The reference's DA/DT/AS parsing and formatting vectors (vectors/dicom_utility.json).

They exercise :mod:`dcmanon.dicom.dates`, which dateShift, redact and perturb use. Errors are
compared by class (:class:`DateFormatError`), never by the reference's message text, since
dcmanon's messages never carry the value. Where dcmanon deviates on purpose (README, DT
precision and the 24-hour clock), ``test_deviation_...`` tests assert dcmanon's behaviour.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dcmanon.dicom.dates import (
    Age,
    DateFormatError,
    DicomDateTime,
    format_age,
    format_da,
    format_dt,
    older_than_hipaa_limit,
    parse_age,
    parse_da,
    parse_dt,
)
from tests.conformance.vectors import cases

pytestmark = pytest.mark.conformance

DEVIATING = {
    "DT-parse-invalid-202111100101": "any valid DT precision is accepted and kept",
    "DT-format-12h-20210613120000.000000": "offset-less DT is written on a 24-hour clock",
    "DT-format-12h-20210613010500.000000": "offset-less DT is written on a 24-hour clock",
}


def function(name: str, kind: str) -> Any:
    def predicate(case: dict[str, Any]) -> bool:
        return (case["function"] == name and case["kind"] == kind
                and case["id"] not in DEVIATING)
    return predicate


def offset_text(value: dt.datetime) -> str:
    """``±hhmm`` of an aware datetime."""
    offset = value.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


# --- DA -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("dicom_utility.json", function("ParseDicomDate", "exact")))
def test_parse_da(case: dict[str, Any]) -> None:
    assert parse_da(case["input"]) == dt.date.fromisoformat(case["expected"][:10])


@pytest.mark.parametrize("case", cases("dicom_utility.json", function("ParseDicomDate", "error")))
def test_parse_da_invalid(case: dict[str, Any]) -> None:
    with pytest.raises(DateFormatError) as caught:
        parse_da(case["input"])
    assert case["input"] not in str(caught.value)


@pytest.mark.parametrize("case", cases("dicom_utility.json",
                                       function("GenerateDicomDateString", "exact")))
def test_format_da(case: dict[str, Any]) -> None:
    assert format_da(dt.date.fromisoformat(case["input"])) == case["expected"]


# --- DT -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("dicom_utility.json",
                                       function("ParseDicomDateTime", "exact")))
def test_parse_dt(case: dict[str, Any]) -> None:
    parsed = parse_dt(case["input"])
    expected = dt.datetime.fromisoformat(case["expected"])
    # The reference keeps milliseconds only; dcmanon keeps the microseconds written.
    assert parsed.value.replace(microsecond=parsed.value.microsecond // 1000 * 1000) == (
        expected.replace(tzinfo=None))
    fraction = case["input"][15:21] if "." in case["input"] else ""
    assert parsed.value.microsecond == int(fraction.ljust(6, "0") or 0)
    assert (parsed.offset is not None) == case["expected_has_timezone"]
    if parsed.offset is not None:
        assert parsed.offset == offset_text(expected)
    assert parsed.components == 6


@pytest.mark.parametrize("case", cases("dicom_utility.json",
                                       function("ParseDicomDateTime", "error")))
def test_parse_dt_invalid(case: dict[str, Any]) -> None:
    with pytest.raises(DateFormatError) as caught:
        parse_dt(case["input"])
    assert case["input"] not in str(caught.value)


@pytest.mark.parametrize("case", cases("dicom_utility.json",
                                       function("GenerateDicomDateTimeString", "exact")))
def test_format_dt(case: dict[str, Any]) -> None:
    value = dt.datetime.fromisoformat(case["input"])
    offset = offset_text(value) if case["has_timezone"] else None
    assert format_dt(DicomDateTime(value.replace(tzinfo=None), 6, True, offset)) == (
        case["expected"])


# --- AS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("dicom_utility.json", function("ParseAge", "exact")))
def test_parse_age(case: dict[str, Any]) -> None:
    expected = case["expected"]
    assert parse_age(case["input"]) == Age(expected["value"], expected["unit"][0])


@pytest.mark.parametrize("case", cases("dicom_utility.json", function("ParseAge", "error")))
def test_parse_age_invalid(case: dict[str, Any]) -> None:
    with pytest.raises(DateFormatError) as caught:
        parse_age(case["input"])
    if len(case["input"]) > 2:  # ("Y" is in any AS message)
        assert case["input"] not in str(caught.value)


@pytest.mark.parametrize("case", cases("dicom_utility.json",
                                       function("GenerateAgeString", "exact")))
def test_format_age(case: dict[str, Any]) -> None:
    given = case["input"]
    assert format_age(Age(given["value"], given["unit"][0])) == case["expected"]


@pytest.mark.parametrize("case", cases("dicom_utility.json",
                                       function("GenerateAgeString", "error")))
def test_format_age_too_large(case: dict[str, Any]) -> None:
    given = case["input"]
    with pytest.raises(DateFormatError) as caught:
        format_age(Age(given["value"], given["unit"][0]))
    assert str(given["value"]) not in str(caught.value)


# --- deviations (docs/deviations.md) ------------------------------------


@pytest.mark.parametrize("case", cases("dicom_utility.json",
                                       lambda c: c["id"] == "DT-parse-invalid-202111100101"))
def test_deviation_reduced_precision_dt_parses(case: dict[str, Any]) -> None:
    """Reference: minute-precision DT is an error. dcmanon reads it and keeps its precision."""
    parsed = parse_dt(case["input"])
    assert parsed.value == dt.datetime(2021, 11, 10, 1, 1)
    assert parsed.components == 5 and parsed.offset is None
    assert format_dt(parsed) == case["input"]
    for text, components in (("2021", 1), ("202111", 2), ("20211110", 3), ("2021111001", 4),
                             ("20211110010101", 6), ("2021111001+0100", 4)):
        assert parse_dt(text).components == components
        assert format_dt(parse_dt(text)) == (text if components < 6 else text + ".000000")


@pytest.mark.parametrize("case", cases("dicom_utility.json", lambda c: c["id"] in {
    "DT-format-12h-20210613120000.000000", "DT-format-12h-20210613010500.000000"}))
def test_deviation_offsetless_dt_on_24_hour_clock(case: dict[str, Any]) -> None:
    """Reference: ``hh`` (12-hour clock) without an offset; dcmanon writes ``HH``."""
    value = dt.datetime.fromisoformat(case["input"]).replace(tzinfo=None)
    written = format_dt(DicomDateTime(value, 6, True, None))
    assert written == value.strftime("%Y%m%d%H%M%S.000000")
    assert written != case["expected"]


# --- dcmanon behaviour these functions promise ----------------------------------------------


@pytest.mark.parametrize("text", ["20210230", "20211301", "20211110250000", "20211110016000",
                                  "20211110010101+1500", "20211110010101+0160",
                                  "2021111001.5", "2021-11-10", " 20211110"])
def test_invalid_dt_values_are_refused(text: str) -> None:
    """No calendar-invalid or malformed DT slips through (the value is then not shifted)."""
    with pytest.raises(DateFormatError):
        parse_dt(text)


def test_hipaa_limit_on_the_89th_anniversary() -> None:
    """A date is over the limit from the day it turns 89 years old, as in the reference
    (``value + 89 years < now``, with ``now`` past midnight on that day)."""
    today = dt.date(2025, 6, 1)
    assert older_than_hipaa_limit(dt.date(1936, 5, 31), today)
    assert older_than_hipaa_limit(dt.date(1936, 6, 1), today)
    assert not older_than_hipaa_limit(dt.date(1936, 6, 2), today)
    assert older_than_hipaa_limit(dt.date(1936, 2, 29), dt.date(2025, 2, 28))
    assert not older_than_hipaa_limit(dt.date(1936, 2, 29), dt.date(2025, 2, 27))
