"""The node's spool on its own (no network): limits, the lock, recovery, quarantine."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dcmanon.errors import DcmanonError
from dcmanon.net.spool import Spool, SpoolFull


def test_the_limit_refuses_and_frees(tmp_path: Path) -> None:
    spool = Spool(tmp_path, limit=250)
    first = spool.store(b"x" * 100)
    spool.store(b"y" * 100)
    with pytest.raises(SpoolFull):
        spool.store(b"z" * 100)
    assert len(spool.pending()) == 2 and spool.used == 200
    assert not list((tmp_path / "tmp").iterdir())  # nothing half written is left
    spool.done(first)
    spool.store(b"z" * 100)
    assert spool.used == 200
    spool.close()


def test_one_node_per_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(DcmanonError, match="another node uses this spool"):
        Spool(tmp_path)
    Spool(tmp_path, owner=False).close()  # the worker's and --requeue's view
    spool.close()
    Spool(tmp_path).close()


def test_start_up_keeps_the_queue_and_clears_partial_writes(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    item = spool.store(b"acknowledged")
    spool.close()
    (tmp_path / "tmp" / "partial.dcm").write_bytes(b"never acknowledged")
    (tmp_path / "work" / item).write_bytes(b"a de-identified copy")
    again = Spool(tmp_path)
    assert again.pending() == [item]
    assert (tmp_path / "queue" / item).read_bytes() == b"acknowledged"
    assert not list((tmp_path / "tmp").iterdir()) and not list((tmp_path / "work").iterdir())
    again.close()


def test_quarantine_and_requeue(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    item = spool.store(b"data")
    spool.quarantine(item, "destination answered status 0xA900")
    assert spool.pending() == [] and spool.used == 0
    reason = (tmp_path / "quarantine" / f"{item}.reason.txt").read_text(encoding="utf-8")
    assert reason == "destination answered status 0xA900\n"
    assert spool.requeue() == 1
    assert spool.pending() == [item] and spool.used == 4
    assert not list((tmp_path / "quarantine").iterdir())
    spool.close()


def test_the_ledger_forgets_what_is_older_than_its_retention(tmp_path: Path) -> None:
    """A node that runs for years keeps a bounded ledger: what a destination received more than
    ``ledger_days`` ago is no longer remembered (nor held in memory); the file is compacted."""
    day = 86400
    now = int(time.time())
    (tmp_path / "forwarded.txt").write_text(
        f"dicom:DEST@h:104\t2.25.1\t{now - 40 * day}\n"  # older than the retention
        f"dicom:DEST@h:104\t2.25.2\t{now - 20 * day}\n"
        "dicom:DEST@h:104\t2.25.3\n", encoding="ascii")  # a ledger of an earlier release
    spool = Spool(tmp_path, ledger_days=30)
    assert not spool.forwarded("dicom:DEST@h:104", "2.25.1")
    assert spool.forwarded("dicom:DEST@h:104", "2.25.2")
    assert spool.forwarded("dicom:DEST@h:104", "2.25.3")
    spool.record_forwarded("dicom:DEST@h:104", ["2.25.4"])
    spool.close()
    lines = (tmp_path / "forwarded.txt").read_text(encoding="ascii").splitlines()
    assert [line.split("\t")[1] for line in lines] == ["2.25.2", "2.25.3", "2.25.4"]
    assert all(now - 1 <= int(line.split("\t")[2]) <= time.time() + 1
               for line in lines[1:])  # the legacy line is dated when it was first read
    again = Spool(tmp_path, ledger_days=30)
    assert again.forwarded("dicom:DEST@h:104", "2.25.4")
    again.close()


def test_the_ledger_survives_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.record_forwarded("dicom:DEST@h:104", ["2.25.1", "2.25.2"])
    spool.close()
    again = Spool(tmp_path)
    assert again.forwarded("dicom:DEST@h:104", "2.25.2")
    assert not again.forwarded("folder:/x", "2.25.2")
    again.close()
