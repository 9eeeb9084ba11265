"""DICOMDIR (issue 11 §1): an input DICOMDIR comes out as a valid one over the outputs, its
records de-identified as the files they point to, its File IDs naming the outputs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet

from dcmanon import Anonymizer, parse_config
from dcmanon.batch import BatchOptions, Layout, run_folder
from dcmanon.batch.dicomdir import SKIPPED_FILESET, SKIPPED_NAME, SKIPPED_UID_LAYOUT
from dcmanon.check.verify import check
from tests.peer_tools import dciodvfy_errors

KEY = "test-dicomdir-secret"


def anonymizer() -> Anonymizer:
    # pixels off: pydicom's media export holds DERIVED images that would want OCR
    return Anonymizer(parse_config({"profile": "basic"}, secret=KEY), pixels="off")


def read(path: Path, **kwargs: object) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pydicom's dicomdirtests: DICOMDIR + patient folders (77654033...), TINY_ALPHA (a
    file-set of its own), and DICOMDIR variants under other names."""
    found = get_testdata_file("DICOMDIR", download=False)
    if found is None:
        pytest.skip("pydicom's test data has no DICOMDIR")
    target = tmp_path_factory.mktemp("media") / "in"
    shutil.copytree(Path(str(found)).parent, target)
    return target


@pytest.fixture(scope="module")
def run(media: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[
        str, object]]]:
    out = tmp_path_factory.mktemp("out") / "out"
    report = out.parent / "run.jsonl"
    batch = run_folder(anonymizer(), media, out, options=BatchOptions(jobs=1, report=report))
    assert batch.summary.failed == 0, [f.error for f in batch.failed]
    return out, [json.loads(line) for line in report.read_text().splitlines()]


@contextmanager
def fileset(path: Path) -> Iterator[FileSet]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = FileSet(read(path))
    try:
        yield loaded
    finally:
        loaded._stage["t"].cleanup()  # pydicom's staging folder, else a ResourceWarning


def test_the_dicomdir_lists_every_output_with_its_new_identifiers(
        media: Path, run: tuple[Path, list[dict[str, object]]]) -> None:
    out, _ = run
    for name in ("DICOMDIR", "TINY_ALPHA/DICOMDIR"):
        with fileset(media / name) as before, fileset(out / name) as after:
            check_listing(before, after, out)


def check_listing(before: FileSet, after: FileSet, out: Path) -> None:
    assert len(after) == len(before) > 0
    originals = {str(read(Path(i.path)).SOPInstanceUID) for i in before}
    seen = set()
    for instance in after:
        path = Path(instance.path)
        assert path.is_file() and path.is_relative_to(out)
        ds = read(path, stop_before_pixels=True)
        assert instance.ReferencedSOPInstanceUIDInFile == ds.SOPInstanceUID
        assert ds.SOPInstanceUID not in originals
        patient, study, series = (instance.node.parent.parent.parent,
                                  instance.node.parent.parent, instance.node.parent)
        assert patient._record.PatientID == ds.PatientID
        assert patient._record.PatientName == ds.PatientName
        assert study._record.StudyInstanceUID == ds.StudyInstanceUID
        assert series._record.SeriesInstanceUID == ds.SeriesInstanceUID
        seen.add(str(ds.SOPInstanceUID))
    assert len(seen) == len(before)


def test_no_identifier_of_the_input_dicomdir_is_left(
        media: Path, run: tuple[Path, list[dict[str, object]]]) -> None:
    out, _ = run
    ds = read(media / "DICOMDIR")
    identifiers = set()
    for record in ds.DirectoryRecordSequence:
        for keyword in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                        "ReferencedSOPInstanceUIDInFile"):
            if record.get(keyword):
                identifiers.add(str(record.get(keyword)).encode())
        if record.get("PatientName"):
            name = record.PatientName
            identifiers.update(p.encode() for p in (name.family_name, name.given_name) if p)
    assert identifiers
    written = (out / "DICOMDIR").read_bytes()
    assert [i for i in identifiers if i in written] == []


def test_check_finds_nothing_in_the_mirrored_media(
        media: Path, run: tuple[Path, list[dict[str, object]]]) -> None:
    """No name left and no integrity finding: a DICOMDIR's MediaStorageSOPInstanceUID is its
    file-set's, with no SOPInstanceUID beside it (PS3.10 7.2), and that is not broken."""
    out, _ = run
    report = check(media, out, config=parse_config({"profile": "basic"}, secret=KEY))
    assert [(f.category, f.file) for f in report.findings] == []


def test_file_ids_name_the_renamed_outputs_and_stay_conformant(
        run: tuple[Path, list[dict[str, object]]]) -> None:
    out, _ = run
    ds = read(out / "DICOMDIR")
    ids = [list(r.ReferencedFileID) for r in ds.DirectoryRecordSequence
           if "ReferencedFileID" in r]
    assert ids
    assert all(re.fullmatch(r"[A-Z0-9_]{1,8}", part) for parts in ids for part in parts)
    assert "77654033" not in {parts[0] for parts in ids}
    for parts in ids:  # the renamed folder is the patient's pseudonym, cut to a File ID
        patient = str(read(out.joinpath(*parts), stop_before_pixels=True).PatientID)
        if parts[0] not in ("98892001", "98892003"):
            assert patient.endswith(parts[0])


