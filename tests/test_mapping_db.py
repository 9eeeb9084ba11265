"""The mapping store (``--mapping-db``): every pair of every run, safe with concurrent writers;
``dcmanon mapping export`` gives the files of ``--mapping-dir``, ``lookup`` goes either way."""

from __future__ import annotations

import csv
import multiprocessing
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dcmanon import cli
from dcmanon.testing import make_instance, make_patient, write_study_tree
from dcmanon.trials.mapping_db import MappingStore

KEY = "test-mapping-db-project-secret-of-32-chars"
FILES = {"uid": "uid_mapping.csv", "patient": "patient_mapping.csv"}


def run(*args: object) -> Result:
    """The real command in-process; never a traceback."""
    result = CliRunner(env={"DCMANON_KEY": KEY}).invoke(cli.main, [str(a) for a in args])
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr
    return result


def _pairs(folder: Path) -> set[tuple[str, str, str]]:
    found = set()
    for kind, name in FILES.items():
        with (folder / name).open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == ["id_old", "id_new"]
        found.update((kind, old, new) for old, new in rows[1:])
    return found


def _stored(db: Path) -> set[tuple[str, str, str]]:
    with MappingStore(db) as store:
        return {(r.kind, r.original, r.pseudonym) for r in store.rows()}


def test_export_equals_the_mapping_dir_files(tmp_path: Path) -> None:
    write_study_tree(tmp_path / "in", patients=3, studies=1, series=2, instances=2)
    db, mapping_dir = tmp_path / "map.db", tmp_path / "csv"
    result = run("-I", tmp_path / "in", "-O", tmp_path / "out", "-j", 2,
                 "--mapping-dir", mapping_dir, "--mapping-db", db)
    assert result.exit_code == 0, result.stderr
    result = run("mapping", "export", "--mapping-db", db, "-O", tmp_path / "export")
    assert result.exit_code == 0, result.stderr
    for name in FILES.values():
        assert (tmp_path / "export" / name).read_bytes() == (mapping_dir / name).read_bytes()
    pairs = _pairs(mapping_dir)
    assert {kind for kind, _, _ in pairs} == {"uid", "patient"}
    assert len([p for p in pairs if p[0] == "patient"]) == 3


def test_a_single_file_and_a_rerun(tmp_path: Path) -> None:
    source = tmp_path / "in.dcm"
    make_instance(make_patient(1)).save_as(source, enforce_file_format=True)
    db = tmp_path / "map.db"
    assert run("-i", source, "-o", tmp_path / "a.dcm", "--mapping-db", db).exit_code == 0
    with MappingStore(db) as store:
        first = {(r.kind, r.original): r for r in store.rows()}
    assert ("patient", make_patient(1).patient_id) in first
    assert run("-i", source, "-o", tmp_path / "b.dcm", "--mapping-db", db).exit_code == 0
    with MappingStore(db) as store:
        second = {(r.kind, r.original): r for r in store.rows()}
    assert second.keys() == first.keys()  # the same pairs: no duplicates
    for key, row in second.items():
        assert row.first_seen == first[key].first_seen
        assert row.last_seen > first[key].last_seen
    with sqlite3.connect(db) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_lookup_goes_either_way_and_never_echoes_a_missing_value(tmp_path: Path) -> None:
    patient = make_patient(2)
    source = tmp_path / "in.dcm"
    make_instance(patient).save_as(source, enforce_file_format=True)
    db = tmp_path / "map.db"
    assert run("-i", source, "-o", tmp_path / "out.dcm", "--mapping-db", db).exit_code == 0
    forward = run("mapping", "lookup", patient.patient_id, "--mapping-db", db)
    assert forward.exit_code == 0
    kind, original, pseudonym, first, last = forward.stdout.strip().split("\t")
    assert (kind, original) == ("patient", patient.patient_id) and pseudonym != original
    assert first == last and first.endswith("Z")
    backward = run("mapping", "lookup", pseudonym, "--mapping-db", db)
    assert backward.stdout == forward.stdout
    absent = run("mapping", "lookup", "MRN-NOT-THERE-4711", "--mapping-db", db)
    assert absent.exit_code == 1 and "MRN-NOT-THERE-4711" not in absent.stderr
    missing = run("mapping", "lookup", "x", "--mapping-db", tmp_path / "none.db")
    assert missing.exit_code == 2 and "not found" in missing.stderr
    assert not (tmp_path / "none.db").exists()


def test_a_file_that_is_not_a_database_stops_the_run_before_anything_is_written(
        tmp_path: Path) -> None:
    write_study_tree(tmp_path / "in", patients=1, studies=1, series=1, instances=2)
    bad = tmp_path / "map.db"
    bad.write_bytes(b"this is not SQLite at all, just text " * 200)
    result = run("-I", tmp_path / "in", "-O", tmp_path / "out", "--mapping-db", bad)
    assert result.exit_code == 2 and str(bad) in result.stderr
    assert not list((tmp_path / "out").rglob("*.dcm"))


def _hammer(db: str, writer: int, transactions: int) -> None:
    with MappingStore(db) as store:
        for n in range(transactions):
            store.record(("uid", f"{writer}.{n}.{i}", f"2.25.{writer}{n}{i}") for i in range(10))


def test_concurrent_writers_lose_no_row(tmp_path: Path) -> None:
    """Four processes, each committing 50 transactions of 10 rows at once, into one file."""
    db = str(tmp_path / "map.db")
    MappingStore(db).close()
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_hammer, args=(db, w, 50)) for w in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
        assert process.exitcode == 0
    assert len(_stored(Path(db))) == 4 * 50 * 10


def test_two_concurrent_runs_with_two_workers_each_lose_no_row(tmp_path: Path) -> None:
    """Two runs at once (128 files each: enough for a pool of 2 worker processes), one
    database: it holds exactly the pairs of both runs' mapping files."""
    db = tmp_path / "map.db"
    runs = []
    for seed in (1, 2):
        write_study_tree(tmp_path / f"in{seed}", patients=4, studies=2, series=4, instances=4,
                         seed=seed)
        env = dict(os.environ, DCMANON_KEY=KEY)
        runs.append(subprocess.Popen(
            [sys.executable, "-m", "dcmanon", "-I", str(tmp_path / f"in{seed}"), "-O",
             str(tmp_path / f"out{seed}"), "-j", "2", "--mapping-db", str(db),
             "--mapping-dir", str(tmp_path / f"csv{seed}"), "--report",
             str(tmp_path / f"report{seed}.jsonl")],
            env=env, stderr=subprocess.PIPE, text=True))
    for process in runs:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        assert "128 anonymized, 0 failed" in stderr
    for seed in (1, 2):  # each run had its pool of two
        assert '"workers": 2' in (tmp_path / f"report{seed}.jsonl").read_text()
    expected = _pairs(tmp_path / "csv1") | _pairs(tmp_path / "csv2")
    stored = _stored(db)
    assert stored == expected
    # 4 patients and 128 instances, 8 studies, 32 series, 8 frames of reference per run
    assert len(stored) == 2 * (4 + 128 + 8 + 32 + 8)


@pytest.mark.parametrize("command", [["mapping", "--help"], ["mapping", "export", "--help"],
                                     ["mapping", "lookup", "--help"]])
def test_help(command: list[str]) -> None:
    assert run(*command).exit_code == 0
