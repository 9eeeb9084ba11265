"""The reference's redact vectors (vectors/redact.json), run against dcmanon.

Processor and rule cases go through ``parse_config`` + ``Anonymizer`` on a built dataset. The
Common-library cases (ISO dates, integer ages) are mapped onto the DICOM values that carry the
same meaning (DA, DT of the same precision, AS); the ZIP-code cases have no DICOM meaning (their
value in a DICOM element is redacted whole). Deviating cases (docs/deviations.md) are excluded
from the conformance tests and asserted as dcmanon behaviour by ``test_deviation_...`` tests.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence

from dcmanon import Anonymizer, parse_config
from dcmanon.dicom.dates import parse_dt
from dcmanon.errors import ValueFormatError
from tests.conformance.vectors import build_dataset, cases, parse_tag, string_values

pytestmark = pytest.mark.conformance

TODAY = dt.date(2025, 6, 1)
"""Fixed run date: the vectors' 89-year rule assumes a run date in 2000–2089."""

TAG_FOR_VR = {"AS": 0x00101010, "DA": 0x00080020, "DT": 0x0008002A}

DEVIATING = {
    "DT-partial-multi": "offset-less DT is written on a 24-hour clock (000000)",
    "malformed-DT-20200101": "any valid DT precision is accepted and kept",
}


def anonymize(ds: Dataset, selector: str, settings: dict[str, Any] | None) -> dict[str, int]:
    config = parse_config({"rules": [{"tag": selector, "method": "redact"}],
                           "defaultSettings": {"redact": settings or {}}})
    return Anonymizer(config, today=TODAY).anonymize_dataset(ds)


def redact_values(tag: int, vr: str, values: list[str], settings: dict[str, Any]) -> list[str]:
    ds = Dataset()
    ds[tag] = DataElement(tag, vr, "\\".join(values) if values else None)
    anonymize(ds, f"({tag >> 16:04X},{tag & 0xFFFF:04X})", settings)
    assert vr == ds.get_item(tag).VR  # the element is kept, with its VR
    result = string_values(ds, tag)
    assert result is not None
    return result


def case_tag(case: dict[str, Any]) -> int:
    return parse_tag(case["tag"]) if "tag" in case else TAG_FOR_VR[case["vr"]]


# --- processor: values ---------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("redact.json", lambda c: "input_values" in c
                                       and c["kind"] == "exact" and c["id"] not in DEVIATING))
def test_values(case: dict[str, Any]) -> None:
    got = redact_values(case_tag(case), case["vr"], case["input_values"], case["settings"])
    assert got == case["expected_values"]


@pytest.mark.parametrize("case", cases("redact.json", lambda c: c["kind"] == "error"
                                       and c["id"] not in DEVIATING))
def test_malformed_value_fails(case: dict[str, Any]) -> None:
    """AS/DA/DT values are parsed even without partial redaction: malformed → fail closed."""
    with pytest.raises(ValueFormatError) as caught:
        redact_values(case_tag(case), case["vr"], case["input_values"], case["settings"])
    for value in case["input_values"]:  # messages never carry values (README deviation)
        assert value not in str(caught.value)


@pytest.mark.parametrize("case", cases("redact.json", lambda c: c["id"] == "fragments"))
def test_encapsulated_pixel_data(case: dict[str, Any]) -> None:
    """Encapsulated pixel data becomes a native OB element of length zero."""
    tag = parse_tag(case["tag"])
    ds = Dataset()
    element = DataElement(tag, "OB", encapsulate([b"\x01\x02\x03\x04", b"\x05\x06"]))
    element.is_undefined_length = True
    ds[tag] = element
    anonymize(ds, "PixelData", case["settings"])
    written = ds.get_item(tag)
    assert written.VR == "OB"
    assert written.value == b""
    assert written.length == 0  # defined length: native, not a fragment sequence


@pytest.mark.parametrize("case", cases("redact.json", lambda c: c["id"] == "SQ"))
def test_sequence(case: dict[str, Any]) -> None:
    """A redacted sequence is kept with no items (nested items and their sequences go)."""
    tag = parse_tag(case["tag"])
    items = []
    for name in ("Doe^Jane", "Roe^John"):
        nested = Dataset()
        nested.CodeValue = "X1"
        item = Dataset()
        item.ScheduledPerformingPhysicianName = name
        item.ScheduledProtocolCodeSequence = Sequence([nested])
        items.append(item)
    ds = Dataset()
    ds[tag] = DataElement(tag, "SQ", Sequence(items))
    anonymize(ds, case["tag"].split(")")[0] + ")", case["settings"])
    assert ds[tag].VR == "SQ"
    assert len(ds[tag].value) == 0


# --- rule level ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("redact.json", lambda c: c.get("level") == "rule"))
def test_rule(case: dict[str, Any]) -> None:
    ds = build_dataset(case["input_dataset"])
    counts = anonymize(ds, case["selector"], case.get("settings"))
    expected = {parse_tag(t): (vr, values) for t, vr, values in case["expected_dataset"]}
    assert set(ds.keys()) == set(expected)
    for tag, (vr, values) in expected.items():
        assert vr == ds.get_item(tag).VR
        assert string_values(ds, tag) == values
    if "expected_visited_count" in case:
        assert counts["redact"] == case["expected_visited_count"]


