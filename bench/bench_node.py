"""Benchmark the DICOM node against its ceiling and DCMTK, side by side, in one run.

    .venv/bin/python bench/bench_node.py               # 200 CT slices of 512x512 (0.5 MB)
    .venv/bin/python bench/bench_node.py --slices 50

On a synthetic CT series (dcmanon.testing), on loopback, with DCMTK's storescu as the sender
(``TCP_NODELAY=1``: DCMTK's default build otherwise waits on Nagle's algorithm):

* ``storescu -> storescp`` direct (DCMTK both ends);
* ``storescu -> bare receiver``: pynetdicom with the node's presentation contexts, whose
  handler only writes the received bytes and flushes them (fsync): the ceiling of a node that
  acknowledges only what is durable;
* ``storescu -> dcmanon serve -> storescp``: the node, de-identifying (PS3.15 Basic Profile)
  and forwarding while it receives.

Prints images/s received, the node's ratio to the bare receiver and to storescp, its peak
memory (VmHWM), and the delay from the last image acknowledged to the last one forwarded.
Nothing is asserted: speed is measured, not tested.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TCP_NODELAY": "1"}

BARE_RECEIVER = textwrap.dedent("""
    import os, sys
    from pynetdicom import evt
    from dcmanon.net.scp import storage_ae
    from dcmanon.net._sockets import no_delay_on_open
    folder, port = sys.argv[1], int(sys.argv[2])
    count = 0
    def store(event):
        global count
        count += 1
        fd = os.open(os.path.join(folder, f"{count:06d}.dcm"), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, event.encoded_dataset())
        os.fsync(fd)
        os.close(fd)
        return 0
    ae = storage_ae("BARE")
    print("ready", flush=True)
    ae.start_server(("127.0.0.1", port), evt_handlers=[(evt.EVT_C_STORE, store),
                                                       (evt.EVT_CONN_OPEN, no_delay_on_open)])
""")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def make_series(folder: Path, slices: int) -> list[Path]:
    from dcmanon.testing import make_instance, make_patient

    folder.mkdir(parents=True)
    patient = make_patient(0)
    paths = []
    for index in range(slices):
        path = folder / f"{index:04d}.dcm"
        make_instance(patient, 0, 0, index, rows=512, columns=512).save_as(
            path, enforce_file_format=True)
        paths.append(path)
    return paths


def send(port: int, called: str, files: list[Path]) -> float:
    start = time.perf_counter()
    subprocess.run(["storescu", "-aec", called, "127.0.0.1", str(port), *map(str, files)],
                   env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def storescp(folder: Path, port: int) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(["storescp", "-aet", "DEST", "--output-directory", str(folder),
                                str(port)], env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_port(port)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def peak_mb(pid: int) -> float:
    """Peak resident memory of ``pid`` and its children (the node's worker process)."""
    total = 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for process in [pid, *map(int, children)]:
        for line in Path(f"/proc/{process}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def status(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def run(slices: int, work: Path) -> None:
    files = make_series(work / "in", slices)
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    print(f"{slices} CT slices, {megabytes:.0f} MB, loopback; sender: storescu")

    port = free_port()
    dest = storescp(work / "direct", port)
    direct = send(port, "DEST", files)
    stop(dest)

    port = free_port()
    (work / "bare").mkdir()
    bare = subprocess.Popen([str(BIN / "python"), "-c", BARE_RECEIVER, str(work / "bare"),
                             str(port)], env=ENV)
    wait_port(port)
    ceiling = send(port, "BARE", files)
    stop(bare)

    dest_port, port, status_port = free_port(), free_port(), free_port()
    dest = storescp(work / "forwarded", dest_port)
    key = work / "key.txt"
    key.write_text("bench-key-" + "k" * 40)
    node = subprocess.Popen([str(BIN / "dcmanon"), "serve", "--spool", str(work / "spool"),
                             "--host", "127.0.0.1", "--port", str(port),
                             "--forward", f"DEST@127.0.0.1:{dest_port}", "--key-file", str(key),
                             "--status-port", str(status_port)], env=ENV,
                            stderr=sys.stderr)
    wait_port(port)
    wait_port(status_port)
    through = send(port, "DCMANON", files)
    acknowledged = time.perf_counter()
    deadline = time.monotonic() + 600
    while status(status_port)["forwarded"] < slices:
        if time.monotonic() > deadline:
            raise SystemExit(f"not all forwarded after 600 s: {status(status_port)}")
        time.sleep(0.02)
    delay = time.perf_counter() - acknowledged
    memory = peak_mb(node.pid)
    stop(node)
    stop(dest)

    def rate(seconds: float) -> float:
        return slices / seconds

    print(f"  storescu -> storescp direct      {rate(direct):7.1f} images/s")
    print(f"  storescu -> bare receiver        {rate(ceiling):7.1f} images/s (write + fsync)")
    print(f"  storescu -> dcmanon serve        {rate(through):7.1f} images/s received, "
          f"de-identified and forwarded to storescp")
    print(f"  node / bare receiver             {ceiling / through:7.0%}   (target >= 60%)")
    print(f"  node / storescp direct           {direct / through:7.0%}")
    print(f"  node peak memory (VmHWM, both processes) {memory:5.0f} MB")
    print(f"  last acknowledged -> last forwarded {delay:5.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dcmanon-bench-node-") as work:
        run(args.slices, Path(work))


if __name__ == "__main__":
    main()
