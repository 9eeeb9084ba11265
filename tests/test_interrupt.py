"""Ctrl-C in the middle of a folder run with worker processes: exit 130, only complete outputs,
no worker left behind, and a second run completes the rest.

The run is a real ``dcmanon -I in -O out -j 2`` in a process group of its own; SIGINT goes to
the whole group, as a terminal's Ctrl-C does (the workers get it too).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dcmanon import Anonymizer, parse_config
from dcmanon.batch.run import TEMP_FOLDER
from dcmanon.testing import make_instance, make_patient

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg") or not Path("/proc").is_dir(),
                                reason="needs POSIX process groups and /proc")

KEY = "test-interrupt-secret-of-32-characters-or-more"
FILES = 3600
"""Enough for the run to last well past its first output on any machine, a busy one included
(about four seconds on two cores, after about a second of start-up: 1,200 files once took
1.3 s, and the run ended before the test could interrupt it)."""
DISTINCT = 12
INTERRUPTED = ("interrupted: the files already written are complete; the files in progress "
               "and the rest were not written (run again to resume)")


def _source(index: int) -> str:
    """The input file ``index``: ten folders, one of the distinct instances in each file."""
    return f"series{index % 10}/{index // 10:04d}.dcm"


def _write_inputs(folder: Path) -> list[bytes]:
    """Small synthetic instances (16x16 pixels); file ``i`` holds distinct instance
    ``i % DISTINCT`` (making each of the files costs more than the run). Returns them."""
    patient = make_patient(11)
    distinct = []
    for index in range(DISTINCT):
        buffer = io.BytesIO()
        make_instance(patient, 0, 0, index, rows=16, columns=16).save_as(
            buffer, enforce_file_format=True)
        distinct.append(buffer.getvalue())
    for index in range(FILES):
        path = folder / _source(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(distinct[index % DISTINCT])
    return distinct


def _outputs(out: Path) -> dict[str, bytes]:
    """The files under their final names (the temporary folder left out)."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and TEMP_FOLDER not in p.relative_to(out).parts}


def _any_output(out: Path) -> bool:
    """Whether a file is under its final name yet (cheap: polled while the run goes on)."""
    return any(p.is_file() and TEMP_FOLDER not in p.relative_to(out).parts
               for p in out.rglob("*.dcm"))


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(source: Path, out: Path, log: Path) -> subprocess.Popen[bytes]:
    """The command in a process group of its own, with SIGINT handled as a terminal's
    foreground command has it (a test run in the background of a non-interactive shell
    inherits SIGINT ignored, and so would the command); its stderr goes to ``log`` (a file: a
    pipe would also wait for every worker that inherited it)."""
    with log.open("wb") as stderr:
        return subprocess.Popen([sys.executable, "-m", "dcmanon", "-I", str(source), "-O",
                                 str(out), "-j", "2"], env={**os.environ, "DCMANON_KEY": KEY},
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=stderr, start_new_session=True,
                                preexec_fn=_default_sigint)


def _group(pgid: int) -> list[int]:
    """The processes of a process group that are still alive (zombies excepted)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (name) "
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_ctrl_c_during_a_parallel_run_then_a_rerun_resumes(tmp_path: Path) -> None:
    source, out = tmp_path / "in", tmp_path / "out"
    anonymizer = Anonymizer(parse_config({"profile": "basic"}, secret=KEY))
    outputs_of = []  # what the run must write for each distinct instance
    for index, data in enumerate(_write_inputs(source)):
        (tmp_path / f"{index}.dcm").write_bytes(data)
        result = anonymizer.anonymize_file(tmp_path / f"{index}.dcm", tmp_path / "expected.dcm")
        assert result.status == "done", result.error
        outputs_of.append((tmp_path / "expected.dcm").read_bytes())
    reference = {_source(i): outputs_of[i % DISTINCT] for i in range(FILES)}

    run = _start(source, out, tmp_path / "first.log")
    try:
        started = _wait_for(lambda: run.poll() is not None or _any_output(out), 120)
        assert started and run.poll() is None, "the run ended before it could be interrupted"
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C: the command and its workers
        run.wait(timeout=120)
        written = _outputs(out)  # as the command leaves it, when the prompt comes back
        # No worker (nor forkserver) outlives the command, nor writes after it ended: the
        # command stops and waits for its workers before it exits (the grace covers the
        # helpers that leave when the command's end closes their pipe).
        assert _wait_for(lambda: not _group(run.pid), 5), _group(run.pid)
    finally:
        if _group(run.pid):
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    stderr = (tmp_path / "first.log").read_text()
    assert run.returncode == 130, stderr
    assert stderr.splitlines() == [f"dcmanon: {INTERRUPTED}"]
    assert _outputs(out) == written

    # What is there under a final name is a complete output, the one an uninterrupted run
    # writes; anything else is left in the temporary folder only, under a temporary name.
    assert 0 < len(written) < FILES
    for name, data in written.items():
        assert data == reference[name], name
    left = [p.name for p in (out / TEMP_FOLDER).rglob("*")] if (out / TEMP_FOLDER).exists() \
        else []
    assert all(name.startswith(".dcmanon-") or name == ".lock" for name in left), left

    rerun = _start(source, out, tmp_path / "second.log")
    rerun.wait(timeout=300)
    stderr = (tmp_path / "second.log").read_text()
    assert rerun.returncode == 0, stderr
    assert f"{len(written)} already done" in stderr
    assert _outputs(out) == reference
    assert not (out / TEMP_FOLDER).exists()
