"""The reference's engine vectors (vectors/engine.json), run against dcmanon.

Engine cases run a configuration over a built dataset and compare what pydicom reads back from
the bytes dcmanon wrote. Rule-level cases (visited items) are expressed with first-match-wins:
an earlier ``keep`` rule for the pre-visited elements. Deviating cases (README, "Deviations
from the reference") are excluded from the conformance tests and asserted as dcmanon behaviour
by ``test_deviation_...`` tests. The last part checks the engine on real files: implicit VR,
big endian, private creators, multi-valued values, character sets.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_fragments
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    SecondaryCaptureImageStorage,
)

from dcmanon import Anonymizer, load_config, parse_config
from dcmanon.config.selectors import ElementRef
from dcmanon.dicom.walk import iter_refs
from dcmanon.errors import ConfigError, UnsupportedVRError, ValidationError
from dcmanon.header.engine import Plan
from dcmanon.keys import reference_date_shift
from dcmanon.testing import PRIVATE_CREATOR, make_instance, make_patient
from tests.conformance.vectors import REFERENCE, build_dataset, cases, parse_tag

pytestmark = pytest.mark.conformance

VECTORS = "engine.json"
TODAY = dt.date(2025, 6, 1)

DEVIATING = {
    "no-recursion-into-sequences": "rules apply at every depth",
    "engine-custom-processor": "library-only custom methods do not exist in dcmanon",
}


def by_id(*ids: str) -> list[Any]:
    return cases(VECTORS, lambda c: c["id"] in ids)


def reread(ds: Dataset, syntax: Any = ExplicitVRLittleEndian) -> Dataset:
    """What a reader gets from the bytes dcmanon would write."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=syntax.is_implicit_VR,
                     little_endian=syntax.is_little_endian)
    buffer.seek(0)
    return pydicom.dcmread(buffer, force=True)


def values(ds: Dataset, tag: int) -> list[Any]:
    """An element's values as plain Python (strings, numbers, items as ``values`` notation)."""
    element = ds[tag]
    value = element.value
    if element.VR == "SQ":
        return [[[f"({int(e.tag) >> 16:04X},{int(e.tag) & 0xFFFF:04X})", e.VR,
                  values(item, int(e.tag))] for e in item] for item in value]
    if value is None or value == "":
        return []
    items = list(value) if isinstance(value, MultiValue | list) else [value]
    return [v if isinstance(v, int | float) else str(v) for v in items]


def assert_dataset(ds: Dataset, expected: list[list[Any]]) -> None:
    assert [int(t) for t in list(ds.keys())] == sorted(parse_tag(t) for t, _, _ in expected)
    for tag_text, vr, expected_values in expected:
        tag = parse_tag(tag_text)
        assert vr == ds[tag].VR, tag_text
        assert values(ds, tag) == expected_values, tag_text


def _config(case: dict[str, Any]) -> Any:
    return load_config(REFERENCE / case["config"])


@pytest.mark.parametrize("case", by_id("engine-test-engine", "engine-first-rule-wins"))
def test_engine_output(case: dict[str, Any]) -> None:
    anonymizer = Anonymizer(_config(case), validate_output=case["options"]["validateOutput"])
    ds = build_dataset(case["input_dataset"])
    anonymizer.anonymize_dataset(ds)
    assert_dataset(reread(ds), case["expected_dataset"])


@pytest.mark.parametrize("case", by_id("engine-validate-output-fails"))
def test_validate_output_fails(case: dict[str, Any]) -> None:
    ds = build_dataset(case["input_dataset"])
    with pytest.raises(ValidationError) as caught:
        Anonymizer(_config(case), validate_output=True).anonymize_dataset(ds)
    assert caught.value.stage == "output"


@pytest.mark.parametrize("case", by_id("engine-validate-input-fails"))
def test_validate_input_fails_before_anything_changes(case: dict[str, Any]) -> None:
    ds = build_dataset(case["input_dataset"])
    before = copy.deepcopy(ds)
    with pytest.raises(ValidationError) as caught:
        Anonymizer(_config(case), validate_input=True).anonymize_dataset(ds)
    error = caught.value
    assert (error.stage, error.vr) == ("input", "AS")
    assert error.element.startswith("(0010,1010) PatientAge")
    assert ds == before  # nothing was anonymized


