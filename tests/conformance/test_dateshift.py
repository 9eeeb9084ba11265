"""The reference's dateShift vectors (vectors/dateshift.json), run against dcmanon.

Algorithm cases call :func:`dcmanon.keys.reference_date_shift`; processor and file cases go
through ``parse_config`` + ``Anonymizer`` on a built dataset or a reference file. Where dcmanon
deviates on purpose (docs/deviations.md), the case is excluded from the
conformance test and a ``test_deviation_...`` test asserts what dcmanon does instead.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence

from dcmanon import Anonymizer, load_config, parse_config
from dcmanon.errors import DcmanonError, UnsupportedVRError, ValueFormatError
from dcmanon.keys import reference_date_shift
from tests.conformance.vectors import cases, parse_tag, require_reference, string_values

pytestmark = pytest.mark.conformance

TODAY = dt.date(2025, 6, 1)
"""Fixed run date: the vectors' 89-year rule assumes a run date in 2000–2089."""

TAG_FOR_VR = {
    "AE": 0x00080054, "AS": 0x00101010, "CS": 0x00080060, "DS": 0x00101030, "IS": 0x00200013,
    "SH": 0x00080050, "UI": 0x00200052, "FD": 0x00120052, "FL": 0x00109431, "SL": 0x00186039,
    "SS": 0x00281041, "UL": 0x0040DB73, "US": 0x00280010, "TM": 0x00080030,
    "OB": 0x00420011, "OB-fragments": 0x7FE00010, "SQ": 0x00400275, "DA": 0x00080020,
    "DT": 0x0008002A,
}
"""A standard element of each VR, for cases that name a VR but no tag."""

SAMPLE_VALUE: dict[str, Any] = {
    "AE": "STATION1", "AS": "045Y", "CS": "CT", "DS": "1.5", "IS": "3", "SH": "ACC1",
    "UI": "1.2.3.4", "FD": 1.5, "FL": 1.5, "SL": -3, "SS": -3, "UL": 3, "US": 3,
    "TM": "121212", "OB": b"\x01\x02",
}

# Deviating cases (docs/deviations.md), each tested below.
DEVIATING = {
    "proc-DT-20150207132817": "offset-less DT is written on a 24-hour clock (000000)",
    "parse-error-DT-20200101": "any valid DT precision is accepted and kept",
    "parse-error-DT-202111100101": "any valid DT precision is accepted and kept",
}


@pytest.fixture(autouse=True)
def _no_project_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys come from the configurations under test only, never from the environment."""
    monkeypatch.delenv("DCMANON_KEY", raising=False)


def tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def case_tag(case: dict[str, Any]) -> int:
    return parse_tag(case["tag"]) if "tag" in case else TAG_FOR_VR[case["vr"]]


def dataset(context: dict[str, str] | None) -> Dataset:
    """A dataset holding the case's Study/Series/SOP Instance UIDs (the date-shift scope)."""
    ds = Dataset()
    for keyword, uid in (context or {}).items():
        setattr(ds, keyword, uid)
    return ds


def anonymize(ds: Dataset, rule_tag: str, settings: dict[str, Any] | None,
              method: str = "dateShift") -> dict[str, int]:
    config = parse_config({"rules": [{"tag": rule_tag, "method": method}],
                           "defaultSettings": {method: settings or {}}})
    return Anonymizer(config, today=TODAY).anonymize_dataset(ds)




def run_case(case: dict[str, Any]) -> tuple[Dataset, int]:
    ds = dataset(case.get("context"))
    tag = case_tag(case)
    values = case.get("input_values", [])
    ds[tag] = DataElement(tag, case["vr"], "\\".join(values) if values else None)
    anonymize(ds, tag_text(tag), case.get("settings"))
    return ds, tag


# --- algorithm ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("dateshift.json", lambda c: c.get("level") == "algorithm"))
def test_shift_amount(case: dict[str, Any]) -> None:
    given = case["input"]
    days = reference_date_shift(given["prefix_scope_uid"], given["dateShiftKey"],
                                given["dateShiftRange"])
    assert days == case["expected_shift_days"]


# --- processor: exact results ------------------------------------------------------------


def _processor_exact(case: dict[str, Any]) -> bool:
    return (case.get("level", "processor") == "processor" and case["kind"] == "exact"
            and case["id"] not in DEVIATING)


