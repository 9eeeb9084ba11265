"""The reference's perturb vectors (vectors/perturb.json), run against dcmanon.

Perturbation is random (the reference's RNG is not seedable either), so every range case is
drawn many times: each draw must lie in the inclusive range and have at most ``roundTo``
decimal places. Processor cases go through ``parse_config`` + ``Anonymizer``; the
Common-library cases call :func:`dcmanon.methods.perturb.noisy` / ``perturb`` with the DICOM VR
of the .NET type (int → SL, uint → UL, short → SS, ushort → US, long → SV, ulong → UV,
string → DS text, decimal → the number and its DS text, ages → AS).
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from typing import Any

import pytest
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from dcmanon import Anonymizer, parse_config
from dcmanon.config.settings import PerturbSettings
from dcmanon.dicom.values import ElementData
from dcmanon.errors import ConfigError, UnsupportedVRError, ValueFormatError
from dcmanon.methods.base import FileContext
from dcmanon.methods.perturb import format_ds, noisy, perturb
from tests.conformance.vectors import cases, parse_tag

pytestmark = pytest.mark.conformance

DRAWS = 200
TODAY = dt.date(2025, 6, 1)
STRUCT = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q",
          "UV": "Q", "OW": "H", "OL": "I", "OF": "f", "OD": "d"}
BINARY = frozenset({"OW", "OL", "OF", "OD"})
FLOATS = frozenset({"FL", "FD", "OF", "OD"})
TEXT = frozenset({"AS", "DS", "IS"})
TAG_FOR_VR = {
    "AE": 0x00080054, "CS": 0x00080060, "SH": 0x00080050, "UI": 0x00200052, "PN": 0x00100010,
    "UC": 0x00080119, "LO": 0x00080070, "UT": 0x0008030E, "ST": 0x00080081, "UR": 0x0008010E,
    "DT": 0x0008002A, "DA": 0x00080020, "TM": 0x00080030, "OB": 0x00420011, "SQ": 0x00400275,
    "OW (encapsulated)": 0x7FE00010,
}
SAMPLE_TEXT = {"AE": "STATION1", "CS": "CT", "SH": "ACC1", "UI": "1.2.3.4", "PN": "Doe^Jane",
               "UC": "code", "LO": "text", "UT": "text", "ST": "text", "UR": "http://a.b/c",
               "DT": "20200101120000", "DA": "20200101", "TM": "121212"}
TAG_FOR_FLOAT = {"FL": 0x00109431, "OF": 0x7FE00008, "FD": 0x00120052}
LIBRARY_VR = {"int": "SL", "uint": "UL", "short": "SS", "ushort": "US", "long": "SV",
              "ulong": "UV"}


def decimals(number: float) -> int:
    """Decimal places of a number as written by format_ds (the shortest exact text)."""
    text = format_ds(number)
    return len(text.split(".")[1]) if "." in text else 0


def has_places(value: float, places: int, vr: str = "FD") -> bool:
    """Whether ``value`` is rounded to ``places`` (float32 values within their precision)."""
    tolerance = 1e-6 if vr in ("FL", "OF") else 1e-12
    return math.isclose(value, round(value, places), rel_tol=tolerance, abs_tol=1e-12)


def build(tag: int, vr: str, values: list[Any]) -> Dataset:
    ds = Dataset()
    if vr in TEXT:
        ds[tag] = DataElement(tag, vr, "\\".join(str(v) for v in values))
    elif vr in BINARY:
        ds[tag] = DataElement(tag, vr, struct.pack(f"<{len(values)}{STRUCT[vr]}", *(
            float(v) if vr in FLOATS else int(v) for v in values)))
    else:
        numbers = [float(v) if vr in FLOATS else int(v) for v in values]
        ds[tag] = DataElement(tag, vr, numbers[0] if len(numbers) == 1 else numbers)
    return ds


def read(ds: Dataset, tag: int, vr: str) -> list[Any]:
    """The written values: strings for AS/DS/IS, numbers for the binary VRs."""
    element = ds.get_item(tag)
    assert vr == element.VR
    data = element.value
    assert isinstance(element, RawDataElement)  # rewritten by dcmanon, bytes as written
    if vr in TEXT:
        text = data.decode("ascii").rstrip(" ")
        return text.split("\\") if text else []
    size = struct.calcsize(STRUCT[vr])
    return list(struct.unpack(f"<{len(data) // size}{STRUCT[vr]}", data))


def anonymizer(tag: int, settings: dict[str, Any]) -> Anonymizer:
    rule = {"tag": f"({tag >> 16:04X},{tag & 0xFFFF:04X})", "method": "perturb"}
    config = parse_config({"rules": [rule], "defaultSettings": {"perturb": settings}})
    return Anonymizer(config, today=TODAY)


# --- processor cases ------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("perturb.json", lambda c: c["kind"] == "range"
                                       and "level" not in c))
def test_processor_range(case: dict[str, Any]) -> None:
    tag, vr = parse_tag(case["tag"]), case["vr"]
    settings = case["settings"]
    places = int(settings.get("roundTo", 2))
    engine = anonymizer(tag, settings)
    results = []
    for _ in range(DRAWS):
        ds = build(tag, vr, case["input_values"])
        engine.anonymize_dataset(ds)
        (value,) = read(ds, tag, vr)
        results.append(value)
    if vr == "AS":
        low, high = case["expected_range_number"]
        for value in results:
            assert len(value) == 4 and value.endswith(case["expected_unit"])
            assert low <= int(value[:3]) <= high
        return
    low, high = case["expected_range"]
    for value in results:
        number = float(value) if vr in TEXT else value
        assert low <= number <= high
        if vr == "IS" or vr not in FLOATS | {"DS"}:
            assert float(number).is_integer()
        elif vr == "DS":
            assert len(value.partition(".")[2]) <= places
        else:
            assert has_places(number, places, vr)
    assert len(set(results)) > 1  # really perturbed, not copied
    if vr == "UL":  # x + noise < 0 for ~38 % of draws: unsigned results clamp to 0, no wrap
        assert min(results) == 0


def test_multi_valued_element_is_perturbed_value_by_value() -> None:
    tag = parse_tag("(0008,2130) EventElapsedTimes")
    engine = anonymizer(tag, {"span": "2", "rangeType": "Fixed", "roundTo": "1"})
    seen = set()
    for _ in range(DRAWS):
        ds = build(tag, "DS", ["10", "1000"])
        engine.anonymize_dataset(ds)
        first, second = (float(v) for v in read(ds, tag, "DS"))
        assert 9 <= first <= 11 and 999 <= second <= 1001
        seen.add(round(second - first, 1))
    assert len(seen) > 1  # independent noise per value


def test_empty_element_is_left_as_it_is() -> None:
    tag = parse_tag("(0010,1030) PatientWeight")
    ds = Dataset()
    ds[tag] = DataElement(tag, "DS", None)
    anonymizer(tag, {}).anonymize_dataset(ds)
    assert ds[tag].VR == "DS" and ds[tag].value in (None, "")


# --- unsupported VRs ------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("perturb.json", lambda c: c["kind"] == "error"
                                       and "vr" in c))
def test_unsupported_vr(case: dict[str, Any]) -> None:
    vr = case["vr"]
    tag = TAG_FOR_VR[vr]
    ds = Dataset()
    if vr == "SQ":
        item = Dataset()
        item.PatientWeight = "70"
        ds[tag] = DataElement(tag, "SQ", Sequence([item]))
    elif vr == "OB":
        ds[tag] = DataElement(tag, "OB", b"\x01\x02")
    elif vr == "OW (encapsulated)":
        element = DataElement(tag, "OW", encapsulate([b"\x01\x02", b"\x03\x04"]))
        element.is_undefined_length = True
        ds[tag] = element
    else:
        ds[tag] = DataElement(tag, vr, SAMPLE_TEXT[vr])
    with pytest.raises(UnsupportedVRError) as caught:
        anonymizer(tag, {}).anonymize_dataset(ds)
    assert caught.value.vr == vr.split()[0]


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("perturb.json",
                                       lambda c: c["id"].startswith("settings-invalid-")))
def test_invalid_settings(case: dict[str, Any]) -> None:
    """Refused when the configuration is read, before any file is touched."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"rules": [{"tag": "PatientWeight", "method": "perturb"}],
                      "defaultSettings": {"perturb": case["settings"]}})
    (name,) = case["settings"]
    assert name in str(caught.value)  # named as the user wrote it


