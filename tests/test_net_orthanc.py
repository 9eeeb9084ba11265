"""The node with Orthanc on loopback: as the destination (its REST API says what arrived),
and as the PACS that `dcmanon pull` queries and moves studies from."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dcmanon.testing import make_instance, make_patient, phi_markers
from tests.conftest import peers_required
from tests.net_peers import (
    DICOMWEB_PLUGIN,
    HOST,
    free_port,
    pseudonymous_uids,
    reap,
    start_node,
    start_orthanc,
    stop,
    storescu,
    wait_for,
)

pytestmark = pytest.mark.peer
Tool = Callable[[str], str]


@pytest.fixture(autouse=True)
def _no_process_left() -> Iterator[None]:
    """Whatever happens in a test, the processes it started end with it."""
    yield
    reap()


def _study(folder: Path, patient: int, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"{patient}-{index}.dcm"
        make_instance(make_patient(patient), 0, 0, index).save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def test_orthanc_as_the_destination(tmp_path: Path, external_tool: Tool) -> None:
    files = _study(tmp_path / "originals", 0, 20)
    orthanc = start_orthanc(external_tool("Orthanc"), tmp_path / "orthanc")
    node = start_node(tmp_path, tmp_path / "spool",
                      "--forward", f"ORTHANC@{HOST}:{orthanc.dicom_port}")
    try:
        sent = storescu(external_tool("storescu"), node.port, files)
        assert len(sent.acknowledged) == len(files), sent.output[-2000:]
        wait_for(lambda: node.status()["forwarded"] == len(files), 120, "forwarded")
        assert sorted(orthanc.sop_instance_uids()) == sorted(pseudonymous_uids(files))
        patients = orthanc.get("/patients?expand")
        assert isinstance(patients, list) and len(patients) == 1
        tags = str(patients[0]["MainDicomTags"])
        for marker in phi_markers(make_patient(0)):
            assert marker not in tags
    finally:
        assert stop(node.process) == 0
        stop(orthanc.process)


def test_pull_a_study_by_accession_number(tmp_path: Path, external_tool: Tool) -> None:
    wanted = _study(tmp_path / "originals", 0, 6)
    other = _study(tmp_path / "others", 1, 4)
    node_port = free_port()
    orthanc = start_orthanc(external_tool("Orthanc"), tmp_path / "orthanc",
                            {"node": ["DCMANON", HOST, node_port]})
    out = tmp_path / "out"
    node = start_node(tmp_path, tmp_path / "spool", "--forward-folder", str(out),
                      port=node_port)
    try:
        for path in wanted + other:
            orthanc.upload(path)
        from pydicom import dcmread

        accession = str(dcmread(wanted[0], stop_before_pixels=True).AccessionNumber)
        csv_file = tmp_path / "studies.csv"
        csv_file.write_text(f"accession\n{accession}\n", encoding="utf-8")
        run = subprocess.run([sys.executable, "-m", "dcmanon", "pull",
                              f"ORTHANC@{HOST}:{orthanc.dicom_port}", "--move-to", "DCMANON",
                              "--csv", str(csv_file)],
                             capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stderr
        assert "1 studies found, 6 images moved" in run.stderr
        assert accession not in run.stderr + run.stdout
        wait_for(lambda: node.status()["forwarded"] == len(wanted), 120, "forwarded")
    finally:
        assert stop(node.process) == 0
        stop(orthanc.process)
    assert {p.stem for p in out.rglob("*.dcm")} == pseudonymous_uids(wanted)


def test_stow_rs_to_orthanc(tmp_path: Path, external_tool: Tool) -> None:
    orthanc_tool = external_tool("Orthanc")
    if not DICOMWEB_PLUGIN.is_file():
        message = "Orthanc's DICOMweb plugin is missing (Debian package orthanc-dicomweb)"
        if peers_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    files = _study(tmp_path / "originals", 2, 12)
    orthanc = start_orthanc(orthanc_tool, tmp_path / "orthanc", dicomweb=True)
    url = f"http://{HOST}:{orthanc.http_port}/dicom-web"
    node = start_node(tmp_path, tmp_path / "spool", "--forward-dicomweb", url,
                      "--batch-size", "5")
    try:
        sent = storescu(external_tool("storescu"), node.port, files)
        assert len(sent.acknowledged) == len(files), sent.output[-2000:]
        wait_for(lambda: node.status()["forwarded"] == len(files), 120, "forwarded")
        assert node.status()["failed"] == 0
        assert sorted(orthanc.sop_instance_uids()) == sorted(pseudonymous_uids(files))
    finally:
        assert stop(node.process) == 0
        stop(orthanc.process)


def test_pull_by_c_get_into_the_spool(tmp_path: Path, external_tool: Tool) -> None:
    wanted = _study(tmp_path / "originals", 3, 5)
    other = _study(tmp_path / "others", 4, 2)
    orthanc = start_orthanc(external_tool("Orthanc"), tmp_path / "orthanc")
    out, spool = tmp_path / "out", tmp_path / "spool"
    node = start_node(tmp_path, spool, "--forward-folder", str(out))
    try:
        for path in wanted + other:
            orthanc.upload(path)
        from pydicom import dcmread

        patient_id = str(dcmread(wanted[0], stop_before_pixels=True).PatientID)
        run = subprocess.run([sys.executable, "-m", "dcmanon", "pull",
                              f"ORTHANC@{HOST}:{orthanc.dicom_port}", "--get-into", str(spool),
                              "--patient-id", patient_id],
                             capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stderr
        assert "1 studies found, 5 images retrieved" in run.stderr
        assert patient_id not in run.stderr + run.stdout
        wait_for(lambda: node.status()["forwarded"] == len(wanted), 120, "forwarded")
    finally:
        assert stop(node.process) == 0
        stop(orthanc.process)
    assert {p.stem for p in out.rglob("*.dcm")} == pseudonymous_uids(wanted)
