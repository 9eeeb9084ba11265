"""The Dask executor: a real LocalCluster of two worker processes, same bytes as a serial run."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

from dcmanon import Anonymizer, cli, parse_config
from dcmanon.batch.executors import DaskExecutor, MissingExtraError
from dcmanon.batch.run import BatchOptions, run_folder
from dcmanon.testing import write_study_tree

pytestmark = pytest.mark.distributed
KEY = "test-dask-secret"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_local_cluster_writes_the_bytes_of_a_serial_run(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="the 'distributed' extra is not installed")
    source = tmp_path / "in"
    write_study_tree(source, patients=2, studies=1, series=2, instances=3)
    (source / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x08\x00" * 10)
    anonymizer = Anonymizer(parse_config({"profile": "basic"}, secret=KEY),
                            record_mappings=True)
    serial = run_folder(anonymizer, source, tmp_path / "serial",
                        options=BatchOptions(jobs=1))
    dask = run_folder(anonymizer, source, tmp_path / "dask",
                      options=BatchOptions(executor="dask", jobs=2, chunk_size=2))
    assert dask.summary.executor == "dask" and dask.summary.workers == 2
    assert (dask.summary.done, dask.summary.failed) == (12, 1)
    assert _files(tmp_path / "dask") == _files(tmp_path / "serial")
    assert dask.mappings == serial.mappings and dask.mappings


def test_a_missing_extra_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def without_distributed(name: str, package: str | None = None) -> ModuleType:
        if name.split(".")[0] == "distributed":
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", without_distributed)
    with pytest.raises(MissingExtraError, match=r"pip install 'dcmanon\[distributed\]'"):
        DaskExecutor()
    write_study_tree(tmp_path / "in", patients=1, studies=1, series=1, instances=1)
    result = CliRunner().invoke(cli.main, ["-I", str(tmp_path / "in"), "-O",
                                           str(tmp_path / "out"), "--executor", "dask"],
                                env={"DCMANON_KEY": KEY})
    assert result.exit_code == 2
    assert "needs the 'distributed' extra" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_local_cluster_runs_beside_a_dask_dashboard_on_8787(tmp_path: Path) -> None:
    """A user's own Dask cluster holds port 8787 (the dashboard's default): the local cluster
    dcmanon starts takes another port instead of failing the run."""
    pytest.importorskip("distributed", reason="the 'distributed' extra is not installed")
    import socket

    holder = socket.socket()
    try:
        holder.bind(("", 8787))
        holder.listen()
    except OSError:
        pass  # already held by someone else: the situation under test all the same
    try:
        write_study_tree(tmp_path / "in", patients=1, studies=1, series=1, instances=2)
        anonymizer = Anonymizer(parse_config({"profile": "basic"}, secret=KEY))
        batch = run_folder(anonymizer, tmp_path / "in", tmp_path / "out",
                           options=BatchOptions(executor="dask", jobs=1))
        assert (batch.summary.done, batch.summary.failed) == (2, 0)
    finally:
        holder.close()
