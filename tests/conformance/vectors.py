"""Access to the reference anonymizer's test vectors in ../shared (skipped when absent)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import JPEGBaseline8Bit

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "microsoft"
MISSING = ("../shared/conformance/microsoft is not here "
           "(the reference's vectors are read at test time)")


def require_reference() -> Path:
    """The reference folder, or skip the test with the reason."""
    if not REFERENCE.is_dir():
        pytest.skip(MISSING)
    return REFERENCE


def cases(name: str, predicate: Any = None) -> list[Any]:
    """``pytest.param`` for every case of ``vectors/<name>`` (optionally filtered), by id."""
    path = REFERENCE / "vectors" / name
    if not path.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="missing")]
    data = json.loads(path.read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["id"]) for case in data["cases"]
            if predicate is None or predicate(case)]


def parse_tag(text: str) -> int:
    """``(gggg,eeee) Keyword`` → int."""
    inner = text.split(")")[0].strip("( ")
    group, element = inner.split(",")
    return int(group, 16) << 16 | int(element, 16)


def build_dataset(spec: list[list[Any]]) -> Dataset:
    """Build a dataset from the vectors' ``[tag, VR, values]`` notation."""
    ds = Dataset()
    for tag_text, vr, values in spec:
        tag = Tag(parse_tag(tag_text))
        if vr == "SQ":
            value: Any = Sequence([build_dataset(item) for item in values])
        elif not values:
            value = None
        elif vr in ("OB", "UN") and isinstance(values, str):
            value = bytes.fromhex(values)
        elif len(values) == 1:
            value = values[0]
        else:
            value = list(values)
        ds[tag] = DataElement(tag, vr, value)
    return ds


def values_of(ds: Dataset, tag: int) -> list[str]:
    """The element's values as pydicom reads them back from the bytes dcmanon wrote."""
    value = ds[tag].value
    if value is None or value == "":
        return []
    if isinstance(value, MultiValue | list):
        return [str(v) for v in value]
    return [str(value)]


def string_values(ds: Dataset, tag: int) -> list[str] | None:
    """The element's string values as they will be written (None if it is absent)."""
    if tag not in ds:
        return None
    element = ds.get_item(tag)
    value = element.value
    if isinstance(element, RawDataElement) or isinstance(value, bytes):
        text = (value or b"").decode("ascii").rstrip(" \0")
        return text.split("\\") if text else []
    if value in (None, ""):
        return []
    return [str(v) for v in value] if isinstance(value, MultiValue) else [str(value)]


def assert_each_case_taken_once(name: str, groups: dict[str, Callable[[Any], bool]]) -> None:
    """Each case of ``vectors/<name>`` is taken by exactly one test group (none dropped)."""
    require_reference()
    data = json.loads((REFERENCE / "vectors" / name).read_text(encoding="utf-8"))
    for case in data["cases"]:
        taken = [group for group, predicate in groups.items() if predicate(case)]
        assert len(taken) == 1, (case["id"], taken)


def encapsulated_file(path: Path, fragments: list[bytes]) -> Path:
    """CT_small with its pixel data replaced by ``fragments``, one per frame (JPEG syntax)."""
    ds = dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.PixelData = encapsulate(fragments, fragments_per_frame=1, has_bot=False)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.NumberOfFrames = len(fragments)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(path, enforce_file_format=True)
    return path
