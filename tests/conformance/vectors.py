"""Access to the reference anonymizer's test vectors in ../shared (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

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
