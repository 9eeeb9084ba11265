"""What the node's tests share: free loopback ports, the node as a real process, DCMTK peers
(storescp as the destination, storescu as the modality) and what they said."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread

from dcmanon import Anonymizer
from dcmanon.config.loader import parse_config
from dcmanon.testing import make_instance, make_patient

KEY = "net-test-key-0123456789-abcdefghijklmnopqrstuvwxyz"
"""The project key of the node under test (at least 32 characters)."""
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
"""DCMTK waits on Nagle's algorithm (~22 images/s on loopback) unless told not to."""
HOST = "127.0.0.1"


_STARTED: list[subprocess.Popen[Any]] = []
"""Every process a test started through these helpers: :func:`reap` ends those left running
(a failing test must not leave a node, storescp or Orthanc behind)."""


def track(process: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    """Have :func:`reap` end ``process`` after the test if it still runs."""
    _STARTED.append(process)
    return process


def reap() -> None:
    """Kill (SIGKILL) what the test started and left running."""
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def free_port() -> int:
    """A port nothing listens on now (bound to 0, then released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes] | None = None,
              timeout: float = 60.0) -> None:
    """Wait until something accepts connections on ``port`` (fail if ``process`` ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process ended with {process.returncode} before listening")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


def wait_for(predicate: object, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``predicate()`` until true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then wait (SIGKILL after 30 s); the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


def storescp(storescp_tool: str, folder: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    """DCMTK's storescp as the destination (AE ``DEST``, every transfer syntax, a unique
    file per image received, so that a second copy would show)."""
    folder.mkdir(parents=True, exist_ok=True)
    process = track(subprocess.Popen(
        [storescp_tool, "-aet", "DEST", "+xa", "--unique-filenames", "--output-directory",
         str(folder), *extra, str(port)], env=DCMTK_ENV, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL))
    wait_port(port, process)
    return process


@dataclass
class Node:
    """``dcmanon serve`` running as its own process."""

    process: subprocess.Popen[bytes]
    port: int
    spool: Path
    stderr: Path
    status_port: int | None = None
    extra: list[str] = field(default_factory=list)

    def status(self) -> dict[str, object]:
        assert self.status_port is not None
        url = f"http://{HOST}:{self.status_port}/status"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return dict(json.loads(answer.read()))

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")


def start_node(tmp_path: Path, spool: Path, *args: str, port: int | None = None,
               status: bool = True, name: str = "node", with_key: bool = True,
               env: dict[str, str] | None = None) -> Node:
    """Start ``dcmanon serve`` on loopback with the test key; return once it listens."""
    port = port or free_port()
    status_port = free_port() if status else None
    stderr = tmp_path / f"{name}.stderr"
    command = [sys.executable, "-m", "dcmanon", "serve", "--spool", str(spool), "--host", HOST,
               "--port", str(port), *args]
    if with_key:
        key_file = tmp_path / "key.txt"
        key_file.write_text(KEY, encoding="utf-8")
        command += ["--key-file", str(key_file)]
    if status_port is not None:
        command += ["--status-port", str(status_port)]
    with open(stderr, "ab") as log:
        process = track(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log,
                                         env={**os.environ, **(env or {})}))
    node = Node(process, port, spool, stderr, status_port)
    wait_port(port, process)
    if status_port is not None:
        wait_port(status_port, process)
    return node


@dataclass(frozen=True)
class Sent:
    """What storescu said: files answered Success, and files answered otherwise."""

    acknowledged: list[Path]
    refused: list[Path]
    returncode: int
    output: str


def write_series(folder: Path, count: int, *, patient: int = 0, rows: int = 64) -> list[Path]:
    """``count`` synthetic CT images of one series of fake ``patient``, written to ``folder``
    (``<patient>-<index>.dcm``: several patients can share a folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    fake = make_patient(patient)
    paths = []
    for index in range(count):
        path = folder / f"{patient}-{index:04d}.dcm"
        make_instance(fake, 0, 0, index, rows=rows, columns=rows).save_as(
            path, enforce_file_format=True)
        paths.append(path)
    return paths


def storescu(storescu_tool: str, port: int, files: list[Path], *extra: str,
             called: str = "DCMANON", timeout: float = 120) -> Sent:
    """Send ``files`` with DCMTK's storescu, verbose, and read which were acknowledged."""
    run = subprocess.run([storescu_tool, "-v", "-aec", called, *extra, HOST, str(port),
                          *map(str, files)], env=DCMTK_ENV, capture_output=True, text=True,
                         timeout=timeout, check=False)
    output = run.stdout + run.stderr
    acknowledged, refused = store_responses(output)
    return Sent(acknowledged, refused, run.returncode, output)


def start_storescu(storescu_tool: str, port: int, files: list[Path]) -> subprocess.Popen[str]:
    """storescu sending ``files`` in the background (to kill the node during the send); read
    its output with :func:`store_responses`."""
    return track(subprocess.Popen([storescu_tool, "-v", "-aec", "DCMANON", HOST, str(port),
                                   *map(str, files)], env=DCMTK_ENV, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True))


def store_responses(output: str) -> tuple[list[Path], list[Path]]:
    """The files verbose storescu output says were acknowledged, and those refused."""
    acknowledged, refused = [], []
    current: Path | None = None
    for line in output.splitlines():
        sending = re.search(r"Sending file: (.+)$", line)
        if sending:
            current = Path(sending.group(1).strip())
        elif "Received Store Response" in line and current is not None:
            (acknowledged if "(Success)" in line else refused).append(current)
            current = None
    return acknowledged, refused


def pseudonymous_uids(files: list[Path], key: str = KEY) -> set[str]:
    """The SOP Instance UIDs the node gives ``files`` (same key, same Basic Profile)."""
    config = parse_config({"profile": "basic"}, source="test", secret=key)
    anonymizer = Anonymizer(config)
    uids = set()
    for path in files:
        ds = dcmread(path, stop_before_pixels=True)
        anonymizer.anonymize_dataset(ds)
        uids.add(str(ds.SOPInstanceUID))
    return uids


def received_uids(folder: Path) -> list[str]:
    """The SOP Instance UIDs of every file in ``folder`` (one per file: copies count twice)."""
    return [str(dcmread(p, stop_before_pixels=True).SOPInstanceUID)
            for p in sorted(folder.rglob("*")) if p.is_file()]


@dataclass
class Orthanc:
    """Orthanc on loopback, with a temporary configuration and storage."""

    process: subprocess.Popen[bytes]
    dicom_port: int
    http_port: int

    def get(self, path: str) -> object:
        url = f"http://{HOST}:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            return json.loads(answer.read())

    def upload(self, path: Path) -> None:
        request = urllib.request.Request(f"http://{HOST}:{self.http_port}/instances",
                                         data=path.read_bytes(), method="POST",
                                         headers={"Content-Type": "application/dicom"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    def sop_instance_uids(self) -> list[str]:
        uids = []
        for instance in self.get("/instances?expand") or []:  # type: ignore[attr-defined]
            uids.append(str(instance["MainDicomTags"]["SOPInstanceUID"]))
        return uids


DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
"""Orthanc's DICOMweb plugin (Debian package orthanc-dicomweb)."""


def start_orthanc(orthanc_tool: str, folder: Path,
                  modalities: dict[str, list[object]] | None = None,
                  dicomweb: bool = False) -> Orthanc:
    """Orthanc (AE ``ORTHANC``) on free loopback ports, storing under ``folder``; it knows
    ``modalities`` (name -> [AE, host, port]) as C-MOVE destinations."""
    folder.mkdir(parents=True, exist_ok=True)
    dicom_port, http_port = free_port(), free_port()
    config = {"Name": "dcmanon-test", "StorageDirectory": str(folder / "db"),
              "IndexDirectory": str(folder / "db"), "DicomAet": "ORTHANC",
              "DicomPort": dicom_port, "HttpPort": http_port, "RemoteAccessAllowed": False,
              "AuthenticationEnabled": False, "DicomCheckCalledAet": False,
              "DicomAlwaysAllowStore": True, "DicomAlwaysAllowEcho": True,
              "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True,
              "DicomModalities": modalities or {},
              "Plugins": [str(DICOMWEB_PLUGIN)] if dicomweb else [],
              "DicomWeb": {"Enable": dicomweb, "Root": "/dicom-web/"},
              "HttpServerEnabled": True, "StorageCompression": False}
    (folder / "orthanc.json").write_text(json.dumps(config), encoding="utf-8")
    with open(folder / "orthanc.log", "ab") as log:
        process = track(subprocess.Popen([orthanc_tool, str(folder / "orthanc.json")],
                                         stdout=log, stderr=log))
    wait_port(http_port, process)
    wait_port(dicom_port, process)
    return Orthanc(process, dicom_port, http_port)
