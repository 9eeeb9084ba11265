"""substitute against the reference's vectors (``vectors/substitute.json``).

Every case goes through the public path: ``parse_config`` → ``Anonymizer.anonymize_dataset`` on
a dataset built from the case, the case's settings given as ``defaultSettings.substitute``.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from dcmanon import Anonymizer, parse_config
from dcmanon.errors import UnsupportedVRError, ValidationError, ValueFormatError
from tests.conformance.vectors import (
    assert_each_case_taken_once,
    build_dataset,
    cases,
    parse_tag,
    require_reference,
)

VECTORS = "substitute.json"
SINGLE_VALUED = {"LT", "ST", "UT", "UR"}
INTEGER_VRS = {"US", "SS", "UL", "SL", "SV", "UV"}
FLOAT_VRS = {"FL", "FD"}
BINARY = {"OW": "<H", "OL": "<I", "OD": "<d", "OF": "<f"}
DEFAULT_INPUT = {
    # Cases without an input: any valid value of the VR (the vectors only fix the output).
    "AE": "TEST", "AS": "010Y", "CS": "0", "DA": "20200101", "DS": "53.000", "DT": "20200101",
    "IS": "10", "PN": "Name", "SH": "TEST", "TM": "120101.000", "UI": "12345",
    "FD": "12345", "FL": "12345", "SL": "12345", "SS": "12345", "UL": "12345", "US": "10",
    "OW": "10",
}


# --- which cases each test takes (every case is taken by exactly one; see the coverage test) --

GROUPS = {
    "valid": lambda c: c["id"].startswith("valid-"),
    "invalid_but_written": lambda c: c["id"].startswith("invalid-but-written-"),
    "non_numeric": lambda c: c["id"].startswith("non-numeric-"),
    "binary": lambda c: c["id"].startswith("binary-"),
    "at": lambda c: c["id"] == "AT",
    "unsupported": lambda c: c["id"].startswith("unsupported-"),
    "engine": lambda c: c["id"].startswith("engine-"),
    "deviation_params_leak": lambda c: c["id"] == "default-config-params-leak",
}


# --- helpers ---

def selector(case: dict[str, Any]) -> str:
    return case["tag"].split(")")[0] + ")"


def substitute_config(rule_selector: str, settings: dict[str, Any]) -> Any:
    return parse_config({"rules": [{"tag": rule_selector, "method": "substitute"}],
                         "defaultSettings": {"substitute": settings}})


def element_spec(case: dict[str, Any]) -> list[Any]:
    """``[tag, VR, values]`` of the case's input (its ``input``, else a default of the VR)."""
    vr = case["vr"]
    if "input_values" in case:
        text = "\\".join(str(v) for v in case["input_values"])
    else:
        text = case["input"] if "input" in case else DEFAULT_INPUT[vr]
    if vr in INTEGER_VRS:
        return [case["tag"], vr, [int(text)]]
    if vr in FLOAT_VRS:
        return [case["tag"], vr, [float(text)]]
    if vr in BINARY:
        return [case["tag"], vr, [text]]  # replaced below by packed bytes
    return [case["tag"], vr, [text] if vr in SINGLE_VALUED else text.split("\\")]


def dataset_for(case: dict[str, Any]) -> Dataset:
    tag_text, vr, values = element_spec(case)
    if vr in BINARY:
        ds = Dataset()
        tag = Tag(parse_tag(tag_text))
        number = float(values[0]) if vr in ("OD", "OF") else int(float(values[0]))
        ds[tag] = DataElement(tag, vr, struct.pack(BINARY[vr], number))
        return ds
    return build_dataset([[tag_text, vr, values]])


def written_text(ds: Dataset, tag: int) -> str:
    """The element's value as pydicom reads it back, as one string (values joined by ``\\``)."""
    element = ds[tag]
    value = element.value
    if value is None or value == "":
        return ""
    values = list(value) if isinstance(value, MultiValue | list) else [value]
    if element.VR in INTEGER_VRS:
        return "\\".join(str(int(v)) for v in values)
    if element.VR in FLOAT_VRS:
        return "\\".join(repr(float(v)).removesuffix(".0") for v in values)
    return "\\".join(str(v) for v in values)


def run(case: dict[str, Any], **options: bool) -> Dataset:
    ds = dataset_for(case)
    counts = Anonymizer(substitute_config(selector(case), case.get("settings", {})),
                        **options).anonymize_dataset(ds)
    assert counts == {"substitute": 1}
    return ds


# --- the vectors ---

