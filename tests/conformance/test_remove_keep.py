"""The reference's remove and keep vectors (vectors/remove_keep.json), run against dcmanon.

``remove`` deletes the element whatever its VR and value (values are never parsed); ``keep``
marks an element as handled so later rules skip it. No case deviates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence

from dcmanon import Anonymizer, load_config, parse_config
from tests.conformance.vectors import REFERENCE, build_dataset, cases, parse_tag

pytestmark = pytest.mark.conformance

VECTORS = "remove_keep.json"
NUMBER_VRS = {"FD": float, "FL": float, "SL": int, "SS": int, "UL": int, "US": int}
WITNESS = ["(0020,0013)", "IS", ["1"]]
"""An element no rule selects: it must come through untouched."""


def typed(vr: str, values: list[str]) -> list[Any]:
    convert = NUMBER_VRS.get(vr)
    return [convert(v) for v in values] if convert else values


def remove(ds: Dataset, selector: str) -> dict[str, int]:
    return Anonymizer(parse_config({"rules": [{"tag": selector, "method": "remove"}]})
                      ).anonymize_dataset(ds)


@pytest.mark.parametrize("case", cases(VECTORS, lambda c: c["method"] == "remove" and "tag" in c))
def test_remove_per_vr(case: dict[str, Any]) -> None:
    tag_text = case["tag"].split(")")[0] + ")"
    ds = build_dataset([[tag_text, case["vr"], typed(case["vr"], case["input_values"])],
                        WITNESS])
    assert remove(ds, tag_text) == {"remove": 1, "keep": 1}
    assert parse_tag(tag_text) not in ds
    assert ds.InstanceNumber == 1


def _binary_dataset(vr: str) -> tuple[Dataset, int]:
    ds = build_dataset([WITNESS])
    if vr == "OB":
        tag = 0x00420011  # EncapsulatedDocument
        ds[tag] = DataElement(tag, "OB", b"\x01\x02\x03\x04")
    elif vr == "OW (encapsulated)":
        tag = 0x7FE00010
        ds[tag] = DataElement(tag, "OW", encapsulate([b"\x01\x02", b"\x03\x04"]),
                              is_undefined_length=True)
    else:
        tag = 0x00081032  # ProcedureCodeSequence
        item = Dataset()
        item.CodeValue = "X1"
        item.PatientName = "Nested^Name"
        ds[tag] = DataElement(tag, "SQ", Sequence([item]))
    return ds, tag


@pytest.mark.parametrize("case", cases(VECTORS,
                                       lambda c: c["method"] == "remove" and "tag" not in c))
def test_remove_binary_and_sequence(case: dict[str, Any]) -> None:
    ds, tag = _binary_dataset(case["vr"])
    counts = remove(ds, f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
    assert counts == {"remove": 1, "keep": 1}  # a removed sequence's items are not visited
    assert tag not in ds
    assert ds.InstanceNumber == 1


@pytest.mark.parametrize("case", cases(VECTORS, lambda c: c["id"] == "keep-protects-later-rules"))
def test_keep_protects_elements_from_later_rules(case: dict[str, Any], tmp_path: Path) -> None:
    config = load_config(REFERENCE / case["config"])
    source = REFERENCE / case["input_file"]
    result = Anonymizer(config, pixels="off").anonymize_file(  # as the reference
        source, tmp_path / "out.dcm")
    assert result.status == "done", result.error
    before = pydicom.dcmread(source)
    out = pydicom.dcmread(tmp_path / "out.dcm")
    for tag_text in case["expected"]["kept"]:
        tag = parse_tag(tag_text)
        assert out[tag].value == before[tag].value, tag_text
    for tag_text in case["expected"]["removed"]:
        assert parse_tag(tag_text) not in out, tag_text
    # The reference's test compares the list of tags with its expected file.
    expected = pydicom.dcmread(REFERENCE / "data" / "cli" / "expected" / "privateTagRemoved.dcm")
    assert list(out.keys()) == list(expected.keys())
