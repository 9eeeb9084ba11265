"""Tests of the synthetic-patient factory in :mod:`dcmanon.testing`."""

from __future__ import annotations

import io
import pathlib
import re
import subprocess
from collections.abc import Callable, Iterator

import pytest
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

from dcmanon.testing import (
    PRIVATE_CREATOR,
    PRIVATE_GROUP,
    SITE_MARKERS,
    make_instance,
    make_patient,
    patient_folder_name,
    phi_markers,
    write_study_tree,
)


def _encode(ds: FileDataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _walk(ds: Dataset, depth: int = 0) -> Iterator[tuple[int, DataElement]]:
    """Yield (sequence depth, element) for every element, items included."""
    for elem in ds:
        yield depth, elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item, depth + 1)


def _uids(ds: Dataset) -> list[str]:
    return [str(e.value) for _, e in _walk(ds) if e.VR == "UI"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, list[pathlib.Path]]:
    root = tmp_path_factory.mktemp("tree")
    return root, write_study_tree(root)


# --- patients ---------------------------------------------------------------


def test_make_patient_is_deterministic() -> None:
    assert make_patient(3) == make_patient(3)
    assert make_patient(3, seed=9) == make_patient(3, seed=9)


def test_patients_differ() -> None:
    patients = [make_patient(i) for i in range(16)]
    assert len({p.name for p in patients}) == 16
    assert len({p.family_name for p in patients}) == 16
    assert len({p.given_name for p in patients}) == 16
    assert len({p.patient_id for p in patients}) == 16
    assert len({p.other_patient_id for p in patients}) == 16
    assert len({p.phone for p in patients}) == 16
    assert make_patient(0, seed=0) != make_patient(0, seed=1)
    assert make_patient(0, seed=0).patient_id != make_patient(0, seed=1).patient_id


def test_family_names_unique_over_256() -> None:
    assert len({make_patient(i, seed=5).family_name for i in range(256)}) == 256


def test_patient_fields_are_well_formed() -> None:
    p = make_patient(0)
    assert p.patient_id == "MRN00012345"
    assert re.fullmatch(r"MRN\d{8}", make_patient(41, seed=3).patient_id)
    assert re.fullmatch(r"[A-Z][a-z]+\^[A-Z][a-z]+", p.name)
    assert re.fullmatch(r"(19|20)\d{6}", p.birth_date)
    assert p.sex in {"F", "M"}
    assert p.phone.startswith("555-01")
    assert len(p.phone) <= 16  # SH
    assert p.family_name in p.address
    assert p.street == p.address.split(",")[0]
    assert "Dr." in p.referring_physician


def test_make_patient_rejects_negative() -> None:
    with pytest.raises(ValueError):
        make_patient(-1)
    with pytest.raises(ValueError):
        make_patient(0, seed=-1)


def test_phi_markers() -> None:
    p = make_patient(2)
    markers = phi_markers(p)
    assert markers == phi_markers(p)
    assert len(markers) == len(set(markers))
    for expected in (
        p.name,
        p.family_name,
        p.given_name,
        p.patient_id,
        p.other_patient_id,
        p.birth_date,
        p.address,
        p.street,
        p.phone,
    ):
        assert expected in markers
    assert all(len(m) >= 6 for m in markers)


# --- instances --------------------------------------------------------------


def test_same_arguments_same_bytes() -> None:
    p = make_patient(1)
    assert _encode(make_instance(p, 1, 0, 2)) == _encode(make_instance(p, 1, 0, 2))
    assert _encode(make_instance(p, seed=4)) == _encode(make_instance(make_patient(1), seed=4))


def test_file_meta_is_consistent() -> None:
    ds = dcmread(io.BytesIO(_encode(make_instance(make_patient(0), 1, 1, 1))))
    meta = ds.file_meta
    assert ds.preamble == b"\x00" * 128
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert meta.MediaStorageSOPClassUID == ds.SOPClassUID == CTImageStorage
    assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert meta.FileMetaInformationVersion == b"\x00\x01"
    assert meta.ImplementationClassUID.is_valid
    assert meta.FileMetaInformationGroupLength > 0


