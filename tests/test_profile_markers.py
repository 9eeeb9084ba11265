"""Every attribute of PS3.15 Table E.1-1, planted with a marker at three depths, gets its action.

For the basic profile and for each option on its own: no marker survives unless the action
keeps it. Expectations come from the standard's table as the tests hold it (tests/data/standard,
not the engine's generated copy: a wrong row there must fail here), checked against what the
output holds — not from the code that applies them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from dcmanon import Anonymizer, parse_config
from dcmanon.profiles import Option
from tests.standard import StandardRow, e1_1_rows, option_columns

KEPT_SEQUENCE = 0x00400260  # PerformedProtocolCodeSequence: not in Table E.1-1, so kept (K)
DEEPER_SEQUENCE = 0x00400440  # ProtocolContextSequence: also K
PATIENT_NAME = "Quillfeather^Zebulon"
TODAY = dt.date(2026, 11, 22)
TEXT_VRS = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"}
GUESSED_VR = {"DateTime": "DT", "URI": "UR"}


def _vr(tag: int, row: StandardRow) -> str:
    vr = row.vr or next((v for k, v in GUESSED_VR.items() if row.keyword.endswith(k)), "LO")
    if " or " in vr:
        vr = vr.split(" or ")[0]
    try:
        return dictionary_VR(tag).split(" or ")[0] if not row.vr else vr
    except KeyError:
        return vr


def _marker(n: int, vr: str, code: str) -> Any:
    """A value unique to row ``n`` that fits the VR."""
    text = f"MRK{n:04d}"
    if vr == "DA":
        return (dt.date(1990, 1, 1) + dt.timedelta(days=n)).strftime("%Y%m%d")
    if vr == "DT":
        return (dt.date(1990, 1, 1) + dt.timedelta(days=n)).strftime("%Y%m%d") + "101010"
    if vr == "TM":
        return f"10{n % 60:02d}{n // 60 % 60:02d}"
    if vr == "UI":
        return f"1.2.999.{n + 1}"
    if vr in ("DS", "IS"):
        return str(7000 + n)
    if vr == "AS":
        return f"{n % 90:03d}Y"
    if vr in ("US", "UL", "SS", "SL", "FL", "FD"):
        return 7000 + n
    if vr in ("OB", "OW", "UN"):
        return text.encode() + b"\0\0\0\0"[: (len(text) % 2) + 0]
    if vr == "PN":
        return f"MRK{n:04d}^{PATIENT_NAME.split('^')[0]}"
    if code == "C":
        return f"{text} noted by {PATIENT_NAME.replace('^', ' ')}"
    return text


def _plant(ds: Dataset, rows: list[tuple[int, StandardRow, str]], depth: int) -> None:
    for n, (tag, row, vr) in enumerate(rows):
        number = n + depth * 1000
        if vr == "SQ":
            item = Dataset()
            item.CodeMeaning = f"MRK{number:04d}"
            ds[tag] = DataElement(tag, "SQ", Sequence([item]))
        else:
            # Rows an option cleans carry a name in their text, which cleaning must remove.
            code = "C" if "C" in row.options.values() else row.basic
            ds[tag] = DataElement(tag, vr, _marker(number, vr, code))


def _rows() -> list[tuple[int, StandardRow, str]]:
    """Every single-tag row of the standard's Table E.1-1, by tag (the pattern rows —
    curves, overlays, private attributes — are planted on their own)."""
    chosen = []
    for row in e1_1_rows():
        tag = row.tag_number
        if tag is None or tag >> 16 in (0x0002, 0x0004) or tag in {KEPT_SEQUENCE, DEEPER_SEQUENCE}:
            continue
        chosen.append((tag, row, _vr(tag, row)))
    return sorted(chosen, key=lambda item: item[0])


def _dataset() -> Dataset:
    rows = _rows()
    ds = Dataset()
    _plant(ds, rows, 0)
    deeper = Dataset()
    _plant(deeper, rows, 2)
    item = Dataset()
    _plant(item, rows, 1)
    item[DEEPER_SEQUENCE] = DataElement(DEEPER_SEQUENCE, "SQ", Sequence([deeper]))
    ds[KEPT_SEQUENCE] = DataElement(KEPT_SEQUENCE, "SQ", Sequence([item]))
    ds.PatientName = PATIENT_NAME
    ds.PatientID = "MRN-PLANTED-77"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.999.99999"
    # Private elements, curves and overlays.
    ds.private_block(0x0009, "ACME FAKE 1.0", create=True).add_new(0x01, "LO", "MRK-PRIVATE")
    ds.private_block(0x2001, "Philips Imaging DD 001", create=True).add_new(0x02, "IS", "42")
    ds.add_new(0x50000005, "US", 2)
    ds.add_new(0x50002500, "LO", "MRK-CURVE-LABEL")
    ds.add_new(0x60000022, "LO", "MRK-OVERLAY-DESCRIPTION")
    ds.add_new(0x60003000, "OW", b"\0\1" * 8)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _expected(row: StandardRow, options: frozenset[Option]) -> str:
    columns = option_columns()
    codes = {row.options[columns[o.value]] for o in options if columns[o.value] in row.options}
    return "C" if "C" in codes else "K" if "K" in codes else row.basic


def _values(element: DataElement) -> list[str]:
    value = element.value
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value]
    return [value.decode("latin-1") if isinstance(value, bytes) else str(value)]


def _check(out: Dataset, original: Dataset, options: frozenset[Option], where: str) -> list[str]:
    """Return the problems found in one dataset (one depth)."""
    problems = []
    for tag, row, vr in _rows():
        if tag in (0x00100010, 0x00100020) and where == "top":
            continue  # pseudonyms, checked on their own
        code = _expected(row, options)
        before = original.get(tag)
        after = out.get(tag)
        label = f"{where} {row.keyword or row.name} ({code})"
        planted = _values(before) if before is not None and vr != "SQ" else []
        survived = after is not None and vr != "SQ" and _values(after) == planted and planted
        if code == "K":
            if after is None:
                problems.append(f"{label}: removed but should be kept")
            elif vr != "SQ" and _values(after) != planted and vr not in TEXT_VRS | {"AS"}:
                problems.append(f"{label}: changed but should be kept")
        elif code == "X":
            if after is not None:
                problems.append(f"{label}: present but should be removed")
        elif code in ("Z", "D", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"):
            if survived and vr != "SQ":
                problems.append(f"{label}: marker survived")
            if "X" not in code.split("/") and after is None:
                problems.append(f"{label}: removed but must stay present")
            if code == "D" and after is not None and not _values(after):
                problems.append(f"{label}: empty but D needs a value")
            if code == "U" and after is not None and not all(
                    v.startswith("2.25.") for v in _values(after)):
                problems.append(f"{label}: not a new UID")
        elif code == "C" and after is not None and vr in TEXT_VRS and any(
                "Quillfeather" in v or "Zebulon" in v for v in _values(after)):
            problems.append(f"{label}: name survived cleaning")
    return problems


OPTION_SETS = [pytest.param(frozenset(), id="basic")] + [
    pytest.param(frozenset({o}), id=o.value) for o in Option]


@pytest.mark.parametrize("options", OPTION_SETS)
def test_every_table_attribute_gets_its_action_at_every_depth(options: frozenset[Option]) -> None:
    original = _dataset()
    ds = _dataset()
    config = parse_config({"profile": "basic", "options": sorted(o.value for o in options)},
                          secret="test-secret")
    Anonymizer(config, today=TODAY).anonymize_dataset(ds)
    problems = _check(ds, original, options, "top")
    item = ds[KEPT_SEQUENCE].value[0]
    problems += _check(item, original[KEPT_SEQUENCE].value[0], options, "item")
    deeper = item[DEEPER_SEQUENCE].value[0]
    problems += _check(deeper, original[KEPT_SEQUENCE].value[0][DEEPER_SEQUENCE].value[0],
                       options, "deeper")
    assert problems == []
    # Patient name and ID are keyed pseudonyms, never the original.
    assert str(ds.PatientName) != PATIENT_NAME and str(ds.PatientName)
    assert ds.PatientID != "MRN-PLANTED-77" and ds.PatientID
    # Curves and overlays go as whole groups unless Clean Graphics keeps them.
    graphics_kept = Option.CLEAN_GRAPHICS in options
    assert (0x50002500 in ds) is graphics_kept
    assert (0x60000022 in ds) is graphics_kept
    # Private elements: all gone, unless Retain Safe Private keeps the safe ones.
    assert 0x00091001 not in ds and 0x00091000 not in ds and 0x00090010 not in ds
    if Option.RETAIN_SAFE_PRIVATE in options:
        assert ds[0x20011002].value == 42  # "Philips Imaging DD 001" (2001,xx02) is safe
    else:
        assert 0x20011002 not in ds
    # The output says what was done.
    assert ds.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert codes[0] == "113100"
    assert len(codes) == 1 + len(options)


def test_no_marker_text_survives_anywhere_in_basic() -> None:
    ds = _dataset()
    config = parse_config({"profile": "basic"}, secret="test-secret")
    Anonymizer(config, today=TODAY).anonymize_dataset(ds)
    kept = {tag for tag, row, _ in _rows() if row.basic == "K"}
    leaks = []

    def walk(item: Dataset, path: str) -> None:
        for element in item:
            if element.VR == "SQ":
                for child in element.value:
                    walk(child, f"{path}{element.keyword}>")
            elif element.tag not in kept and element.keyword != "CodeMeaning" and any(
                    "MRK" in v or "Quillfeather" in v for v in _values(element)):
                leaks.append(f"{path}{element.keyword or element.tag}")

    walk(ds, "")
    assert leaks == []
