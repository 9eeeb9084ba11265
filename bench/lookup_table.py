"""Time and memory of loading a subject table (``--lookup``), against reading the same bytes.

    .venv/bin/python bench/lookup_table.py              # 1,000,000 rows
    .venv/bin/python bench/lookup_table.py --rows 200000

Writes a synthetic table (PatientID and AccessionNumber rows, MRN-like originals), then in
this process: reads its bytes (the baseline), loads it with
:func:`dcmanon.config.lookup.load_subject_table`, and pickles it as a worker receives it.
Prints seconds, the memory the table holds (tracemalloc: its Python objects) and the peak
RSS growth while loading. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import pickle
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

from dcmanon.config.lookup import load_subject_table, parse_subject_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "subjects.csv"
        with path.open("w", encoding="utf-8") as out:
            out.write("keyword,original,replacement\n")
            for n in range(rows):
                kind = "PatientID" if n % 4 else "AccessionNumber"
                out.write(f"{kind},MRN{n:09d},SUBJ-{n:07d}\n")
        size = path.stat().st_size
        start = time.perf_counter()
        path.read_bytes()
        read = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        table = load_subject_table(path)
        load = time.perf_counter() - start
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 2**10
        start = time.perf_counter()
        copy = pickle.loads(pickle.dumps(table))
        shipped = time.perf_counter() - start
        assert copy == table and table.rows == rows
        # Held memory: a second parse under tracemalloc (which slows it: not timed).
        text = path.read_text(encoding="utf-8")
        tracemalloc.start()
        again = parse_subject_table(text)
        held, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert again == table
    start = time.perf_counter()
    sum(range(10**7))
    reference = time.perf_counter() - start
    print(f"{rows:,} rows, {size / 2**20:.1f} MiB of CSV")
    print(f"read bytes:          {read:7.2f} s")
    print(f"load table:          {load:7.2f} s")
    print(f"pickle round trip:   {shipped:7.3f} s  (a worker gets the file's name and digest)")
    print(f"memory held:         {held / 2**20:7.1f} MiB (Python objects of the table)")
    print(f"peak RSS growth:     {grown:7.1f} MiB (while loading)")
    print(f"this machine: sum(range(10**7)) took {reference:.2f} s (about 0.15 s on an idle "
          "core): times scale with it")

if __name__ == "__main__":
    main()
