"""Folders in an S3 bucket: a real S3 server (moto's) reached through s3fs, as cluster users do.

The same bytes as a run on local folders — from the command line, with worker processes and
on a Dask LocalCluster of two workers; re-runs resume; the secret key never shows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dcmanon import Anonymizer, cli, parse_config
from dcmanon.batch.layout import Layout
from dcmanon.batch.run import BatchOptions, run_folder
from dcmanon.remote.lock import LOCK_NAME
from dcmanon.testing import write_study_tree
from tests.remote_sets import mixed_study

pytest.importorskip("s3fs", reason="s3fs (dev extra) is not installed")
moto_server = pytest.importorskip("moto.server", reason="moto[server] (dev extra) is not installed")

KEY = "test-s3-secret"
AWS_SECRET = "S3-secret-7hq2"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3 server on a free local port, for the whole module."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture()
def bucket(s3_endpoint: str, request: pytest.FixtureRequest,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    """A new bucket (its s3:// URL) and an s3fs file system on it; credentials and endpoint
    in the environment, where forked and Dask workers find them too."""
    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dcmanon-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    name = request.node.name.replace("_", "-")[:50].strip("-").lower()
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir(name)
    yield f"s3://{name}", fs
    fs.rm(name, recursive=True)


def _anonymizer() -> Anonymizer:
    return Anonymizer(parse_config({"profile": "basic"}, secret=KEY))



def _local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _bucket_files(fs: Any, url: str) -> dict[str, bytes]:
    root = url.removeprefix("s3://")
    fs.invalidate_cache()
    return {path.removeprefix(root + "/"): fs.cat_file(path) for path in sorted(fs.find(root))}


def test_s3_folders_give_the_bytes_of_local_folders(tmp_path: Path,
                                                    bucket: tuple[str, Any]) -> None:
    url, fs = bucket
    local_in = mixed_study(tmp_path / "in")
    run_folder(_anonymizer(), local_in, tmp_path / "local-out")
    fs.put(str(local_in) + "/", f"{url}/in/", recursive=True)
    result = CliRunner().invoke(cli.main, [
        "-I", f"{url}/in", "-O", f"{url}/out", "--report", str(tmp_path / "report.jsonl")],
        env={"DCMANON_KEY": KEY})
    assert result.exit_code == 1, result.stderr  # broken.dcm fails, the others are written
    assert "broken.dcm" in result.stderr
    assert _bucket_files(fs, f"{url}/out") == _local_files(tmp_path / "local-out")
    report = (tmp_path / "report.jsonl").read_text()
    assert AWS_SECRET not in result.stderr + result.stdout + report
    records = [json.loads(line) for line in report.splitlines()]
    assert [r["source"] for r in records if r.get("status") == "skipped"] == ["notes.txt"]
    assert json.loads(report.splitlines()[-1])["done"] == 4


def test_worker_processes_write_s3_and_a_rerun_resumes(tmp_path: Path,
                                                       bucket: tuple[str, Any]) -> None:
    # The credentials are in the environment, set after other tests may have started a
    # forkserver: the workers must see them all the same.
    url, fs = bucket
    local_in = tmp_path / "in"
    write_study_tree(local_in, patients=1, studies=1, series=1, instances=3)
    fs.put(str(local_in) + "/", f"{url}/in/", recursive=True)
    local = run_folder(_anonymizer(), local_in, tmp_path / "local-out",
                       options=BatchOptions(layout=Layout.UID))
    first = run_folder(_anonymizer(), f"{url}/in", f"{url}/out", options=BatchOptions(
        layout=Layout.UID, jobs=2, min_parallel=1, chunk_size=1))
    assert (first.summary.workers, first.summary.done) == (2, 3), [f.error for f in first.failed]
    assert _bucket_files(fs, f"{url}/out") == _local_files(tmp_path / "local-out")
    assert local.summary.done == 3
    again = run_folder(_anonymizer(), f"{url}/in", f"{url}/out",
                       options=BatchOptions(layout=Layout.UID))
    assert (again.summary.done, again.summary.existing) == (0, 3)


@pytest.mark.distributed
def test_a_local_cluster_reads_and_writes_s3(tmp_path: Path, bucket: tuple[str, Any]) -> None:
    pytest.importorskip("distributed", reason="the 'distributed' extra is not installed")
    url, fs = bucket
    local_in = mixed_study(tmp_path / "in")
    serial = run_folder(_anonymizer(), local_in, tmp_path / "serial")
    fs.put(str(local_in) + "/", f"{url}/in/", recursive=True)
    dask = run_folder(_anonymizer(), f"{url}/in", f"{url}/dask",
                      options=BatchOptions(executor="dask", jobs=2, chunk_size=1))
    assert dask.summary.workers == 2
    assert (dask.summary.done, dask.summary.failed) == (serial.summary.done, 1)
    assert _bucket_files(fs, f"{url}/dask") == _local_files(tmp_path / "serial")


def test_outputs_are_uploaded_once_under_their_own_name(tmp_path: Path,
                                                         bucket: tuple[str, Any]) -> None:
    # An upload to an object store appears only when complete: no temporary object to copy
    # and delete (twice the requests, and a leftover if a worker dies in between). A
    # versioned bucket keeps every object ever written, deleted ones included.
    import boto3

    url, fs = bucket
    name = url.removeprefix("s3://")
    fs.make_bucket_versioned(name)
    local_in = tmp_path / "in"
    write_study_tree(local_in, patients=1, studies=1, series=1, instances=2)
    run_folder(_anonymizer(), local_in, f"{url}/out")
    history = boto3.client("s3").list_object_versions(Bucket=name)
    # The run's lock (written, refreshed, deleted) is the only other object.
    written = [v["Key"] for v in history.get("Versions", []) if v["Key"] != f"out/{LOCK_NAME}"]
    assert len(written) == 2 and all(key.endswith(".dcm") for key in written), written
    assert [m["Key"] for m in history.get("DeleteMarkers", [])] == [f"out/{LOCK_NAME}"]