def test_the_run_reports_the_dicomdirs_and_skips_the_variants(
        run: tuple[Path, list[dict[str, object]]]) -> None:
    out, records = run
    done = {r["source"]: r for r in records if r.get("type") == "file"}
    assert done["DICOMDIR"]["status"] == "done"
    assert done["DICOMDIR"]["actions"] == {"dicomdir-instances": 31}
    assert done["TINY_ALPHA/DICOMDIR"]["actions"] == {"dicomdir-instances": 50}
    for variant in ("DICOMDIR-bigEnd", "DICOMDIR-implicit", "DICOMDIR-reordered"):
        assert done[variant] == {"type": "file", "source": variant, "status": "skipped",
                                 "reason": SKIPPED_NAME}
        assert not (out / variant).exists()


def test_a_dicomdir_follows_a_renamed_file_set(tmp_path: Path) -> None:
    """A file-set whose own folder is named after the patient: the DICOMDIR goes where its
    files went."""
    found = get_testdata_file("DICOMDIR", download=False)
    assert found is not None
    source = Path(str(found)).parent / "TINY_ALPHA"
    patient = str(read(next(source.rglob("IM*")), stop_before_pixels=True).PatientID)
    media = tmp_path / "in" / patient.upper()
    shutil.copytree(source, media)
    out = tmp_path / "out"
    batch = run_folder(anonymizer(), tmp_path / "in", out, options=BatchOptions(jobs=1))
    assert batch.summary.failed == 0
    (folder,) = [p for p in out.iterdir()]
    assert folder.name != patient.upper()
    with fileset(folder / "DICOMDIR") as listed:
        assert len(listed) == 50


def test_uid_layout_skips_the_dicomdir(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    batch = run_folder(anonymizer(), media, out, options=BatchOptions(jobs=1,
                                                                          layout=Layout.UID))
    reasons = {Path(s.path).relative_to(media).as_posix(): s.reason for s in batch.skipped}
    assert reasons["DICOMDIR"] == reasons["TINY_ALPHA/DICOMDIR"] == SKIPPED_UID_LAYOUT
    assert not list(out.rglob("DICOMDIR*"))


@pytest.mark.peer
def test_dcmdump_reads_the_dicomdir_without_a_message(
        run: tuple[Path, list[dict[str, object]]],
        external_tool: Callable[[str], str]) -> None:
    out, _ = run
    for name in ("DICOMDIR", "TINY_ALPHA/DICOMDIR"):
        done = subprocess.run([external_tool("dcmdump"), str(out / name)], capture_output=True,
                              timeout=120, check=False)
        text = (done.stdout + done.stderr).decode("ascii", "replace")
        assert done.returncode == 0
        assert [line for line in text.splitlines() if line[:3] in ("E: ", "F: ", "W: ")] == []
        assert "ReferencedFileID" in text


@pytest.mark.peer
def test_dciodvfy_finds_no_new_error_in_the_dicomdir(
        media: Path, run: tuple[Path, list[dict[str, object]]],
        external_tool: Callable[[str], str]) -> None:
    out, _ = run
    dciodvfy = external_tool("dciodvfy")
    for name in ("DICOMDIR", "TINY_ALPHA/DICOMDIR"):
        new = dciodvfy_errors(dciodvfy, out / name)
        assert new - dciodvfy_errors(dciodvfy, media / name) == set()


# --- --layout fileset ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def fileset_run(media: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("fileset") / "out"
    batch = run_folder(anonymizer(), media, out,
                       options=BatchOptions(jobs=1, layout=Layout.FILESET))
    assert batch.summary.failed == 0, [f.error for f in batch.failed]
    reasons = {Path(s.path).relative_to(media).as_posix(): s.reason for s in batch.skipped}
    assert reasons["DICOMDIR"] == reasons["TINY_ALPHA/DICOMDIR"] == SKIPPED_FILESET
    return out, batch.summary.done


def test_fileset_layout_writes_a_standard_file_set(fileset_run: tuple[Path, int]) -> None:
    out, done = fileset_run
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files.pop(0) == "DICOMDIR"
    assert len(files) == done == 81
    assert all(re.fullmatch(r"PT[0-9A-Z]{6}/ST[0-9A-Z]{6}/SE[0-9A-Z]{6}/IM[0-9A-Z]{6}", f)
               for f in files)
    with fileset(out / "DICOMDIR") as listed:
        assert sorted(Path(i.path).relative_to(out).as_posix() for i in listed) == files
        for instance in listed:
            ds = read(Path(instance.path), stop_before_pixels=True)
            assert instance.ReferencedSOPInstanceUIDInFile == ds.SOPInstanceUID
            assert instance.node.parent.parent.parent._record.PatientID == ds.PatientID


def test_fileset_layout_names_files_alike_on_every_worker(
        media: Path, fileset_run: tuple[Path, int], tmp_path: Path) -> None:
    out, _ = fileset_run
    other = tmp_path / "out"
    run_folder(anonymizer(), media, other, options=BatchOptions(
        jobs=2, min_parallel=1, chunk_size=3, layout=Layout.FILESET))
    assert sorted(p.relative_to(other) for p in other.rglob("*")) == \
        sorted(p.relative_to(out) for p in out.rglob("*"))


@pytest.mark.peer
def test_peers_read_the_fresh_dicomdir(media: Path, fileset_run: tuple[Path, int],
                                       external_tool: Callable[[str], str]) -> None:
    out, _ = fileset_run
    done = subprocess.run([external_tool("dcmdump"), str(out / "DICOMDIR")],
                          capture_output=True, timeout=120, check=False)
    text = (done.stdout + done.stderr).decode("ascii", "replace")
    assert done.returncode == 0
    assert [line for line in text.splitlines() if line[:3] in ("E: ", "F: ", "W: ")] == []
    dciodvfy = external_tool("dciodvfy")
    new = dciodvfy_errors(dciodvfy, out / "DICOMDIR")
    assert new - dciodvfy_errors(dciodvfy, media / "DICOMDIR") == set()