@pytest.mark.parametrize("case", cases("dateshift.json", _processor_exact))
def test_processor_result(case: dict[str, Any]) -> None:
    ds, tag = run_case(case)
    assert string_values(ds, tag) == case["expected_values"]
    assert case["vr"] == ds.get_item(tag).VR
    for keyword, uid in case.get("context", {}).items():
        assert getattr(ds, keyword) == uid  # the scope UIDs are not touched by this rule


@pytest.mark.parametrize("case", cases("dateshift.json", lambda c: "expected_range" in c
                                       and c.get("level") == "processor"))
def test_processor_result_within_range(case: dict[str, Any]) -> None:
    """The reference's own assertion for these cases: the date lies in [v − R, v + R]
    (this holds for the deviating offset-less DT too: only its time of day differs)."""
    ds, tag = run_case(case)
    low, high = case["expected_range"]
    for value in string_values(ds, tag) or []:
        assert low[:8] <= value[:8] <= high[:8]


# --- processor: errors -------------------------------------------------------------------


def _error(case: dict[str, Any]) -> bool:
    return case["kind"] == "error" and case["id"] not in DEVIATING


@pytest.mark.parametrize("case", cases("dateshift.json", _error))
def test_processor_error(case: dict[str, Any]) -> None:
    vr = case["vr"]
    tag = case_tag(case)
    ds = dataset(case.get("context"))
    if "input_values" in case:
        values = case["input_values"]
        ds[tag] = DataElement(tag, vr, "\\".join(values))
        expected: type[DcmanonError] = ValueFormatError
    elif vr == "SQ":
        item = Dataset()
        item.StudyDate = "20200101"
        ds[tag] = DataElement(tag, "SQ", Sequence([item]))
        expected = UnsupportedVRError
    elif vr == "OB-fragments":
        element = DataElement(tag, "OB", encapsulate([b"\x01\x02", b"\x03\x04"]))
        element.is_undefined_length = True
        ds[tag] = element
        expected = UnsupportedVRError
    else:
        ds[tag] = DataElement(tag, vr, SAMPLE_VALUE[vr])
        expected = UnsupportedVRError
    with pytest.raises(expected) as caught:
        anonymize(ds, tag_text(tag), case.get("settings"))
    # dcmanon's messages name the element and rule, never the value (README deviation).
    for value in case.get("input_values", []):
        assert value not in str(caught.value)
    assert caught.value.vr == ("OB" if vr == "OB-fragments" else vr)


# --- file level ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("dateshift.json", lambda c: c.get("level") == "file"))
def test_file(case: dict[str, Any], tmp_path: Any) -> None:
    reference = require_reference()
    config = load_config(reference / "configuration.json")
    target = tmp_path / "out.dcm"
    result = Anonymizer(config, today=TODAY, pixels="off").anonymize_file(  # as the reference
        reference / case["input_file"], target)
    assert result.status == "done", result.error
    tag = parse_tag(case["tag"])
    original = pydicom.dcmread(reference / case["input_file"])
    assert [original[tag].value] == case["input_values"]
    for keyword, uid in case.get("context", {}).items():
        assert getattr(original, keyword) == uid
    written = pydicom.dcmread(target)
    assert case["vr"] == written[tag].VR
    assert [written[tag].value] == case["expected_values"]


# --- Common library (ISO dates) mapped onto DA ----------------------------------------------


@pytest.mark.parametrize("case", cases("dateshift.json",
                                       lambda c: c["id"].startswith("lib-iso-")))
def test_library_iso_date_as_da(case: dict[str, Any]) -> None:
    """ISO ``yyyy-mm-dd`` ↔ DA ``yyyymmdd``: empty key, no scope UID → −50 days, as there."""
    tag = TAG_FOR_VR["DA"]
    ds = Dataset()  # no Study/Series/SOP Instance UID: empty prefix, as in the library call
    ds[tag] = DataElement(tag, "DA", case["input"].replace("-", ""))
    anonymize(ds, "DA", case["settings"])
    assert string_values(ds, tag) == [case["expected"].replace("-", "")]


@pytest.mark.parametrize("case", cases("dateshift.json",
                                       lambda c: c["id"] == "lib-same-prefix-same-offset"))
def test_library_same_prefix_same_offset(case: dict[str, Any]) -> None:
    """dateShiftKeyPrefix replaces the scope UID: every date moves by the same amount."""
    tag = TAG_FOR_VR["DA"]
    dates = [dt.date.fromisoformat(d) for d in case["input"]]
    ds = dataset({"StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4",
                  "SOPInstanceUID": "1.2.3.4.5"})
    ds[tag] = DataElement(tag, "DA", [d.strftime("%Y%m%d") for d in dates])
    anonymize(ds, "DA", case["settings"])
    shifted = [dt.datetime.strptime(v, "%Y%m%d").date() for v in string_values(ds, tag) or []]
    assert [(new - old).days for old, new in zip(dates, shifted, strict=True)] == [
        case["expected_shift_days_all"]] * len(dates)