# --- Common library -------------------------------------------------------------------------


def _library(case: dict[str, Any]) -> bool:
    return str(case.get("level", "")).startswith("function")


def draw_library(case: dict[str, Any], settings: PerturbSettings) -> tuple[float, int]:
    """One perturbation of the case's input: (number, decimal places as written)."""
    kind, given = case["value_type"], case["input"]
    if kind == "decimal":
        number = noisy(float(given), settings)
        return number, decimals(number)
    if kind == "string":
        data = ElementData(0x00101030, "DS", texts=(given,))
        (text,) = perturb(data, settings, FileContext()).texts or ()
        return float(text), len(text.partition(".")[2])
    if kind.startswith("age-"):
        unit = kind.split("-")[1][0].upper()
        data = ElementData(0x00101010, "AS", texts=(f"{given:03d}{unit}",))
        (text,) = perturb(data, settings, FileContext()).texts or ()
        assert text.endswith(unit)
        return int(text[:3]), 0
    vr = LIBRARY_VR[kind]
    (number,) = perturb(ElementData(0x00000000, vr, numbers=(given,)), settings,
                        FileContext()).numbers or ()
    assert isinstance(number, int)
    return number, 0


@pytest.mark.parametrize("case", cases("perturb.json", _library))
def test_library_range(case: dict[str, Any]) -> None:
    settings = PerturbSettings.from_json(case["settings"])
    assert isinstance(settings, PerturbSettings)
    low, high = case["expected_range"]
    for _ in range(DRAWS):
        number, places = draw_library(case, settings)
        assert low <= number <= high
        assert places <= case["max_decimal_places"]