def test_deviation_validation_errors_do_not_print_the_value() -> None:
    """The reference's message is ``Content "invalid" does not validate VR AS: ...``."""
    ds = Dataset()
    ds.PatientAge = "Q7X9Z"
    with pytest.raises(ValidationError) as caught:
        Anonymizer(parse_config({"rules": [{"tag": "AS", "method": "keep"}]}),
                   validate_input=True).anonymize_dataset(ds)
    assert "Q7X9Z" not in str(caught.value)
    assert "(0010,1010) PatientAge" in str(caught.value)


def _visited_config(case: dict[str, Any]) -> dict[str, Any]:
    keeps = [{"tag": tag, "method": "keep"} for tag in case["pre_visited"]]
    return {"rules": [*keeps, {"tag": case["selector"], "method": case["method"]}]}


@pytest.mark.parametrize("case", cases(VECTORS, lambda c: c["id"].startswith("visited-")))
def test_visited_elements_are_not_located_again(case: dict[str, Any]) -> None:
    config = parse_config(_visited_config(case))
    plan = Plan(config)
    last = config.rules[-1]
    ds = build_dataset(case["input_dataset"])
    located = [int(t) for t in list(ds.keys())
               if plan.rule_for(ElementRef(int(t), ds[t].VR)) is last]
    assert located == [parse_tag(t) for t in case["expected_located"]]
    # And the engine acts on exactly those.
    before = copy.deepcopy(ds)
    Anonymizer(config).anonymize_dataset(ds)
    after = reread(ds)
    for tag in list(before.keys()):
        changed = values(after, int(tag)) != values(before, int(tag))
        assert changed == (int(tag) in located), tag


UNSUPPORTED_ELEMENTS = {  # an element each selector locates, of a VR perturb does not take
    "(0008,001x)": ["(0008,0013)", "TM", ["121212.555"]],
    "PatientName": ["(0010,0010)", "PN", ["TestName"]],
    "PN": ["(0008,0090)", "PN", ["TestName2"]],
}


@pytest.mark.parametrize("case", cases(VECTORS, lambda c: c["id"].startswith("unsupported-")))
def test_unsupported_vr_fails(case: dict[str, Any]) -> None:
    element = UNSUPPORTED_ELEMENTS[case["selector"]]
    ds = build_dataset([element])
    config = parse_config({"rules": [{"tag": case["selector"], "method": case["method"]}],
                           "defaultSettings": {"perturb": case["settings"]}})
    with pytest.raises(UnsupportedVRError) as caught:
        Anonymizer(config).anonymize_dataset(ds)
    assert caught.value.vr == element[1]
    assert caught.value.element.startswith(element[0])
    assert "perturb" in caught.value.rule


@pytest.mark.parametrize("case", by_id("private-dates-survive-default"))
def test_private_dates_survive_the_default_configuration(case: dict[str, Any]) -> None:
    config = load_config(REFERENCE / "configuration.json")
    ds = build_dataset(case["input_dataset"])
    ds.SeriesInstanceUID = case["context"]["SeriesInstanceUID"]
    Anonymizer(config, today=TODAY).anonymize_dataset(ds)
    out = reread(ds)
    shift = reference_date_shift(case["context"]["SeriesInstanceUID"], "123", 50)
    shifted = (dt.date(2000, 1, 1) + dt.timedelta(days=shift)).strftime("%Y%m%d")
    private = [[f"(0029,{int(t) & 0xFFFF:04X})", out[t].VR, values(out, int(t))]
               for t in list(out.keys()) if int(t) >> 16 == 0x0029]
    assert private == [["(0029,1001)", "DA", [shifted]]]


# --- deviations -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", by_id("no-recursion-into-sequences"))
def test_deviation_rules_apply_inside_sequences(case: dict[str, Any]) -> None:
    ds = build_dataset(case["input_dataset"])
    Anonymizer(parse_config(case["config"])).anonymize_dataset(ds)
    out = reread(ds)
    assert values(out, 0x00100010) == []
    nested = out[0x00081032].value[0]
    assert values(nested, 0x0040A123) == []  # the reference leaves "Nested^Name"
    assert values(nested, 0x00080104) == ["x"]