@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["valid"]))
def test_valid_replacement_written(case: dict[str, Any]) -> None:
    """A valid replacement is written as given, and passes output validation."""
    ds = run(case, validate_output=True)
    tag = parse_tag(case["tag"])
    assert written_text(ds, tag) == case["expected_string"]
    assert case["vr"] == ds[tag].VR


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["invalid_but_written"]))
def test_invalid_replacement_written_without_validation(case: dict[str, Any]) -> None:
    ds = run(case)
    assert written_text(ds, parse_tag(case["tag"])) == case["expected_string_engine_mode"]


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["invalid_but_written"]))
def test_invalid_replacement_refused_by_output_validation(case: dict[str, Any]) -> None:
    """The reference refuses these values on an auto-validating dataset; the tool's analogue
    is --validateOutput, which refuses the dataset."""
    with pytest.raises(ValidationError) as caught:
        run(case, validate_output=True)
    assert caught.value.stage == "output"
    assert caught.value.vr == case["vr"]


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["non_numeric"]))
def test_unparsable_number_fails_the_element(case: dict[str, Any]) -> None:
    with pytest.raises(ValueFormatError) as caught:
        run(case)
    assert caught.value.vr == case["vr"]
    replacement = case["settings"].get("ReplaceWith", "Anonymous")
    assert replacement not in str(caught.value)


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["binary"]))
def test_binary_vr_gets_one_number(case: dict[str, Any]) -> None:
    ds = run(case, validate_output=True)
    element = ds[parse_tag(case["tag"])]
    assert case["vr"] == element.VR
    fmt = BINARY[case["vr"]]
    assert list(struct.unpack(fmt, bytes(element.value))) == case["expected_values"]


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["at"]))
def test_attribute_tag_parsed(case: dict[str, Any]) -> None:
    tag = Tag(parse_tag(case["tag"]))
    ds = Dataset()
    ds[tag] = DataElement(tag, "AT", Tag(parse_tag(case["input_values"][0])))
    Anonymizer(substitute_config(selector(case), case["settings"]),
               validate_output=True).anonymize_dataset(ds)
    assert ds[tag].VR == "AT"
    assert [Tag(ds[tag].value)] == [Tag(parse_tag(v)) for v in case["expected_values"]]