# --- dcmanon behaviour the reference's rules imply --------------------------------------------


def test_age_below_zero_clamps_to_zero_like_unsigned_numbers() -> None:
    """The AS number is unsigned: a negative draw becomes 0 (not its absolute value)."""
    tag = parse_tag("(0010,1010) PatientAge")
    engine = anonymizer(tag, {"span": 100, "rangeType": "Fixed", "roundTo": 0})
    results = []
    for _ in range(DRAWS):
        ds = build(tag, "AS", ["010Y"])
        engine.anonymize_dataset(ds)
        (value,) = read(ds, tag, "AS")
        results.append(value)
    assert all(0 <= int(v[:3]) <= 60 and v.endswith("Y") for v in results)
    # 10 + U[-50, 50] < 0 for 40 % of draws; all of them must be 000Y.
    assert results.count("000Y") > DRAWS // 5


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1_000", "0x10", "1e400", "12,5"])
def test_ds_that_is_not_a_decimal_number_fails(text: str) -> None:
    tag = parse_tag("(0010,1030) PatientWeight")
    ds = Dataset()
    raw = text.encode() + b" " * (len(text) % 2)  # as read from a file
    ds[tag] = RawDataElement(Tag(tag), "DS", len(raw), raw, 0, False, True)
    with pytest.raises(ValueFormatError) as caught:
        anonymizer(tag, {}).anonymize_dataset(ds)
    assert text not in str(caught.value)


@pytest.mark.parametrize("vr", ["FL", "OF", "FD"])
def test_float_results_stay_finite_in_their_type(vr: str) -> None:
    """Noise near the type's largest value cannot overflow to infinity (or fail the file)."""
    big = 3.4e38 if vr in ("FL", "OF") else 1.79e308
    tag = TAG_FOR_FLOAT[vr]
    engine = anonymizer(tag, {"span": 1, "rangeType": "Proportional"})
    for _ in range(20):
        ds = build(tag, vr, [big])
        engine.anonymize_dataset(ds)
        (value,) = read(ds, tag, vr)
        assert math.isfinite(value) and big / 2 <= value


@pytest.mark.parametrize("value", [-1.234567891e-100, 1e20, -123456789.123456, 1e-7, 0.1 + 0.2])
def test_ds_text_is_valid_ds(value: float) -> None:
    text = format_ds(value)
    assert len(text) <= 16
    assert math.isclose(float(text), value, rel_tol=1e-8)