def test_uids_are_valid_and_under_root() -> None:
    ds = make_instance(make_patient(7), 3, 2, 1, seed=11)
    for uid in [*_uids(ds), str(ds.file_meta.MediaStorageSOPInstanceUID)]:
        assert UID(uid).is_valid, uid
        assert len(uid) <= 64
    for keyword in (
        "SOPInstanceUID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "FrameOfReferenceUID",
    ):
        assert str(ds[keyword].value).startswith("2.25."), keyword


def test_instance_contents() -> None:
    p = make_patient(4)
    ds = make_instance(p, 0, 1, 2, rows=8, columns=16)
    assert ds.PatientName == p.name
    assert ds.PatientID == p.patient_id
    assert ds.PatientBirthDate == p.birth_date
    assert ds.PatientSex == p.sex
    assert ds.PatientAddress == p.address
    assert ds.PatientTelephoneNumbers == p.phone
    assert ds.ReferringPhysicianName == p.referring_physician
    assert ds.OtherPatientIDsSequence[0].PatientID == p.other_patient_id
    assert p.given_name in ds.ImageComments and p.family_name in ds.ImageComments
    assert re.fullmatch(r"\d{3}Y", ds.PatientAge)
    study_year = int(ds.StudyDate[:4])
    assert int(ds.PatientAge[:3]) in {
        study_year - int(p.birth_date[:4]) - 1,
        study_year - int(p.birth_date[:4]),
    }
    assert re.fullmatch(r"\d{14}\.\d{6}[+-]\d{4}", ds.AcquisitionDateTime)
    assert ds.AcquisitionDateTime.startswith(ds.AcquisitionDate + ds.AcquisitionTime[:6])
    for keyword in (
        "StudyDate",
        "SeriesDate",
        "AcquisitionDate",
        "ContentDate",
        "InstanceCreationDate",
    ):
        assert re.fullmatch(r"\d{8}", ds[keyword].value), keyword
    request = ds.RequestAttributesSequence[0]
    assert request.RequestedProcedureID and request.ScheduledProcedureStepID
    assert request.AccessionNumber == ds.AccessionNumber
    assert request.StudyInstanceUID == ds.StudyInstanceUID
    related = ds.ReferencedStudySequence[0].ReferencedSOPInstanceUID
    assert related == make_instance(p, 1, 0, 0).StudyInstanceUID
    assert ds.Rows == 8 and ds.Columns == 16
    assert ds["PixelData"].VR == "OW"
    assert len(ds.PixelData) == 8 * 16 * 2
    samples = memoryview(ds.PixelData).cast("H")
    assert max(samples) < 2**ds.BitsStored


def test_private_block() -> None:
    p = make_patient(5)
    ds = dcmread(io.BytesIO(_encode(make_instance(p))))
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
    assert ds[0x00090010].value == "ACME FAKE 1.0"
    assert block[0x01].VR == "LO"
    assert p.family_name in block[0x01].value and p.given_name in block[0x01].value
    assert block[0x02].VR == "DS"
    float(block[0x02].value)


def test_nested_pn_is_two_sequence_levels_deep() -> None:
    p = make_patient(6)
    ds = dcmread(io.BytesIO(_encode(make_instance(p))))
    item = ds.PerformedProtocolCodeSequence[0].ProtocolContextSequence[0]
    assert item.ValueType == "PNAME"
    assert item["PersonName"].VR == "PN"
    assert item.PersonName == p.name
    deep = [e for depth, e in _walk(ds) if depth == 2 and e.VR == "PN"]
    assert [str(e.value) for e in deep] == [p.name]