@pytest.mark.parametrize("case", by_id("engine-custom-processor"))
def test_deviation_custom_processor_methods_are_not_supported(case: dict[str, Any]) -> None:
    """The reference lets library users register methods (here ``mask``); dcmanon has nine."""
    with pytest.raises(ConfigError) as caught:
        load_config(REFERENCE / case["config"])
    assert [p.location for p in caught.value.problems] == ["rules[0].method"]
    assert '"mask"' in caught.value.problems[0].message


# --- the engine on real files ------------------------------------------------------------------


HASH_KEY = {"cryptoHashKey": "k"}


def _file(name: str) -> Dataset:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed")
    return pydicom.dcmread(path)


def _as_written(ds: Dataset) -> Dataset:
    """Save with the file's own transfer syntax (as the CLI does) and read back."""
    buffer = io.BytesIO()
    ds.save_as(buffer)
    buffer.seek(0)
    return pydicom.dcmread(buffer, force=True)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_implicit.dcm",
                                  "MR_small_bigendian.dcm"])
@pytest.mark.parametrize("converted", [False, True], ids=["raw", "converted"])
def test_values_round_trip_in_every_encoding(name: str, converted: bool) -> None:
    """Numbers, multi-valued strings and dates come out right in the file's own encoding,
    whether pydicom had already converted the elements (validation does) or not."""
    ds = _file(name)
    if converted:
        for _ in ds:  # iterating converts every element
            pass
    rows, image_type = ds.Rows, list(ds.ImageType)
    pixels = bytes(ds.PixelData)
    config = parse_config({"rules": [
        {"tag": "Rows", "method": "perturb", "params": {"span": 0, "rangeType": "Fixed"}},
        {"tag": "Columns", "method": "substitute", "params": {"replaceWith": "7"}},
        {"tag": "PixelData", "method": "perturb", "params": {"span": 0, "rangeType": "Fixed"}},
        {"tag": "ImageType", "method": "cryptoHash"},
        {"tag": "StudyDate", "method": "dateShift", "params": {"dateShiftKey": "k"}},
    ], "parameters": HASH_KEY})
    Anonymizer(config, today=TODAY, pixels="off").anonymize_dataset(ds)  # as the reference
    out = _as_written(ds)
    assert (out.Rows, out.Columns) == (rows, 7)
    assert bytes(out.PixelData) == pixels
    assert len(out.ImageType) == len(image_type) == 3
    assert all(len(v) == 64 for v in out.ImageType)
    assert out.ImageType[0] != out.ImageType[1]


def test_big_endian_number_written_by_a_method_is_read_back() -> None:
    ds = _file("MR_small_bigendian.dcm")
    _ = ds.Rows  # converted, as validation would leave it
    config = parse_config({"rules": [
        {"tag": "Rows", "method": "substitute", "params": {"replaceWith": "300"}},
        {"tag": "SmallestImagePixelValue", "method": "substitute",
         "params": {"replaceWith": "1"}}]})
    Anonymizer(config, pixels="off").anonymize_dataset(ds)  # as the reference
    out = _as_written(ds)
    assert out.Rows == 300
    assert out.SmallestImagePixelValue == 1


def _instance(syntax: Any) -> Dataset:
    """The synthetic instance written in ``syntax`` and read back."""
    ds = make_instance(make_patient(0))
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=syntax.is_implicit_VR,
                     little_endian=syntax.is_little_endian)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                    ExplicitVRBigEndian], ids=lambda s: s.name)
def test_private_element_by_creator_in_every_encoding(syntax: Any) -> None:
    ds = _instance(syntax)
    name = str(ds[0x00091001].value)
    config = parse_config({"rules": [
        {"tag": f"(0009,xx01:{PRIVATE_CREATOR})", "method": "cryptoHash"}],
        "parameters": HASH_KEY})
    Anonymizer(config).anonymize_dataset(ds)
    out = _as_written(ds)
    assert name.encode() not in bytes(out[0x00091001].value if isinstance(
        out[0x00091001].value, bytes) else str(out[0x00091001].value).encode())
    assert str(out[0x00090010].value) == PRIVATE_CREATOR
    assert float(out[0x00091002].value) > 30  # the DS of the block is untouched


