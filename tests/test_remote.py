"""Folders given as URLs: a real FTP server (pyftpdlib) reached through fsspec.

The same bytes as a run on local folders, on one process and on a Dask LocalCluster of two
workers; a URL's password never appears in messages or reports; resume, skips and failures
behave as on local folders.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dcmanon import Anonymizer, cli, parse_config
from dcmanon.batch.layout import Layout
from dcmanon.batch.run import BatchOptions, run_folder
from dcmanon.remote.lock import LOCK_NAME, STALE_AFTER_SECONDS, RemoteLock
from dcmanon.testing import write_study_tree
from tests.remote_sets import mixed_study

pyftpdlib = pytest.importorskip("pyftpdlib", reason="pyftpdlib (dev extra) is not installed")
pytest.importorskip("fsspec", reason="fsspec is not installed")

KEY = "test-remote-secret"
PASSWORD = "Pw-9f3kq"


@pytest.fixture()
def ftp(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local FTP server over ``tmp_path/ftp``: (its URL with credentials, its root)."""
    with warnings.catch_warnings():  # pyftpdlib still imports asyncore on Python 3.11
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import ThreadedFTPServer

    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    root = tmp_path / "ftp"
    root.mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_user("anna", PASSWORD, str(root), perm="elradfmwMT")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer})
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2},
                              daemon=True)
    thread.start()
    try:
        yield f"ftp://anna:{PASSWORD}@127.0.0.1:{port}", root
    finally:
        server.close_all()
        thread.join(timeout=5)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _anonymizer() -> Anonymizer:
    return Anonymizer(parse_config({"profile": "basic"}, secret=KEY))



def test_ftp_folders_give_the_bytes_of_local_folders(tmp_path: Path,
                                                     ftp: tuple[str, Path]) -> None:
    url, root = ftp
    mixed_study(root / "in")
    mixed_study(tmp_path / "local-in")
    local = run_folder(_anonymizer(), tmp_path / "local-in", tmp_path / "local-out")
    result = CliRunner().invoke(cli.main, [
        "-I", f"{url}/in", "-O", f"{url}/out", "--report", str(tmp_path / "report.jsonl")],
        env={"DCMANON_KEY": KEY})
    assert result.exit_code == 1, result.stderr  # broken.dcm fails, the others are written
    assert _files(root / "out") == _files(tmp_path / "local-out")
    assert local.summary.done == 4
    assert "broken.dcm" in result.stderr and "127.0.0.1" in result.stderr
    report = (tmp_path / "report.jsonl").read_text()
    assert PASSWORD not in result.stderr + result.stdout + report
    records = [json.loads(line) for line in report.splitlines()]
    skipped = [r for r in records if r.get("status") == "skipped"]
    assert [r["source"] for r in skipped] == ["notes.txt"]
    assert not any(p.name.startswith(".dcmanon") for p in (root / "out").rglob("*"))


def test_a_rerun_resumes_and_layout_uid_names_remote_outputs(tmp_path: Path,
                                                              ftp: tuple[str, Path]) -> None:
    url, root = ftp
    write_study_tree(root / "in", patients=1, studies=1, series=1, instances=3)
    options = BatchOptions(layout=Layout.UID)
    # Two forked worker processes, each with its own connections.
    first = run_folder(_anonymizer(), f"{url}/in", f"{url}/out", options=BatchOptions(
        layout=Layout.UID, jobs=2, min_parallel=1, chunk_size=1))
    assert first.summary.workers == 2
    assert first.summary.done == 3
    outputs = sorted(p.relative_to(root / "out").parts for p in (root / "out").rglob("*.dcm"))
    assert len(outputs) == 3 and all(len(parts) == 3 for parts in outputs)
    again = run_folder(_anonymizer(), f"{url}/in", f"{url}/out", options=options)
    assert (again.summary.done, again.summary.existing) == (0, 3)


