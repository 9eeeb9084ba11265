"""What ``--mapping-db`` costs a folder run: the same run with and without it, side by side.

    .venv/bin/python bench/mapping_db.py                 # 1024 small files, -j 2, 3 rounds
    .venv/bin/python bench/mapping_db.py --patients 32 --jobs 4 --rounds 5

Small files (64x64 CT slices of dcmanon.testing) are the worst case: per file, the pairs
(patient and four UIDs) and their share of a transaction weigh most against the little
anonymizing there is. Each round runs, in turn: no mapping, ``--mapping-dir`` (pairs recorded,
CSVs written at the end), ``--mapping-db`` into a new database, ``--mapping-db`` into the
database of the previous round (every pair already there: the re-run case). Each run is a
separate process; its wall time includes the final sync, its CPU time that of its workers.
Medians are printed, and the ratio of each to the run without mapping. Nothing is asserted:
speed is measured, not tested.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

KEY = "bench-mapping-db-project-secret-of-32-chars"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(source: Path, target: Path, jobs: int, extra: list[str]) -> tuple[float, float]:
    """Wall time, and CPU time of the run's process and its workers (less sensitive to
    other load on the machine)."""
    shutil.rmtree(target, ignore_errors=True)
    env = dict(os.environ, DCMANON_KEY=KEY)
    start, cpu = time.perf_counter(), _cpu()
    subprocess.run([sys.executable, "-m", "dcmanon", "-I", str(source), "-O", str(target),
                    "-j", str(jobs), *extra], env=env, check=True,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, _cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=16, help="64 files each")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dcmanon-bench-mapping"))
    args = parser.parse_args()
    from dcmanon.testing import write_study_tree

    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    files = len(write_study_tree(work / "in", patients=args.patients, studies=2, series=4,
                                 instances=8))
    cases: dict[str, list[tuple[float, float]]] = {
        "none": [], "mapping-dir": [], "mapping-db (new)": [], "mapping-db (re-run)": []}
    previous: Path | None = None
    for round_ in range(args.rounds):
        db = work / f"map{round_}.db"
        cases["none"].append(_run(work / "in", work / "out", args.jobs, []))
        cases["mapping-dir"].append(_run(work / "in", work / "out", args.jobs,
                                         ["--mapping-dir", str(work / "csv")]))
        cases["mapping-db (new)"].append(_run(work / "in", work / "out", args.jobs,
                                              ["--mapping-db", str(db)]))
        again = previous or db
        cases["mapping-db (re-run)"].append(_run(work / "in", work / "out", args.jobs,
                                                 ["--mapping-db", str(again)]))
        previous = db
    base = [statistics.median(t[i] for t in cases["none"]) for i in (0, 1)]
    print(f"{files} files, -j {args.jobs}, {args.rounds} rounds (medians)")
    for name, times in cases.items():
        wall, cpu = (statistics.median(t[i] for t in times) for i in (0, 1))
        print(f"  {name:<22} wall {wall:7.2f} s ({files / wall:7.1f} files/s, ratio "
              f"{wall / base[0]:5.3f})  cpu {cpu:7.2f} s (ratio {cpu / base[1]:5.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
