"""Pseudonyms across a set: 3 patients × 2 studies × 2 series, with the default profile.

Within a run: UIDs and patient pseudonyms are consistent and unique across patients, intervals
between a patient's dates are preserved. Across runs: the same key gives byte-identical files,
another key shares no pseudonym.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from dcmanon import Anonymizer, parse_config
from dcmanon.testing import make_patient, phi_markers, write_study_tree

TODAY = dt.date(2026, 11, 22)


def _run(inputs: list[Path], root: Path, out: Path, secret: str,
         options: tuple[str, ...] = ()) -> list[Path]:
    config = parse_config({"profile": "basic", "options": list(options)}, secret=secret)
    anonymizer = Anonymizer(config, today=TODAY)
    outputs = []
    for path in inputs:
        target = out / path.relative_to(root)
        result = anonymizer.anonymize_file(path, target)
        assert result.status == "done", result.error
        outputs.append(target)
    return outputs


@pytest.fixture(scope="module")
def study_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("inputs")
    return root, write_study_tree(root, patients=3, studies=2, series=2, instances=2)


def _uids(ds: Dataset) -> set[str]:
    found: set[str] = set()
    for element in ds.iterall():
        if element.VR == "UI" and element.value:
            values = element.value if isinstance(element.value, list) else [element.value]
            found.update(str(v) for v in values)
    return found


def test_uids_and_pseudonyms_are_consistent_within_the_set(
        study_set: tuple[Path, list[Path]], tmp_path: Path) -> None:
    root, inputs = study_set
    outputs = _run(inputs, root, tmp_path, "key-one")
    originals = [dcmread(p) for p in inputs]
    results = [dcmread(p) for p in outputs]
    mapping: dict[str, str] = {}
    for before, after in zip(originals, results, strict=True):
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                        "FrameOfReferenceUID"):
            old, new = str(before[keyword].value), str(after[keyword].value)
            assert new.startswith("2.25.") and new != old
            assert mapping.setdefault(old, new) == new  # same original → same pseudonym
        assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
        # No input UID survives anywhere (registered UIDs such as SOP classes aside).
        leftovers = (_uids(before) - {before.SOPClassUID}) & _uids(after)
        assert not {u for u in leftovers if not u.startswith("1.2.840.10008.")}
    assert len(set(mapping.values())) == len(mapping)  # unique: no two originals collide
    by_patient: dict[str, set[str]] = defaultdict(set)
    for before, after in zip(originals, results, strict=True):
        by_patient[str(before.PatientID)].add(str(after.PatientID))
        assert str(after.PatientName) == str(after.PatientID)
    assert all(len(p) == 1 for p in by_patient.values())
    assert len({next(iter(p)) for p in by_patient.values()}) == 3


def test_date_intervals_within_a_patient_are_preserved(
        study_set: tuple[Path, list[Path]], tmp_path: Path) -> None:
    root, inputs = study_set
    outputs = _run(inputs, root, tmp_path, "key-one",
                   ("retain-longitudinal-modified-dates",))
    offsets: dict[str, set[int]] = defaultdict(set)
    for source, target in zip(inputs, outputs, strict=True):
        before, after = dcmread(source), dcmread(target)
        assert after.LongitudinalTemporalInformationModified == "MODIFIED"
        for keyword in ("StudyDate", "SeriesDate", "ContentDate", "PatientBirthDate"):
            if keyword in before and keyword in after and after[keyword].value:
                old = dt.datetime.strptime(before[keyword].value, "%Y%m%d")
                new = dt.datetime.strptime(after[keyword].value, "%Y%m%d")
                offsets[str(before.PatientID)].add((new - old).days)
    assert len(offsets) == 3
    for shifts in offsets.values():
        assert len(shifts) == 1 and 0 not in shifts  # one offset per patient, never zero


def test_same_key_is_byte_identical_and_another_key_shares_nothing(
        study_set: tuple[Path, list[Path]], tmp_path: Path) -> None:
    root, inputs = study_set
    first = _run(inputs, root, tmp_path / "a", "key-one")
    second = _run(inputs, root, tmp_path / "b", "key-one")
    other = _run(inputs, root, tmp_path / "c", "key-two")
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second, strict=True))
    names_one = {str(dcmread(p).PatientID) for p in first} | set().union(
        *(_uids(dcmread(p)) for p in first))
    names_two = {str(dcmread(p).PatientID) for p in other} | set().union(
        *(_uids(dcmread(p)) for p in other))
    shared = {n for n in names_one & names_two if not n.startswith("1.2.840.10008.")}
    assert shared == set()


def test_no_planted_phi_survives_the_default_profile(
        study_set: tuple[Path, list[Path]], tmp_path: Path) -> None:
    root, inputs = study_set
    outputs = _run(inputs, root, tmp_path, "key-one")
    markers = {m for i in range(3) for m in phi_markers(make_patient(i))}
    leaks = [(p.name, m) for p in outputs for m in markers if m.encode() in p.read_bytes()]
    assert leaks == []
