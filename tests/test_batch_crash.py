"""A run killed with SIGKILL halfway, then run again, leaves exactly the complete set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcmanon import Anonymizer, parse_config
from dcmanon.batch.run import BatchOptions, run_folder
from dcmanon.testing import write_study_tree

KEY = "test-crash-secret"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _dcmanon(source: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DCMANON_KEY": KEY}
    return subprocess.Popen([sys.executable, "-m", "dcmanon", "-I", str(source), "-O", str(out),
                             "-j", "2"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_killed_run_then_rerun_leaves_exactly_the_complete_set(tmp_path: Path) -> None:
    source = tmp_path / "in"
    write_study_tree(source, patients=6, studies=2, series=3, instances=10)  # 360 files
    total = len(list(source.rglob("*.dcm")))
    expected = tmp_path / "expected"
    run_folder(Anonymizer(parse_config({"profile": "basic"}, secret=KEY)), source, expected,
               options=BatchOptions(jobs=1))
    reference = _files(expected)
    out = tmp_path / "out"

    run = _dcmanon(source, out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        if len(list(out.rglob("*.dcm"))) >= total // 4:
            break
        time.sleep(0.01)
    assert run.poll() is None, "the run ended before it could be killed"
    os.killpg(run.pid, signal.SIGKILL)  # the command and its worker processes
    run.communicate(timeout=60)
    written = _files(out)
    partial = {name: data for name, data in written.items() if not name.startswith(".")}
    assert 0 < len([n for n in partial if not n.startswith(".dcmanon")]) < total
    for name, data in partial.items():  # what a killed run left is complete, or hidden
        if "/.dcmanon" not in f"/{name}":
            assert data == reference[name], name

    rerun = _dcmanon(source, out)
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr.decode()
    assert "already done" in stderr.decode()
    assert _files(out) == reference