def test_remote_input_into_a_local_folder(tmp_path: Path, ftp: tuple[str, Path]) -> None:
    url, root = ftp
    mixed_study(root / "in")
    mixed_study(tmp_path / "local-in")
    run_folder(_anonymizer(), tmp_path / "local-in", tmp_path / "local-out")
    remote = run_folder(_anonymizer(), f"{url}/in", tmp_path / "out",
                        options=BatchOptions(quarantine=tmp_path / "quarantine"))
    assert _files(tmp_path / "out") == _files(tmp_path / "local-out")
    assert [Path(f.source).name for f in remote.failed] == ["broken.dcm"]
    assert PASSWORD not in remote.failed[0].source + (remote.failed[0].error or "")
    assert (tmp_path / "quarantine" / "broken.dcm").is_file()


@pytest.mark.distributed
def test_a_local_cluster_reads_and_writes_ftp(tmp_path: Path, ftp: tuple[str, Path]) -> None:
    pytest.importorskip("distributed", reason="the 'distributed' extra is not installed")
    url, root = ftp
    mixed_study(root / "in")
    serial = run_folder(_anonymizer(), f"{url}/in", tmp_path / "serial")
    dask = run_folder(_anonymizer(), f"{url}/in", f"{url}/dask",
                      options=BatchOptions(executor="dask", jobs=2, chunk_size=1))
    assert dask.summary.workers == 2
    assert (dask.summary.done, dask.summary.failed) == (serial.summary.done, 1)
    assert _files(root / "dask") == _files(tmp_path / "serial")


def test_an_unknown_scheme_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.main, ["-I", "nosuchfs://bucket/in", "-O",
                                           str(tmp_path / "out")], env={"DCMANON_KEY": KEY})
    assert result.exit_code == 2
    assert "no file system for nosuchfs://" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_run_into_a_remote_folder_is_refused_while_the_first_holds_it(
        tmp_path: Path, ftp: tuple[str, Path]) -> None:
    """Issue 11 §7: a remote output gets a run lock of its own (no flock over FTP); the
    message names the lock file, so that a user who knows no run is going on can remove it;
    the lock goes with the run that held it."""
    url, root = ftp
    write_study_tree(root / "in", patients=1, studies=1, series=1, instances=2)
    with RemoteLock(f"{url}/out", settle=0.1):
        assert (root / "out" / LOCK_NAME).is_file()
        result = CliRunner().invoke(cli.main, ["-I", f"{url}/in", "-O", f"{url}/out"],
                                    env={"DCMANON_KEY": KEY})
        assert result.exit_code == 2
        assert "another dcmanon run" in result.stderr and LOCK_NAME in result.stderr
        assert PASSWORD not in result.stderr
        assert list((root / "out").rglob("*.dcm")) == []
    assert not (root / "out" / LOCK_NAME).exists()
    after = run_folder(_anonymizer(), f"{url}/in", f"{url}/out")
    assert after.summary.done == 2
    assert not (root / "out" / LOCK_NAME).exists()


def test_a_killed_runs_lock_and_unfinished_uploads_are_cleared(
        tmp_path: Path, ftp: tuple[str, Path]) -> None:
    """A run killed mid-upload leaves its lock (no heartbeat any more) and `.part` files: the
    next run takes the lock over and removes them; other files are left alone."""
    url, root = ftp
    write_study_tree(root / "in", patients=1, studies=1, series=1, instances=2)
    (root / "out" / "sub").mkdir(parents=True)
    stale = time.time() - STALE_AFTER_SECONDS - 60
    (root / "out" / LOCK_NAME).write_text(json.dumps(
        {"run": "0" * 32, "host": "killed", "pid": 1, "started": stale, "heartbeat": stale}))
    parts = [root / "out" / f".dcmanon-{'a' * 32}.part",
             root / "out" / "sub" / f".dcmanon-{'b' * 32}.part"]
    for part in parts:
        part.write_bytes(b"half an upload")
    (root / "out" / "sub" / "notes.part").write_bytes(b"not ours")
    result = run_folder(_anonymizer(), f"{url}/in", f"{url}/out")
    assert result.summary.done == 2
    assert [p for p in parts if p.exists()] == []
    assert (root / "out" / "sub" / "notes.part").is_file()
    assert not (root / "out" / LOCK_NAME).exists()
