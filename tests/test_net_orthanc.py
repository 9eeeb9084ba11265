"""The node with Orthanc on loopback: as the destination (its REST API says what arrived),
and as the PACS that `dcmanon pull` queries and moves studies from."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dcmanon.testing import make_patient, phi_markers
from tests.conftest import peers_required
from tests.net_peers import (
    DICOMWEB_PLUGIN,
    HOST,
    free_port,
    pseudonymous_uids,
    start_node,
    start_orthanc,
    stop,
    storescu,
    wait_for,
    write_series,
)

pytestmark = [pytest.mark.peer, pytest.mark.usefixtures("no_process_left")]
Tool = Callable[[str], str]


def test_orthanc_as_the_destination(tmp_path: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 20, patient=0)
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
    wanted = write_series(tmp_path / "originals", 6, patient=0)
    other = write_series(tmp_path / "others", 4, patient=1)
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
    files = write_series(tmp_path / "originals", 12, patient=2)
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
    wanted = write_series(tmp_path / "originals", 5, patient=3)
    other = write_series(tmp_path / "others", 2, patient=4)
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