# --- deviations (docs/deviations.md) ------------------------------------


@pytest.mark.parametrize("case", cases("dateshift.json",
                                       lambda c: c["id"] == "proc-DT-20150207132817"))
def test_deviation_offsetless_dt_midnight_is_000000(case: dict[str, Any]) -> None:
    """Reference: ``20150111120000.000000`` (12-hour clock); dcmanon writes midnight as 00."""
    ds, tag = run_case(case)
    assert case["expected_values"] == ["20150111120000.000000"]
    assert string_values(ds, tag) == ["20150111000000.000000"]


@pytest.mark.parametrize("case", cases("dateshift.json", lambda c: c["id"] in {
    "parse-error-DT-20200101", "parse-error-DT-202111100101"}))
def test_deviation_reduced_precision_dt_is_shifted(case: dict[str, Any]) -> None:
    """Reference: the file fails. dcmanon shifts the date and keeps the value's precision."""
    ds, tag = run_case(case)
    days = reference_date_shift("", case["settings"]["dateShiftKey"], 50)  # no scope UID
    text = case["input_values"][0]
    date = dt.datetime.strptime(text[:8], "%Y%m%d").date() + dt.timedelta(days=days)
    expected = date.strftime("%Y%m%d") + "0" * (len(text) - 8)  # time of day → midnight
    assert string_values(ds, tag) == [expected]


def test_deviation_no_key_uses_one_random_key_per_run() -> None:
    """Reference: no key means the empty key (offsets anyone can recompute).

    dcmanon: a random dateShift key for the run, reported in ``generated_keys``, shared by
    every dateShift rule of the run so that DA and DT of one study stay consistent.
    """
    rules = [{"tag": "DA", "method": "dateShift"}, {"tag": "DT", "method": "dateShift"}]
    first, second = parse_config({"rules": rules}), parse_config({"rules": rules})
    keys = {rule.settings.key for rule in first.rules}  # type: ignore[attr-defined]
    assert "dateShift" in first.generated_keys
    assert len(keys) == 1 and "" not in keys and None not in keys
    assert keys != {rule.settings.key for rule in second.rules}  # type: ignore[attr-defined]
    ds = dataset({"StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4",
                  "SOPInstanceUID": "1.2.3.4.5"})
    ds.StudyDate = "20200101"
    ds.AcquisitionDateTime = "20200101101010+0100"
    Anonymizer(first, today=TODAY).anonymize_dataset(ds)
    assert str(ds.AcquisitionDateTime)[:8] == str(ds.StudyDate)


# --- dcmanon behaviour the issue requires ---------------------------------------------------


def test_nested_da_gets_the_same_offset_as_top_level() -> None:
    """A DA two sequence levels deep is shifted like a top-level DA (scope: the file's UIDs)."""
    context = {"StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "456", "SOPInstanceUID": "789"}
    ds = dataset(context)
    ds.StudyDate = "20150207"
    inner = Dataset()
    inner.StudyDate = "20150207"
    inner.SOPInstanceUID = "9.9.9"  # a nested UID must not change the scope
    middle = Dataset()
    middle.ContentSequence = Sequence([inner])
    ds.ContentSequence = Sequence([middle])
    anonymize(ds, "DA", {"dateShiftKey": "123", "dateShiftScope": "SopInstance"})
    expected = (dt.date(2015, 2, 7) + dt.timedelta(days=reference_date_shift("789", "123", 50)))
    assert ds.StudyDate == expected.strftime("%Y%m%d") == "20150309"
    assert ds.ContentSequence[0].ContentSequence[0].StudyDate == ds.StudyDate


def test_key_in_params_never_appears_in_an_error() -> None:
    """Error messages name the rule, but neither its key nor the value (README: keys never
    appear in messages)."""
    ds = Dataset()
    ds.StudyDate = "2021"
    config = parse_config({"rules": [{"tag": "DA", "method": "dateShift",
                                      "params": {"dateShiftKey": "s3cr3t-k3y"}}]})
    with pytest.raises(ValueFormatError) as caught:
        Anonymizer(config, today=TODAY).anonymize_dataset(ds)
    assert "s3cr3t-k3y" not in str(caught.value)
    assert "2021" not in str(caught.value)