# --- Common library, mapped onto DICOM values -----------------------------------------------

ISO_AS_DICOM = {
    # ISO input → (VR, DICOM value of the same precision). A DA is always a full date, so
    # partial ISO dates map onto a DT of the same precision, which DICOM allows.
    "2015": ("DT", "2015"),
    "2015-02": ("DT", "201502"),
    "2015-02-07": ("DA", "20150207"),
    "1925-02-07": ("DA", "19250207"),
    "2015-02-07T13:28:17-05:00": ("DT", "20150207132817-0500"),
    "1925-02-07T13:28:17-05:00": ("DT", "19250207132817-0500"),
}


def _library_date(case: dict[str, Any]) -> bool:
    return case["id"].startswith(("lib-date-", "lib-datetime-"))


@pytest.mark.parametrize("case", cases("redact.json", _library_date))
def test_library_partial_date(case: dict[str, Any]) -> None:
    """Partial redaction of a date → 1 January (00:00) of its year; over 89 years → gone."""
    vr, value = ISO_AS_DICOM[case["input"]]
    if case["id"].startswith("lib-datetime-") and vr == "DA":
        vr = "DT"  # the date-time function: the same value as a DT of date precision
    got = redact_values(TAG_FOR_VR[vr], vr, [value], case["settings"])
    if case["expected"] is None:
        assert got == []
        return
    expected = dt.datetime.fromisoformat(case["expected"])
    if vr == "DA":
        assert got == [expected.strftime("%Y%m%d")]
        return
    # DT: the same instant, written at the precision and with the offset of the input.
    digits = value.split("+")[0].split("-")[0]
    text = expected.strftime("%Y%m%d%H%M%S")[: len(digits)]
    text += ".000000" if len(digits) == 14 else ""
    text += value[len(digits):]
    assert got == [text]
    assert parse_dt(got[0]).value == expected


@pytest.mark.parametrize("case", cases("redact.json", lambda c: c["id"].startswith("lib-age-")))
def test_library_partial_age(case: dict[str, Any]) -> None:
    """Ages up to 89 are kept with partial ages on; older ones are dropped (AS nnnY)."""
    value = f"{case['input']:03d}Y"
    got = redact_values(TAG_FOR_VR["AS"], "AS", [value], case["settings"])
    assert got == ([] if case["expected"] is None else [f"{case['expected']:03d}Y"])


@pytest.mark.parametrize("case", cases("redact.json", lambda c: c["id"].startswith("lib-zip-")))
def test_library_zip_code_has_no_dicom_meaning(case: dict[str, Any]) -> None:
    """ZIP-code redaction is a Common-library function for FHIR addresses: DICOM has no ZIP-code
    VR and the reference's DICOM redact processor never calls it (SPEC §4.3). With the case's
    settings, its value in a DICOM element is emptied, not partially kept."""
    got = redact_values(0x00101040, "LO", [case["input"]], case["settings"])  # PatientAddress
    assert got == []


def test_zip_code_settings_are_accepted_and_ignored() -> None:
    """A reference configuration with the ZIP-code settings loads; DICOM values are emptied."""
    ds = Dataset()
    ds.PatientAddress = "98052"
    anonymize(ds, "PatientAddress", {"enablePartialZipCodesForRedact": True,
                                     "restrictedZipCodeTabulationAreas": ["203", "556"]})
    assert string_values(ds, 0x00101040) == []


# --- deviations (docs/deviations.md) ------------------------------------


@pytest.mark.parametrize("case", cases("redact.json", lambda c: c["id"] == "DT-partial-multi"))
def test_deviation_offsetless_dt_midnight_is_000000(case: dict[str, Any]) -> None:
    """Reference: ``20210101120000.000000`` (12-hour clock); dcmanon writes midnight as 00."""
    got = redact_values(case_tag(case), "DT", case["input_values"], case["settings"])
    assert case["expected_values"][1] == "20210101120000.000000"
    assert got == [case["expected_values"][0], "20210101000000.000000",
                   case["expected_values"][2]]


@pytest.mark.parametrize("case", cases("redact.json",
                                       lambda c: c["id"] == "malformed-DT-20200101"))
def test_deviation_date_only_dt_is_redacted(case: dict[str, Any]) -> None:
    """Reference: a date-only DT fails the file. dcmanon redacts it (precision kept)."""
    tag = case_tag(case)
    assert redact_values(tag, "DT", case["input_values"], case["settings"]) == []
    partial = {"enablePartialDatesForRedact": True}
    assert redact_values(tag, "DT", case["input_values"], partial) == ["20200101"]
    assert redact_values(tag, "DT", ["20200607"], partial) == ["20200101"]
    assert redact_values(tag, "DT", ["2020060713"], partial) == ["2020010100"]