def _unsupported_dataset(vr: str) -> tuple[Dataset, str]:
    if vr == "SQ":
        return build_dataset([["(0040,0100)", "SQ", [[["(0040,0009)", "SH", ["S1"]]]]]]), "SQ"
    ds = Dataset()
    if vr == "OB":
        ds[0x7FE00010] = DataElement(0x7FE00010, "OB", b"test")
    else:
        element = DataElement(0x7FE00010, "OB", encapsulate([b"frag", b"ment"]))
        element.is_undefined_length = True
        ds[0x7FE00010] = element
    return ds, "OB"


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["unsupported"]))
def test_unsupported_vr_fails(case: dict[str, Any]) -> None:
    ds, vr = _unsupported_dataset(case["vr"])
    config = substitute_config(vr, {"replaceWith": "1"})
    with pytest.raises(UnsupportedVRError) as caught:
        Anonymizer(config).anonymize_dataset(ds)
    assert caught.value.vr == vr


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["engine"]))
def test_engine_with_reference_config(case: dict[str, Any]) -> None:
    reference = require_reference()
    config = parse_config((reference / "data/core/configs/configuration-test-engine.json")
                          .read_text(encoding="utf-8"))
    ds = build_dataset([[case["tag"], case["vr"], case["input_values"]]])
    Anonymizer(config, validate_output=True).anonymize_dataset(ds)
    assert written_text(ds, parse_tag(case["tag"])) == "\\".join(case["expected_values"])


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["deviation_params_leak"]))
def test_deviation_substitute_params_do_not_leak_into_later_rules(
        case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Reference: rule #233's params ``{"replaceWith": "ANONY"}`` overwrite the shared default,
    so VerifyingOrganization also gets ``ANONY``. dcmanon: params stay with their rule, and the
    later rule writes the default setting's ``ANONYMOUS``."""
    monkeypatch.delenv("DCMANON_KEY", raising=False)
    reference = require_reference()
    config = parse_config((reference / "configuration.json").read_text(encoding="utf-8-sig"))
    ds = build_dataset(case["input_dataset"])
    Anonymizer(config).anonymize_dataset(ds)
    got = {tag: written_text(ds, parse_tag(tag)) for tag, _, _ in case["input_dataset"]}
    reference_output = {tag: values[0] for tag, _, values in case["expected_dataset"]}
    assert reference_output == {"(300A,0002)": "ANONY", "(0040,A027)": "ANONY"}
    assert got == {"(300A,0002)": "ANONY", "(0040,A027)": "ANONYMOUS"}


def test_every_vector_case_is_exercised() -> None:
    assert_each_case_taken_once(VECTORS, GROUPS)


# --- beyond the vectors: number parsing as fo-dicom does it, and failing closed ---

def _one(vr: str, tag: str, value: Any, replace_with: str) -> Dataset:
    ds = build_dataset([[tag, vr, [value]]])
    Anonymizer(substitute_config(tag, {"replaceWith": replace_with})).anonymize_dataset(ds)
    return ds


@pytest.mark.parametrize(("vr", "tag", "text"), [
    ("US", "(0008,1196)", "65536"),
    ("US", "(0008,1196)", "-1"),
    ("SS", "(0028,1041)", "32768"),
    ("UL", "(0040,DB73)", "4294967296"),
    ("SL", "(0018,6039)", "-2147483649"),
])
def test_number_out_of_range_fails_the_element(vr: str, tag: str, text: str) -> None:
    """.NET's parse overflows; dcmanon fails the element instead of crashing the run."""
    with pytest.raises(ValueFormatError):
        _one(vr, tag, 1, text)


@pytest.mark.parametrize(("vr", "tag", "text"), [
    ("US", "(0008,1196)", "1_000"),
    ("US", "(0008,1196)", "١٢"),  # Arabic-Indic digits: Python's int takes them, .NET does not
    ("US", "(0008,1196)", "1.0"),
    ("FD", "(0012,0052)", "1_0.5"),
    ("FD", "(0012,0052)", "inf"),
    ("FD", "(0012,0052)", "."),
])
def test_python_only_number_syntax_is_refused(vr: str, tag: str, text: str) -> None:
    with pytest.raises(ValueFormatError):
        _one(vr, tag, 1, text)


@pytest.mark.parametrize(("vr", "tag", "text", "expected"), [
    ("US", "(0008,1196)", " +20 ", 20),
    ("SS", "(0028,1041)", "-0", 0),
    ("FD", "(0012,0052)", "1,000.5", 1000.5),
    ("FD", "(0012,0052)", "-1.5e3", -1500.0),
    ("FD", "(0012,0052)", ".5", 0.5),
    ("FD", "(0012,0052)", "-Infinity", float("-inf")),
    ("FL", "(0010,9431)", "1e40", float("inf")),  # beyond float: .NET Core gives infinity
])
def test_dotnet_number_syntax_is_accepted(vr: str, tag: str, text: str, expected: float) -> None:
    ds = _one(vr, tag, 1, text)
    assert ds[parse_tag(tag)].value == expected


def test_backslash_splits_only_where_the_tag_holds_several_values() -> None:
    """fo-dicom splits on ``\\`` only when the dictionary VM allows more than one value."""
    ds = _one("US", "(0040,A0B0)", 1, "1\\2\\\\ ")  # ReferencedWaveformChannels, VM 2-2n
    assert list(ds[0x0040A0B0].value) == [1, 2]
    with pytest.raises(ValueFormatError):
        _one("US", "(0008,1196)", 1, "1\\2")  # WarningReason, VM 1


def test_blank_replacement_empties_a_numeric_element() -> None:
    ds = _one("US", "(0040,A0B0)", 1, "")
    assert ds[0x0040A0B0].value in (None, b"", [])


def test_attribute_tags_split_on_backslash() -> None:
    tag = Tag(0x00280009)  # FrameIncrementPointer, VM 1-n
    ds = Dataset()
    ds[tag] = DataElement(tag, "AT", [Tag(0x00181063)])
    Anonymizer(substitute_config("(0028,0009)", {"replaceWith": "(0018,1063)\\00181065"})
               ).anonymize_dataset(ds)
    assert [Tag(t) for t in ds[tag].value] == [Tag(0x00181063), Tag(0x00181065)]


def test_ov_is_unsupported() -> None:
    ds = Dataset()
    ds[0x00720081] = DataElement(0x00720081, "OV", struct.pack("<Q", 1))
    with pytest.raises(UnsupportedVRError):
        Anonymizer(substitute_config("(0072,0081)", {"replaceWith": "1"})).anonymize_dataset(ds)


def test_out_of_range_replacement_fails_the_file_not_the_run(tmp_path: Path) -> None:
    source = tmp_path / "in.dcm"
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.save_as(source)
    config = substitute_config("Rows", {"replaceWith": "70000"})
    result = Anonymizer(config).anonymize_file(source, tmp_path / "out.dcm")
    assert result.status == "failed"
    assert result.error_class == "ValueFormatError"
    assert not (tmp_path / "out.dcm").exists()
