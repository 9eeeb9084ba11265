"""Folder runs: workers, chunks, resume, collisions, layout, quarantine, report, locking."""

from __future__ import annotations

import json
import os
import pickle
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner

from dcmanon import Anonymizer, cli, parse_config
from dcmanon.batch.executors import IN_FLIGHT_PER_WORKER, ProcessExecutor
from dcmanon.batch.layout import Layout
from dcmanon.batch.run import TEMP_FOLDER, BatchOptions, run_folder
from dcmanon.batch.worker import Job
from dcmanon.io.discover import discover
from dcmanon.testing import make_patient, patient_folder_name, phi_markers, write_study_tree

KEY = "test-batch-secret"


def anonymizer(**kwargs: bool) -> Anonymizer:
    return Anonymizer(parse_config({"profile": "basic"}, secret=KEY), **kwargs)


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree") / "in"
    write_study_tree(root, patients=3, studies=1, series=2, instances=4)
    (root / "notes.txt").write_text("not DICOM")
    (root / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x08\x00" * 10)
    return root


@pytest.fixture(scope="module")
def serial(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("serial") / "out"
    batch = run_folder(anonymizer(), tree, out, options=BatchOptions(jobs=1))
    assert (batch.summary.done, batch.summary.failed, batch.summary.skipped) == (24, 1, 1)
    return files(out)


def test_the_configuration_and_the_anonymizer_pickle() -> None:
    config = parse_config({"profile": "basic", "rules": [
        {"tag": "PatientID", "method": "cryptoHash"}]}, secret=KEY)
    assert pickle.loads(pickle.dumps(config)) == config
    original = anonymizer(record_mappings=True)
    copy = pickle.loads(pickle.dumps(original))
    assert (copy.config, copy.today, copy.record_mappings) == (
        original.config, original.today, True)


def test_a_worker_thread_keeps_its_anonymizer_between_chunks_of_a_run(tmp_path: Path) -> None:
    # Each chunk arrives with a freshly unpickled job; its caches would start cold every time.
    job = Job(anonymizer(), str(tmp_path), str(tmp_path / "out"), "")
    first, second = (pickle.loads(pickle.dumps(job)) for _ in range(2))
    assert first.warm_anonymizer() is second.warm_anonymizer()
    # Threads never share one (its caches are not thread-safe); another setup gets its own.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(first.warm_anonymizer).result() is not first.warm_anonymizer()
    changed = anonymizer(record_mappings=True)
    other_run = Job(changed, str(tmp_path), str(tmp_path / "out"), "")
    assert other_run.warm_anonymizer() is not first.warm_anonymizer()
    assert other_run.warm_anonymizer().record_mappings


def test_parallel_output_is_the_serial_output(tree: Path, serial: dict[str, bytes],
                                              tmp_path: Path) -> None:
    options = BatchOptions(jobs=2, chunk_size=5, min_parallel=0, report=tmp_path / "r.jsonl")
    batch = run_folder(anonymizer(), tree, tmp_path / "out", options=options)
    assert batch.summary.executor == "processes" and batch.summary.workers == 2
    assert files(tmp_path / "out") == serial
    summary = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[-1])
    assert (summary["done"], summary["failed"], summary["skipped"]) == (24, 1, 1)


def test_spawned_workers_give_the_same_output(tree: Path, serial: dict[str, bytes],
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dcmanon.batch.executors._start_method", lambda: "spawn")
    batch = run_folder(anonymizer(), tree, tmp_path / "out",
                       options=BatchOptions(jobs=2, min_parallel=0))
    assert batch.summary.workers == 2
    assert files(tmp_path / "out") == serial


def _die(item: int) -> int:
    if item == 3:
        os._exit(1)  # a worker that dies (as if killed)
    return item * 10


def _failed(item: int, exc: BaseException) -> int:
    return -item


def test_a_worker_that_dies_fails_its_items_only() -> None:
    # Items start at 1, so that a failure (-item) never looks like a result (item * 10).
    items = range(1, 41)
    executor = ProcessExecutor(2)
    try:
        results = list(executor.map_unordered(_die, items, _failed))
    finally:
        executor.close()
    assert len(results) == len(items)  # one outcome per item: none lost, none twice
    done = {r // 10 for r in results if r > 0}
    failed = {-r for r in results if r < 0}
    assert all(r % 10 == 0 for r in results if r > 0)  # a result is the function's
    assert done | failed == set(items) and not done & failed
    assert 3 in failed
    # Only what the broken pool held fails (at most the items in flight); the others are
    # done, by the pool or by the new one that replaces it.
    assert len(failed) <= executor.workers * IN_FLIGHT_PER_WORKER


def _environment_variable(name: str) -> str | None:
    return os.environ.get(name)


def _one_value(executor: ProcessExecutor, name: str) -> str | None:
    try:
        return next(executor.map_unordered(_environment_variable, [name], _failed_name))
    finally:
        executor.close()


def _failed_name(name: str, exc: BaseException) -> str:
    return f"failed: {exc!r}"


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_workers_see_the_environment_as_it_is_when_the_run_starts(
        method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Credentials often come from the environment (AWS_SECRET_ACCESS_KEY...). A forkserver
    # started earlier in this process would otherwise hand workers the environment of then.
    monkeypatch.setenv("DCMANON_TEST_SETTING", "before")
    assert _one_value(ProcessExecutor(1, method), "DCMANON_TEST_SETTING") == "before"
    monkeypatch.setenv("DCMANON_TEST_SETTING", "after")
    assert _one_value(ProcessExecutor(1, method), "DCMANON_TEST_SETTING") == "after"
    monkeypatch.delenv("DCMANON_TEST_SETTING")
    assert _one_value(ProcessExecutor(1, method), "DCMANON_TEST_SETTING") is None


def test_a_rerun_resumes_and_keeps_what_exists(tree: Path, serial: dict[str, bytes],
                                               tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_folder(anonymizer(), tree, out, options=BatchOptions(jobs=1))
    victim = next(p for p in out.rglob("*.dcm"))
    victim.unlink()
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*.dcm")}
    batch = run_folder(anonymizer(), tree, out, options=BatchOptions(jobs=1))
    assert (batch.summary.done, batch.summary.existing) == (1, 23)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert files(out) == serial
    batch = run_folder(anonymizer(), tree, out, options=BatchOptions(jobs=1, overwrite=True))
    assert (batch.summary.done, batch.summary.existing) == (24, 0)
    assert files(out) == serial


def test_stale_temporary_files_of_a_killed_run_are_removed(tree: Path, tmp_path: Path) -> None:
    stale = tmp_path / "out" / TEMP_FOLDER / ".dcmanon-abc.part"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a file")
    run_folder(anonymizer(), tree, tmp_path / "out", options=BatchOptions(jobs=1))
    assert not (tmp_path / "out" / TEMP_FOLDER).exists()
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.startswith(".dcmanon")]


def test_a_second_run_into_the_same_output_is_refused(tree: Path, tmp_path: Path) -> None:
    import fcntl

    lock = tmp_path / "out" / TEMP_FOLDER / ".lock"
    lock.parent.mkdir(parents=True)
    with lock.open("ab") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        result = CliRunner().invoke(cli.main, ["-I", str(tree), "-O", str(tmp_path / "out")],
                                    env={"DCMANON_KEY": KEY})
    assert result.exit_code == 2
    assert "another dcmanon run" in result.stderr


def test_uid_layout_names_outputs_by_the_new_uids(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    batch = run_folder(anonymizer(), tree, out, options=BatchOptions(
        jobs=1, layout=Layout.UID))
    assert batch.summary.done == 24
    outputs = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(outputs) == 24
    markers = {m for i in range(3) for m in phi_markers(make_patient(i))}
    markers |= {patient_folder_name(make_patient(i)) for i in range(3)}
    for path in outputs:
        rel = path.relative_to(out)
        ds = pydicom.dcmread(path)
        assert rel.parts == (ds.StudyInstanceUID, ds.SeriesInstanceUID,
                             f"{ds.SOPInstanceUID}.dcm")
        assert not any(m in str(rel) for m in markers)
    assert len({p.parent.parent for p in outputs}) == 3  # one study per patient


def test_two_inputs_for_one_output_are_refused(tree: Path, tmp_path: Path) -> None:
    source = tmp_path / "in"
    write_study_tree(source, patients=1, studies=1, series=1, instances=3)
    first = sorted(source.rglob("*.dcm"))[0]
    (source / "copy.dcm").write_bytes(first.read_bytes())  # the same instance twice
    out = tmp_path / "out"
    report = tmp_path / "report.jsonl"
    batch = run_folder(anonymizer(), source, out, options=BatchOptions(
        jobs=1, layout=Layout.UID, report=report))
    assert (batch.summary.done, batch.summary.failed) == (3, 1)
    assert batch.failed[0].error_class == "OutputCollision"
    assert "maps to the same output" in (batch.failed[0].error or "")
    assert len([p for p in out.rglob("*") if p.is_file()]) == 3
    # A re-run: every output exists already; the duplicate is still refused.
    again = run_folder(anonymizer(), source, out, options=BatchOptions(
        jobs=1, layout=Layout.UID))
    assert (again.summary.existing, again.summary.failed) == (4, 0)
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["status"] for r in records if r["type"] == "file"].count("failed") == 1


def test_uid_layout_fails_a_file_whose_uids_were_removed(tmp_path: Path) -> None:
    source = tmp_path / "in"
    write_study_tree(source, patients=1, studies=1, series=1, instances=1)
    config = parse_config({"rules": [{"tag": "SOPInstanceUID", "method": "redact"}]},
                          secret=KEY)
    batch = run_folder(Anonymizer(config), source, tmp_path / "out",
                       options=BatchOptions(jobs=1, layout=Layout.UID))
    assert batch.summary.failed == 1
    assert "SOPInstanceUID is missing or empty" in (batch.failed[0].error or "")
    assert not (tmp_path / "out").exists()


def test_quarantine_and_report(tree: Path, tmp_path: Path) -> None:
    report, quarantine = tmp_path / "report.jsonl", tmp_path / "quarantine"
    result = CliRunner().invoke(cli.main, [
        "-I", str(tree), "-O", str(tmp_path / "out"), "-j", "2", "--report", str(report),
        "--quarantine", str(quarantine)], env={"DCMANON_KEY": KEY})
    assert result.exit_code == 1, result.stderr
    assert (quarantine / "broken.dcm").read_bytes() == (tree / "broken.dcm").read_bytes()
    reason = (quarantine / "broken.dcm.reason.txt").read_text()
    assert reason.startswith("InputError: ") and "broken.dcm" in reason
    records = [json.loads(line) for line in report.read_text().splitlines()]
    by_source = {r["source"]: r for r in records if r["type"] == "file"}
    assert len(by_source) == 26
    assert by_source["notes.txt"]["status"] == "skipped"
    assert by_source["broken.dcm"]["error_class"] == "InputError"
    done = [r for r in by_source.values() if r["status"] == "done"]
    assert len(done) == 24 and all(r["actions"]["remove"] > 0 for r in done)
    summary = records[-1]
    assert summary["type"] == "summary" and summary["files"] == 26
    assert summary["bytes"] > 0 and summary["files_per_s"] > 0
    names = " ".join(by_source)  # input names carry fake PHI on purpose: they are named
    text = report.read_text()
    for marker in {m for i in range(3) for m in phi_markers(make_patient(i))}:
        if marker not in names:
            assert marker not in text


def test_quarantine_inside_the_input_is_refused(tree: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.main, [
        "-I", str(tree), "-O", str(tmp_path / "out"), "--quarantine", str(tree / "q")],
        env={"DCMANON_KEY": KEY})
    assert result.exit_code == 2
    assert "must not be inside the input folder" in result.stderr


def test_links_out_of_the_input_tree_are_never_followed(tmp_path: Path) -> None:
    source, outside = tmp_path / "in", tmp_path / "outside"
    write_study_tree(source, patients=1, studies=1, series=1, instances=1)
    write_study_tree(outside, patients=1, studies=1, series=1, instances=1, seed=7)
    (source / "escape").symlink_to(outside, target_is_directory=True)
    (source / "escape.dcm").symlink_to(next(outside.rglob("*.dcm")))
    found = list(discover(source, check_marker=False))
    assert sum(isinstance(f, Path) for f in found) == 1
    batch = run_folder(anonymizer(), source, tmp_path / "out", options=BatchOptions(jobs=1))
    assert (batch.summary.done, batch.summary.skipped) == (1, 2)
    assert all("symbolic link" in s.reason for s in batch.skipped)


def _walk_order(relative: str) -> tuple[tuple[int, str], ...]:
    """Where a file comes in a sorted walk: a folder's own files first, by name, then its
    sub-folders, by name, each in the same order."""
    *folders, name = relative.split("/")
    return (*((1, folder) for folder in folders), (0, name))


def test_inputs_are_found_in_sorted_order_whatever_the_folder_lists(tmp_path: Path) -> None:
    source = tmp_path / "in"
    relative = [f"{folder}{name}.dcm" for folder in ("", "b/", "a/", "a/c/", "B/")
                for name in ("z", "m", "A", "a", "10", "9", "_x")]
    random.Random(7).shuffle(relative)  # created in no particular order
    for rel in relative:
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(b"")
    folders = [source, *(p for p in source.rglob("*") if p.is_dir())]
    if all(os.listdir(f) == sorted(os.listdir(f)) for f in folders):
        pytest.skip("this file system lists folders sorted: nothing to reorder")
    found = [p.relative_to(source).as_posix() for p in discover(source, check_marker=False)
             if isinstance(p, Path)]
    assert found == sorted(relative, key=_walk_order)
    assert found[:3] == ["10.dcm", "9.dcm", "A.dcm"]  # by code point, not by number or case


def test_cli_layout_and_jobs(tree: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.main, [
        "-I", str(tree), "-O", str(tmp_path / "out"), "-j", "1", "--layout", "uid"],
        env={"DCMANON_KEY": KEY})
    assert result.exit_code == 1  # broken.dcm
    assert "24 anonymized, 1 failed, 1 skipped" in result.stderr
    again = CliRunner().invoke(cli.main, [
        "-I", str(tree), "-O", str(tmp_path / "out"), "--layout", "uid"],
        env={"DCMANON_KEY": KEY})
    assert "24 already done" in again.stderr


def test_fifos_are_skipped_never_opened(tmp_path: Path) -> None:
    source = tmp_path / "in"
    write_study_tree(source, patients=1, studies=1, series=1, instances=1)
    os.mkfifo(source / "pipe.dcm")  # opening it for reading would block forever
    batch = run_folder(anonymizer(), source, tmp_path / "out", options=BatchOptions(jobs=1))
    assert (batch.summary.done, batch.summary.skipped) == (1, 1)
    assert "not a regular file" in batch.skipped[0].reason