def test_implicit_vr_private_elements_are_un_and_creators_lo() -> None:
    """As fo-dicom reads an implicit VR file; the same whether pydicom converted them or not."""
    for converted in (False, True):
        ds = _instance(ImplicitVRLittleEndian)
        if converted:
            for _ in ds:
                pass
        vrs = {tag: vr for _, tag, vr in iter_refs(ds) if tag >> 16 == 0x0009}
        assert vrs == {0x00090010: "LO", 0x00091001: "UN", 0x00091002: "UN"}


def test_removing_a_creator_first_does_not_hide_its_block_from_later_rules() -> None:
    """The creator (0009,0010) comes first in tag order and is removed as unmatched; the
    element of its block that a creator rule keeps must still be recognised."""
    ds = make_instance(make_patient(0))
    config = parse_config({"rules": [{"tag": f"(0009,xx01:{PRIVATE_CREATOR})", "method": "keep"}],
                           "unmatched": "remove"})
    Anonymizer(config).anonymize_dataset(ds)
    assert [int(t) for t in list(ds.keys())] == [0x00091001]


def test_private_sequence_selected_by_creator_in_a_path() -> None:
    ds = Dataset()
    block = ds.private_block(0x0011, "ACME SEQ 1.0", create=True)
    item = Dataset()
    item.PatientName = "Nested^Private"
    item.PatientID = "ID-123"
    block.add_new(0x01, "SQ", Sequence([item]))
    config = parse_config({"rules": [
        {"tag": "(0011,xx01:ACME SEQ 1.0).PatientName", "method": "redact"}]})
    Anonymizer(config).anonymize_dataset(ds)
    out = reread(ds)
    nested = out[0x00111001].value[0]
    assert values(nested, 0x00100010) == []
    assert values(nested, 0x00100020) == ["ID-123"]


def test_encapsulated_fragments_exclude_the_offset_table() -> None:
    frames = [b"\x01\x02\x03\x04", b"\x05\x06"]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    ds.add_new(0x7FE00010, "OB", encapsulate(frames, has_bot=True))
    ds[0x7FE00010].is_undefined_length = True
    config = parse_config({"rules": [{"tag": "PixelData", "method": "cryptoHash"}],
                           "parameters": HASH_KEY})
    Anonymizer(config).anonymize_dataset(ds)
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=False, little_endian=True)
    buffer.seek(0)
    out = pydicom.dcmread(buffer, force=True)
    items = list(generate_fragments(out.PixelData))
    assert items[0] == b""  # an empty offset table, then one digest per fragment
    assert [len(f) for f in items[1:]] == [32, 32]


def test_character_set_of_the_dataset_and_of_an_item() -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstitutionName = "Cafe"
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 192"
    item.PersonName = "Name"
    ds.ContentSequence = Sequence([item])
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.3"
    ds.file_meta = meta
    ds = _as_written(ds)
    config = parse_config({"rules": [
        # a rule that rewrites the character set itself must not change how others are written
        {"tag": "SpecificCharacterSet", "method": "redact"},
        {"tag": "InstitutionName", "method": "substitute", "params": {"replaceWith": "Hôpital"}},
        {"tag": "PersonName", "method": "substitute", "params": {"replaceWith": "Ωμέγα^Ψ"}}]})
    Anonymizer(config).anonymize_dataset(ds)
    assert ds.get_item(0x00080080).value.rstrip(b" ") == "Hôpital".encode("latin-1")
    item_raw = ds.ContentSequence[0].get_item(0x0040A123).value
    assert item_raw.rstrip(b" ") == "Ωμέγα^Ψ".encode()


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                    ExplicitVRBigEndian], ids=lambda s: s.name)
def test_attribute_tag_values_keep_their_byte_order(syntax: Any) -> None:
    ds = Dataset()
    ds.FrameIncrementPointer = [0x00181063, 0x00181065]  # AT, multi-valued
    ds.DimensionIndexPointer = 0x00209157
    ds = reread(ds, syntax)
    config = parse_config({"rules": [
        {"tag": "FrameIncrementPointer", "method": "keep"},
        {"tag": "DimensionIndexPointer", "method": "substitute",
         "params": {"replaceWith": "(0020,9128)"}}]})
    Anonymizer(config).anonymize_dataset(ds)
    out = reread(ds, syntax)
    assert list(out.FrameIncrementPointer) == [0x00181063, 0x00181065]
    assert out.DimensionIndexPointer == 0x00209128