def test_different_patients_differ() -> None:
    a = make_instance(make_patient(0))
    b = make_instance(make_patient(1))
    assert a.PatientName != b.PatientName
    assert a.PatientID != b.PatientID
    assert not set(_uids(a)) & set(_uids(b)) - {str(CTImageStorage), "1.2.840.10008.3.1.2.3.1"}


def test_make_instance_rejects_bad_arguments() -> None:
    p = make_patient(0)
    with pytest.raises(ValueError):
        make_instance(p, -1)
    with pytest.raises(ValueError):
        make_instance(p, rows=0)


# --- trees ------------------------------------------------------------------


def test_tree_layout(tree: tuple[pathlib.Path, list[pathlib.Path]]) -> None:
    root, paths = tree
    assert len(paths) == 3 * 2 * 2 * 2
    assert paths == sorted(paths)
    assert paths == sorted(root.rglob("*.dcm"))
    for i in range(3):
        p = make_patient(i)
        folder = root / patient_folder_name(p)
        assert p.family_name in folder.name and p.patient_id in folder.name
        assert folder / "study01" / "series00" / "0002.dcm" in paths


def test_tree_is_deterministic(
    tree: tuple[pathlib.Path, list[pathlib.Path]], tmp_path: pathlib.Path
) -> None:
    root, paths = tree
    again = write_study_tree(tmp_path)
    assert [p.relative_to(tmp_path) for p in again] == [p.relative_to(root) for p in paths]
    for first, second in zip(paths, again, strict=True):
        assert first.read_bytes() == second.read_bytes()


def test_tree_files_read_back(tree: tuple[pathlib.Path, list[pathlib.Path]]) -> None:
    _, paths = tree
    for path in paths:
        raw = path.read_bytes()
        assert raw[128:132] == b"DICM"
        ds = dcmread(path)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_tree_uid_consistency(tree: tuple[pathlib.Path, list[pathlib.Path]]) -> None:
    _, paths = tree
    datasets = [(path.relative_to(tree[0]).parts, dcmread(path)) for path in paths]
    sop_uids = [ds.SOPInstanceUID for _, ds in datasets]
    assert len(set(sop_uids)) == len(sop_uids)

    def grouped(keyword: str, depth: int) -> dict[tuple[str, ...], set[str]]:
        groups: dict[tuple[str, ...], set[str]] = {}
        for parts, ds in datasets:
            groups.setdefault(parts[:depth], set()).add(str(ds[keyword].value))
        return groups

    for keyword, depth in (
        ("StudyInstanceUID", 2),
        ("FrameOfReferenceUID", 2),
        ("AccessionNumber", 2),
        ("SeriesInstanceUID", 3),
    ):
        groups = grouped(keyword, depth)
        assert all(len(values) == 1 for values in groups.values()), keyword
        distinct = {next(iter(values)) for values in groups.values()}
        assert len(distinct) == len(groups), keyword


def test_markers_planted_and_not_shared(tree: tuple[pathlib.Path, list[pathlib.Path]]) -> None:
    root, paths = tree
    for i in range(3):
        patient = make_patient(i)
        folder = root / patient_folder_name(patient)
        for path in paths:
            raw = path.read_bytes()
            mine = path.is_relative_to(folder)
            for marker in phi_markers(patient):
                assert (marker.encode() in raw) == mine, (marker, path)
    raw = paths[0].read_bytes()
    for marker in SITE_MARKERS:
        assert marker.encode() in raw, marker


@pytest.mark.peer
def test_dciodvfy_reports_no_error(tmp_path: pathlib.Path,
                                   external_tool: Callable[[str], str]) -> None:
    dciodvfy = external_tool("dciodvfy")
    path = tmp_path / "ct.dcm"
    make_instance(make_patient(2), 1, 1, 1).save_as(path, enforce_file_format=True)
    result = subprocess.run(
        [dciodvfy, str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    output = result.stdout + result.stderr
    assert "CTImage" in output
    errors = [line for line in output.splitlines() if "Error" in line]
    assert errors == []
