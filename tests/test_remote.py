"""Folders given as URLs: a real FTP server (pyftpdlib) reached through fsspec.

The same bytes as a run on local folders, on one process and on a Dask LocalCluster of two
workers; a URL's password never appears in messages or reports; resume, skips and failures
behave as on local folders.
"""

from __future__ import annotations

import json
import logging
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dcmanon import Anonymizer, cli, parse_config
from dcmanon.batch.layout import Layout
from dcmanon.batch.run import BatchOptions, run_folder
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
