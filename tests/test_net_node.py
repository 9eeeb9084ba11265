"""The DICOM node with real peers on loopback: DCMTK storescu/echoscu send to `dcmanon serve`,
which forwards to DCMTK storescp; what arrives is checked with `dcmanon check`.

Each node is a real process (so that it can be killed), on free ports of 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dcmanon.testing import make_patient, phi_markers
from tests.net_peers import (
    DCMTK_ENV,
    HOST,
    KEY,
    free_port,
    pseudonymous_uids,
    received_uids,
    start_node,
    start_storescu,
    stop,
    store_responses,
    storescp,
    storescu,
    track,
    wait_for,
    write_series,
)

pytestmark = [pytest.mark.peer, pytest.mark.usefixtures("no_process_left")]
Tool = Callable[[str], str]


def _check(originals: Path, received: Path) -> dict[str, object]:
    run = subprocess.run([sys.executable, "-m", "dcmanon", "check", "--original",
                          str(originals), "--anonymized", str(received), "--json", "-"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return dict(json.loads(run.stdout))


def test_echo_and_a_wrong_called_ae(tmp_path: Path, external_tool: Tool) -> None:
    node = start_node(tmp_path, tmp_path / "spool", "--forward-folder", str(tmp_path / "out"),
                      status=False)
    try:
        echo = external_tool("echoscu")
        ok = subprocess.run([echo, "-aec", "DCMANON", HOST, str(node.port)], env=DCMTK_ENV,
                            capture_output=True, timeout=60, check=False)
        assert ok.returncode == 0, ok.stderr
        wrong = subprocess.run([echo, "-aec", "SOMEONE", HOST, str(node.port)],
                               env=DCMTK_ENV, capture_output=True, timeout=60, check=False)
        assert wrong.returncode != 0
    finally:
        assert stop(node.process) == 0


def test_a_series_arrives_de_identified_with_its_links(tmp_path: Path,
                                                        external_tool: Tool) -> None:
    originals = tmp_path / "originals"
    files = write_series(originals, 200)
    # Compressed images, each with the storescu option that proposes its transfer syntax.
    compressed = {originals / "JPEG2000.dcm": "-xw", originals / "MR_small_RLE.dcm": "-xr",
                  originals / "SC_rgb_jpeg_dcmtk.dcm": "-xy"}
    for path in compressed:
        shutil.copyfile(get_testdata_file(path.name) or "", path)
    dest_port = free_port()
    dest = storescp(external_tool("storescp"), tmp_path / "received", dest_port)
    # Region rules only: OCR may find a "word" in JPEG2000.dcm's anatomy and re-encode it,
    # and this test is about what the network carries (tests/test_pixels_* cover the pixels).
    config = tmp_path / "rules-only.json"
    config.write_text('{"profile": "basic", "pixels": {"mode": "rules"}}', encoding="utf-8")
    node = start_node(tmp_path, tmp_path / "spool", "--forward", f"DEST@{HOST}:{dest_port}",
                      "--audit-log", str(tmp_path / "audit.jsonl"), "-c", str(config))
    try:
        sent = storescu(external_tool("storescu"), node.port, files)
        assert sent.returncode == 0 and not sent.refused, sent.output[-2000:]
        for path, option in compressed.items():
            one = storescu(external_tool("storescu"), node.port, [path], option)
            assert one.returncode == 0, one.output[-2000:]
            sent.acknowledged.extend(one.acknowledged)
        assert len(sent.acknowledged) == len(files) + len(compressed)
        wait_for(lambda: node.status()["forwarded"] == len(sent.acknowledged), 120,
                 "every image forwarded")
        status = node.status()
        assert status["queued"] == 0 and status["failed"] == 0
        assert status["associations"] == 1 + len(compressed)
    finally:
        assert stop(node.process) == 0
        stop(dest)
    # Delivery is at least once: a send whose answer was lost (a timeout on a loaded machine)
    # is sent again, so copies are not counted here (test_a_re_sent_image... counts them).
    received = sorted((tmp_path / "received").iterdir())
    # Compressed images travel in their own transfer syntax, untouched.
    syntaxes = {str(dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID)
                for p in received}
    assert {str(dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID)
            for p in compressed} <= syntaxes
    assert set(received_uids(tmp_path / "received")) == pseudonymous_uids(files + list(compressed))
    # The series hangs together: one study, one series, one frame of reference, new UIDs.
    series = [dcmread(p, stop_before_pixels=True) for p in received
              if dcmread(p, stop_before_pixels=True).Modality == "CT"]
    first = dcmread(files[0], stop_before_pixels=True)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        values = {str(getattr(ds, keyword)) for ds in series}
        assert len(values) == 1 and values != {str(getattr(first, keyword))}, keyword
    # One file per instance for the check (a copy would be a duplicate SOPInstanceUID to it).
    unique = tmp_path / "received-once"
    unique.mkdir()
    for path in received:
        uid = str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        if not (unique / f"{uid}.dcm").exists():
            os.link(path, unique / f"{uid}.dcm")
    report = _check(originals, unique)
    assert report["findings_total"] == 0
    assert report["files_checked"] == len(files) + len(compressed)
    assert status["forwarded"] == len(files) + len(compressed)
    # The audit log holds pseudonyms only: no marker of the fake patient.
    audit = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    events = [json.loads(line)["event"] for line in audit.splitlines()]
    assert events.count("received") == events.count("forwarded") == len(sent.acknowledged)
    for marker in [*phi_markers(make_patient(0)), str(first.SOPInstanceUID)]:
        assert marker not in audit


def test_kill_9_while_receiving_loses_nothing_acknowledged(tmp_path: Path,
                                                           external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 120, rows=128)
    dest_port = free_port()
    dest = storescp(external_tool("storescp"), tmp_path / "received", dest_port)
    spool = tmp_path / "spool"
    args = ("--forward", f"DEST@{HOST}:{dest_port}")
    node = start_node(tmp_path, spool, *args)
    sender = start_storescu(external_tool("storescu"), node.port, files)
    try:
        wait_for(lambda: node.status()["received"] >= 20, 60, "images arriving")
        node.process.kill()  # kill -9: no chance to clean up
        node.process.wait()
        output = sender.communicate(timeout=60)[0]
    finally:
        sender.kill()
    acknowledged = store_responses(output)[0]
    assert 20 <= len(acknowledged) < len(files), "the kill must fall within the send"
    restarted = start_node(tmp_path, spool, *args, name="restarted")
    try:
        wait_for(lambda: restarted.status()["queued"] == 0, 120, "the spool drained")
    finally:
        assert stop(restarted.process) == 0
        stop(dest)
    arrived = set(received_uids(tmp_path / "received"))
    assert pseudonymous_uids(acknowledged) <= arrived
    assert not list((spool / "tmp").iterdir())


def test_destination_down_then_up(tmp_path: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 30)
    dest_port = free_port()
    node = start_node(tmp_path, tmp_path / "spool", "--forward", f"DEST@{HOST}:{dest_port}",
                      "--retry-max-delay", "1")
    try:
        sent = storescu(external_tool("storescu"), node.port, files)
        assert len(sent.acknowledged) == len(files), sent.output[-2000:]
        wait_for(lambda: node.status()["retries"] > 0, 30, "a failed attempt")
        assert node.status()["queued"] == len(files)
        dest = storescp(external_tool("storescp"), tmp_path / "received", dest_port)
        try:
            wait_for(lambda: node.status()["queued"] == 0, 60, "the spool drained")
        finally:
            stop(dest)
        assert node.status()["failed"] == 0
    finally:
        assert stop(node.process) == 0
    assert set(received_uids(tmp_path / "received")) == pseudonymous_uids(files)


def test_spool_full_acknowledges_nothing_more(tmp_path: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 10, rows=128)
    size = files[0].stat().st_size
    dest_port = free_port()
    # Room for three images; the destination is down, so nothing leaves the spool.
    node = start_node(tmp_path, tmp_path / "spool", "--forward", f"DEST@{HOST}:{dest_port}",
                      "--spool-limit", str(3 * size + size // 2), "--retry-max-delay", "1")
    try:
        sent = storescu(external_tool("storescu"), node.port, files)
        assert len(sent.acknowledged) == 3, sent.output[-2000:]
        assert sent.refused, "the fourth image must be refused"
        assert "OutOfResources" in sent.output
        status = node.status()
        assert status["received"] == 3 and status["refused"] >= 1
        dest = storescp(external_tool("storescp"), tmp_path / "received", dest_port)
        try:
            wait_for(lambda: node.status()["queued"] == 0, 60, "the spool drained")
        finally:
            stop(dest)
        # Room again once forwarded.
        again = storescu(external_tool("storescu"), node.port, files[3:5])
        assert len(again.acknowledged) == 2, again.output[-2000:]
    finally:
        assert stop(node.process) == 0
    assert pseudonymous_uids(sent.acknowledged) <= set(received_uids(tmp_path / "received"))


def test_a_re_sent_image_makes_no_second_copy(tmp_path: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 5)
    dest_port = free_port()
    dest = storescp(external_tool("storescp"), tmp_path / "received", dest_port)
    node = start_node(tmp_path, tmp_path / "spool", "--forward", f"DEST@{HOST}:{dest_port}",
                      "--audit-log", str(tmp_path / "audit.jsonl"))
    try:
        for _ in range(2):
            sent = storescu(external_tool("storescu"), node.port, files)
            assert len(sent.acknowledged) == len(files), sent.output[-2000:]
            wait_for(lambda: node.status()["queued"] == 0, 60, "the spool drained")
        status = node.status()
        assert status["forwarded"] == len(files) and status["duplicates"] == len(files)
    finally:
        assert stop(node.process) == 0
        stop(dest)
    # storescp keeps every copy under its own name (--unique-filenames): one each.
    assert sorted(received_uids(tmp_path / "received")) == sorted(pseudonymous_uids(files))


def test_quarantine_with_a_reason_then_requeue(tmp_path: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 3)
    spool, out = tmp_path / "spool", tmp_path / "out"
    # Nesting limited to one level: the factory's nested code sequences fail the image.
    node = start_node(tmp_path, spool, "--forward-folder", str(out), "--max-nesting", "1")
    try:
        sent = storescu(external_tool("storescu"), node.port, files)
        assert len(sent.acknowledged) == len(files), sent.output[-2000:]
        wait_for(lambda: node.status()["failed"] == len(files), 60, "quarantined")
    finally:
        assert stop(node.process) == 0
    reasons = sorted((spool / "quarantine").glob("*.reason.txt"))
    assert len(reasons) == len(files)
    text = reasons[0].read_text(encoding="utf-8")
    assert "de-identification failed" in text and "nest" in text
    for marker in phi_markers(make_patient(0)):
        assert marker not in text
    requeue = subprocess.run([sys.executable, "-m", "dcmanon", "serve", "--spool", str(spool),
                              "--requeue"], capture_output=True, text=True, timeout=60,
                             check=False)
    assert requeue.returncode == 0 and "3 quarantined image(s) put back" in requeue.stderr
    node = start_node(tmp_path, spool, "--forward-folder", str(out), name="again")
    try:
        wait_for(lambda: node.status()["forwarded"] == len(files), 60, "forwarded")
    finally:
        assert stop(node.process) == 0
    written = sorted(p for p in out.rglob("*.dcm"))
    assert {p.stem for p in written} == pseudonymous_uids(files)
    assert not list((spool / "quarantine").iterdir())


def test_allow_lists_and_metrics(tmp_path: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 2)
    node = start_node(tmp_path, tmp_path / "spool", "--forward-folder", str(tmp_path / "out"),
                      "--allow-ae", "MODALITY", "--allow-host", "127.0.0.0/8")
    try:
        refused = storescu(external_tool("storescu"), node.port, files, "-aet", "INTRUDER")
        assert not refused.acknowledged and refused.returncode != 0
        sent = storescu(external_tool("storescu"), node.port, files, "-aet", "MODALITY")
        assert len(sent.acknowledged) == 2, sent.output[-2000:]
        wait_for(lambda: node.status()["forwarded"] == 2, 60, "forwarded")
        url = f"http://{HOST}:{node.status_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            metrics = answer.read().decode()
        assert "dcmanon_node_forwarded 2" in metrics
        assert "# TYPE dcmanon_node_queued gauge" in metrics
    finally:
        assert stop(node.process) == 0
    assert KEY not in node.log()


def test_an_address_not_allowed_is_refused(tmp_path: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 1)
    node = start_node(tmp_path, tmp_path / "spool", "--forward-folder", str(tmp_path / "out"),
                      "--allow-host", "10.0.0.0/8")
    try:
        sent = storescu(external_tool("storescu"), node.port, files)
        assert not sent.acknowledged and sent.returncode != 0
        assert node.status()["received"] == 0
    finally:
        assert stop(node.process) == 0


def test_sigterm_finishes_the_association_and_keeps_the_spool(tmp_path: Path,
                                                              external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 100, rows=128)
    spool = tmp_path / "spool"
    dest_port = free_port()  # down: what was received stays in the spool
    args = ("--forward", f"DEST@{HOST}:{dest_port}", "--retry-max-delay", "1",
            "--audit-log", str(tmp_path / "audit.jsonl"))
    node = start_node(tmp_path, spool, *args)
    sender = start_storescu(external_tool("storescu"), node.port, files)
    try:
        wait_for(lambda: node.status()["received"] >= 10, 60, "images arriving")
        node.process.terminate()
        output = sender.communicate(timeout=120)[0]
        assert node.process.wait(120) == 0
    finally:
        sender.kill()
    # The association in progress went on to its end: every image acknowledged and kept.
    assert sender.returncode == 0 and len(store_responses(output)[0]) == len(files), output[-2000:]
    assert "stopping" in node.log()
    assert len(list((spool / "queue").iterdir())) == len(files)
    dest = storescp(external_tool("storescp"), tmp_path / "received", dest_port)
    restarted = start_node(tmp_path, spool, *args, name="restarted")
    try:
        wait_for(lambda: restarted.status()["queued"] == 0, 120, "the spool drained")
    finally:
        assert stop(restarted.process) == 0
        stop(dest)
    assert set(received_uids(tmp_path / "received")) == pseudonymous_uids(files)


def test_routes_by_called_and_calling_ae(tmp_path: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 3)
    key_b = "route-b-key-" + "9" * 40
    (tmp_path / "b.key").write_text(key_b, encoding="utf-8")
    (tmp_path / "routes.json").write_text(json.dumps({"routes": [
        {"name": "a", "calledAE": "TRIAL_A", "forwardFolder": "out-a"},
        {"name": "b", "calledAE": "TRIAL_B", "callingAE": "MODALITY", "keyFile": "b.key",
         "forwardFolder": "out-b"},
    ]}), encoding="utf-8")
    node = start_node(tmp_path, tmp_path / "spool", "--routes", str(tmp_path / "routes.json"),
                      with_key=False, env={"DCMANON_KEY": KEY})
    tool = external_tool("storescu")
    try:
        assert len(storescu(tool, node.port, files, called="TRIAL_A").acknowledged) == 3
        assert len(storescu(tool, node.port, files, "-aet", "MODALITY",
                            called="TRIAL_B").acknowledged) == 3
        for called, calling in (("TRIAL_B", "OTHER"), ("TRIAL_C", "MODALITY")):
            refused = storescu(tool, node.port, files, "-aet", calling, called=called)
            assert not refused.acknowledged, (called, calling)
        wait_for(lambda: node.status()["forwarded"] == 6, 60, "forwarded")
    finally:
        assert stop(node.process) == 0
    # Each route with its own key: pseudonyms differ, each as its key makes them.
    assert {p.stem for p in (tmp_path / "out-a").rglob("*.dcm")} == pseudonymous_uids(files)
    assert {p.stem for p in (tmp_path / "out-b").rglob("*.dcm")} == pseudonymous_uids(
        files, key_b)
    assert sorted(p.name for p in (tmp_path / "spool").iterdir()) == ["a", "b"]


def _band_config(folder: Path) -> Path:
    """A configuration whose region rule blanks the top 8 rows of CT images, its pixel mode
    off: only a --pixels given to the node (or its route) makes the rule apply."""
    path = folder / "config.json"
    path.write_text(json.dumps({"profile": "basic", "pixels": {
        "mode": "off", "defaultLibrary": False,
        "rules": [{"name": "top band", "when": {"tag": "Modality", "equals": "CT"},
                   "blank": [[0, 0, 64, 8]]}]}}), encoding="utf-8")
    return path


def _banded(originals: list[Path], received: Path) -> list[bool]:
    """For each image received: whether its top band holds the image's black (else it must
    be as sent); below the band, every image is as sent."""
    from dcmanon.pixels.blank import black

    sent = [dcmread(p).pixel_array for p in originals]
    outcome = []
    for path in sorted(received.rglob("*.dcm")):
        ds = dcmread(path)
        pixels, dark = ds.pixel_array, black(ds)[0]
        before = next(a for a in sent if (a[8:] == pixels[8:]).all())
        assert (before[:8] != dark).any()
        blanked = bool((pixels[:8] == dark).all())
        assert blanked or (pixels[:8] == before[:8]).all()
        outcome.append(blanked)
    return outcome


def test_pixels_option_reaches_the_pipeline(tmp_path: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 2)
    out = tmp_path / "out"
    node = start_node(tmp_path, tmp_path / "spool", "--forward-folder", str(out), "-c",
                      str(_band_config(tmp_path)), "--pixels", "rules")
    try:
        sent = storescu(external_tool("storescu"), node.port, files)
        assert len(sent.acknowledged) == 2, sent.output[-2000:]
        wait_for(lambda: node.status()["forwarded"] == 2, 60, "forwarded")
    finally:
        assert stop(node.process) == 0
    assert _banded(files, out) == [True, True]


def test_a_route_s_pixels_mode(tmp_path: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 1)
    config = _band_config(tmp_path).name
    (tmp_path / "routes.json").write_text(json.dumps({"routes": [
        {"name": "a", "calledAE": "BLANKS", "configFile": config, "pixels": "rules",
         "forwardFolder": "out-a"},
        {"name": "b", "calledAE": "KEEPS", "configFile": config, "forwardFolder": "out-b"},
    ]}), encoding="utf-8")
    node = start_node(tmp_path, tmp_path / "spool", "--routes", str(tmp_path / "routes.json"),
                      with_key=False, env={"DCMANON_KEY": KEY})
    tool = external_tool("storescu")
    try:
        for called in ("BLANKS", "KEEPS"):
            assert len(storescu(tool, node.port, files, called=called).acknowledged) == 1
        wait_for(lambda: node.status()["forwarded"] == 2, 60, "forwarded")
    finally:
        assert stop(node.process) == 0
    assert _banded(files, tmp_path / "out-a") == [True]
    assert _banded(files, tmp_path / "out-b") == [False]


def test_a_dead_worker_is_started_again(tmp_path: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 5)
    out = tmp_path / "out"
    node = start_node(tmp_path, tmp_path / "spool", "--forward-folder", str(out))
    try:
        pid = node.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        workers = [int(c) for c in children
                   if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)
        sent = storescu(external_tool("storescu"), node.port, files)
        assert len(sent.acknowledged) == len(files), sent.output[-2000:]
        wait_for(lambda: node.status()["forwarded"] == len(files), 60, "forwarded")
    finally:
        assert stop(node.process) == 0
    assert "starting it again" in node.log()
    assert {p.stem for p in out.rglob("*.dcm")} == pseudonymous_uids(files)


def test_mapping_files_on_request(tmp_path: Path, external_tool: Tool) -> None:
    files = write_series(tmp_path / "originals", 3)
    mapping = tmp_path / "mapping"
    node = start_node(tmp_path, tmp_path / "spool", "--forward-folder", str(tmp_path / "out"),
                      "--mapping-dir", str(mapping))
    try:
        for _ in range(2):  # a re-sent image adds no row
            sent = storescu(external_tool("storescu"), node.port, files)
            assert len(sent.acknowledged) == len(files), sent.output[-2000:]
            wait_for(lambda: node.status()["queued"] == 0, 60, "the spool drained")
    finally:
        assert stop(node.process) == 0
    uids = dict(line.split(",") for line in
                (mapping / "uid_mapping.csv").read_text(encoding="utf-8").splitlines()[1:])
    originals = [str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files]
    assert {uids[uid] for uid in originals} == pseudonymous_uids(files)
    patients = (mapping / "patient_mapping.csv").read_text(encoding="utf-8").splitlines()
    assert patients[0] == "id_old,id_new" and len(patients) == 2
    assert patients[1].startswith(make_patient(0).patient_id + ",")


def test_two_senders_at_once(tmp_path: Path, external_tool: Tool) -> None:
    first = write_series(tmp_path / "first", 30, patient=0)
    second = write_series(tmp_path / "second", 30, patient=1)
    out = tmp_path / "out"
    node = start_node(tmp_path, tmp_path / "spool", "--forward-folder", str(out))
    try:
        senders = [track(subprocess.Popen([external_tool("storescu"), "-aec", "DCMANON", HOST,
                                           str(node.port), *map(str, files)], env=DCMTK_ENV,
                                          stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
                   for files in (first, second)]
        assert [s.wait(120) for s in senders] == [0, 0]
        wait_for(lambda: node.status()["forwarded"] == 60, 60, "forwarded")
        assert node.status()["associations"] == 2
    finally:
        assert stop(node.process) == 0
    assert {p.stem for p in out.rglob("*.dcm")} == pseudonymous_uids(first + second)
