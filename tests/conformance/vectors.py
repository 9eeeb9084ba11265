"""Access to the reference anonymizer's test vectors, derived into tests/data/microsoft.

``tools/generate_test_data.py`` writes them (with their provenance) from ../shared; the tests
read only the committed copy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
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

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "microsoft"


def require_reference() -> Path:
    """The reference's data folder (configuration.json, data/): part of the repository."""
    return REFERENCE


@cache
def _vectors_text() -> str:
    return (REFERENCE / "vectors.json").read_text(encoding="utf-8")


def all_cases(name: str) -> list[dict[str, Any]]:
    """Every case of the reference's ``vectors/<name>`` (a KeyError for an unknown name).

    Parsed on each call, so that a test changing its case cannot change another's.
    """
    cases: list[dict[str, Any]] = json.loads(_vectors_text())["cases"][name]
    return cases


def cases(name: str, predicate: Any = None) -> list[Any]:
    """``pytest.param`` for every case of ``vectors/<name>`` (optionally filtered), by id."""
    return [pytest.param(case, id=case["id"]) for case in all_cases(name)
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
    for case in all_cases(name):
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
