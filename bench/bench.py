"""Benchmark dcmanon against baselines and peer de-identifiers, side by side, in one run.

    .venv/bin/python bench/bench.py            # 300-slice CT series + a 1 GB multi-frame file
    .venv/bin/python bench/bench.py --quick    # 40 slices + a 64 MB file
    .venv/bin/python bench/bench.py --big-mb 100 --slices 200 --jobs 2

Builds a corpus of synthetic data (dcmanon.testing: a CT series of 512x512 16-bit slices, and a
large multi-frame file written without holding it in memory), then times on each:

* ``cp -r`` of the same bytes, and a plain pydicom read + write loop (baselines);
* dcmanon with its default profile (PS3.15 Basic), on all cores and on one;
* gdcmanon (Debian libgdcm-tools): ``-e`` (its Basic Profile, with a throwaway certificate
  for the encrypted original attributes) and ``--dumb`` (four elements emptied);
* dicognito and dicom-anonymizer (Kitware), pip-installed by this script into a separate venv
  (never project dependencies).

Each run is a separate process under ``/usr/bin/time`` (peak RSS of the largest process),
followed by ``sync``: every clock stops when the outputs are on disk (dcmanon syncs at the
end of a run; the other tools leave the writing to the kernel). Files/s and MB/s count input
files and bytes. Ratios are dcmanon (all cores) over each tool.
Every tool also runs on one slice: the series' rate with that start-up cost taken out
(interpreter and imports, for the Python tools) is printed too, since a real run over an
archive pays it once. Nothing is asserted: speed is measured, not tested.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("dicognito", "dicom-anonymizer")
PYDICOM_LOOP = """
import sys
from pathlib import Path
from pydicom import dcmread
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for path in sorted(p for p in src.rglob("*") if p.is_file()):
    target = dst / path.relative_to(src)
    target.parent.mkdir(parents=True, exist_ok=True)
    dcmread(path).save_as(target)
"""


@dataclass
class Result:
    tool: str
    corpus: str
    seconds: float
    peak_mb: float
    files: int
    megabytes: float
    ok: bool
    note: str = ""
    cpu: float = float("nan")
    """User + system CPU seconds of the run and its children (steadier than wall time on a
    busy machine)."""

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.megabytes / self.seconds if self.seconds else 0.0


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def build_series(folder: Path, slices: int) -> None:
    from dcmanon.testing import make_instance, make_patient

    if folder.exists() and len(list(folder.glob("*.dcm"))) == slices:
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    patient = make_patient(0, seed=42)
    template = make_instance(patient, 0, 0, 0, rows=512, columns=512, seed=42)
    pixels = template.PixelData
    for index in range(slices):
        ds = make_instance(patient, 0, 0, index, rows=8, columns=8, seed=42)
        ds.Rows, ds.Columns = 512, 512
        ds.PixelData = pixels[index % 512:] + pixels[:index % 512]  # same size, distinct
        ds.save_as(folder / f"IM{index:05d}.dcm", enforce_file_format=True)


def build_big(path: Path, megabytes: int) -> None:
    from dcmanon.testing import make_instance, make_patient

    frame_bytes = 512 * 512 * 2
    frames = max(1, megabytes * 2**20 // frame_bytes)
    if path.exists() and path.stat().st_size > frames * frame_bytes:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = make_instance(make_patient(1, seed=42), rows=512, columns=512, seed=42)
    frame = bytes(ds.PixelData)
    del ds.PixelData
    ds.NumberOfFrames = frames
    ds.save_as(path, enforce_file_format=True)
    with path.open("ab") as handle:
        handle.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, frame_bytes * frames))
        for index in range(frames):
            shift = (index * 2) % frame_bytes
            handle.write(frame[shift:] + frame[:shift])


def peer_venv(workdir: Path) -> Path | None:
    """A separate venv with dicognito and dicom-anonymizer (installed once)."""
    venv = workdir / "peers-venv"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.exists():
        return venv
    log("installing dicognito and dicom-anonymizer into a bench-only venv")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEERS], check=True)
    except subprocess.CalledProcessError as exc:
        log(f"peer install failed ({exc}); peers are skipped")
        return None
    stamp.touch()
    return venv


def timed(tool: str, corpus: str, command: list[str], files: int, megabytes: float,
          env: dict[str, str] | None = None, note: str = "") -> Result:
    """Run ``command`` under /usr/bin/time; wall time, CPU time and peak RSS of the largest
    process."""
    wrapper = ["/usr/bin/time", "-f", "PEAK_KB=%M CPU=%U+%S"] if Path("/usr/bin/time").exists() \
        else []
    # Every clock stops when the tool's outputs are on disk: dcmanon syncs at the end of a
    # run, the others leave that to the kernel, so each run is followed by a sync.
    durable = ["sh", "-c", '"$@"; status=$?; sync; exit $status', "sh"]
    subprocess.run(["sync"], check=False)  # nothing of the previous run still pending
    start = time.perf_counter()
    run = subprocess.run(wrapper + durable + command, env=env, capture_output=True, text=True,
                         check=False)
    seconds = time.perf_counter() - start
    match = re.search(r"PEAK_KB=(\d+)", run.stderr)
    peak = int(match.group(1)) / 1024 if match else float("nan")
    times = re.search(r"CPU=([\d.]+)\+([\d.]+)", run.stderr)
    cpu = float(times.group(1)) + float(times.group(2)) if times else float("nan")
    ok = run.returncode == 0
    if not ok:
        tail = run.stderr.strip().splitlines()[-2:] if run.stderr.strip() else []
        note = (note + " " if note else "") + f"exit {run.returncode}: {' | '.join(tail)}"[:160]
    log(f"{corpus:6} {tool:28} {seconds:7.2f} s  cpu {cpu:7.2f} s  peak {peak:7.1f} MB  "
        f"{'' if ok else note}")
    return Result(tool, corpus, seconds, peak, files, megabytes, ok, note, cpu)


def fresh(path: Path, *, make: bool = False) -> Path:
    """An output folder that does not exist yet (its parent does), or an empty one."""
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    if make:
        path.mkdir()
    return path


def run_corpus(name: str, source: Path, out: Path, args: argparse.Namespace,
               peers: Path | None, cert: Path | None) -> list[Result]:
    inputs = [p for p in source.rglob("*") if p.is_file()]
    files, megabytes = len(inputs), sum(p.stat().st_size for p in inputs) / 1e6
    env = {**os.environ, "DCMANON_KEY": "bench-secret-not-for-real-use"}
    python = sys.executable
    dcmanon = [python, "-m", "dcmanon"]
    results = [
        timed("cp -r", name, ["cp", "-r", str(source), str(fresh(out / "cp"))], files,
              megabytes),
        timed("pydicom read+write", name,
              [python, "-c", PYDICOM_LOOP, str(source), str(fresh(out / "pydicom"))], files,
              megabytes),
        timed(f"dcmanon -j {args.jobs}", name,
              [*dcmanon, "-I", str(source), "-O", str(fresh(out / "dcmanon")), "-j",
               str(args.jobs)], files, megabytes, env),
        timed("dcmanon -j 1", name,
              [*dcmanon, "-I", str(source), "-O", str(fresh(out / "dcmanon1")), "-j", "1"],
              files, megabytes, env),
    ]
    if shutil.which("gdcmanon"):
        if cert is not None:
            results.append(timed("gdcmanon -e (basic)", name, [
                "gdcmanon", "-e", "-c", str(cert), "--continue", "-r", "-i", str(source),
                "-o", str(fresh(out / "gdcmanon"))], files, megabytes))
        results.append(timed("gdcmanon --dumb", name, [
            "gdcmanon", "--dumb", "--empty", "10,10", "--empty", "10,20", "--empty", "10,30",
            "--empty", "8,90", "--continue", "-r", "-i", str(source), "-o",
            str(fresh(out / "gdcmanon-dumb"))], files, megabytes))
    else:
        log("gdcmanon not found (scripts/install-system-deps.sh installs it): skipped")
    if peers is not None:
        # dicognito 0.19's console script is broken (main() wants an argument): -m works.
        results.append(timed("dicognito", name, [
            str(peers / "bin" / "python"), "-m", "dicognito", "--quiet", "-o",
            str(fresh(out / "dicognito")), str(source)], files, megabytes))
        results.append(timed("dicom-anonymizer", name, [
            str(peers / "bin" / "dicom-anonymizer"), str(source),
            str(fresh(out / "dicom-anonymizer", make=True))], files, megabytes))
    return results


def table(results: list[Result], reference: str) -> str:
    by_corpus: dict[str, list[Result]] = {}
    for result in results:
        by_corpus.setdefault(result.corpus, []).append(result)
    lines = []
    for corpus, rows in by_corpus.items():
        ref = next((r for r in rows if r.tool == reference and r.ok), None)
        lines.append(f"\n{corpus}: {rows[0].files} files, {rows[0].megabytes:.0f} MB")
        lines.append(f"{'tool':28} {'s':>8} {'files/s':>9} {'MB/s':>8} {'peak MB':>8} "
                     f"{'dcmanon speed x':>16} {'RSS ratio':>10} {'cpu s':>8} {'cpu x':>6}")
        for row in rows:
            if ref is not None and row.ok and row.seconds:
                speed = f"{ref.files_per_s / row.files_per_s:.2f}" if row.files_per_s else "-"
                rss = f"{ref.peak_mb / row.peak_mb:.2f}" if row.peak_mb else "-"
                cpu = f"{row.cpu / ref.cpu:.2f}" if ref.cpu > 0 else "-"
            else:
                speed = rss = cpu = "-"
            status = "" if row.ok else f"  FAILED {row.note}"
            lines.append(f"{row.tool:28} {row.seconds:8.2f} {row.files_per_s:9.1f} "
                         f"{row.mb_per_s:8.1f} {row.peak_mb:8.1f} {speed:>16} {rss:>10} "
                         f"{row.cpu:8.2f} {cpu:>6}{status}")
    lines.append(f"\n'dcmanon speed x' = files/s of {reference} / files/s of the row (>1: "
                 "dcmanon is faster); 'RSS ratio' = its peak RSS / the row's (<1: dcmanon "
                 "uses less). Peak RSS is that of the largest single process. 'cpu x' = the "
                 "row's CPU seconds (user + system, children included) / dcmanon's (>1: "
                 "dcmanon uses less).")
    return "\n".join(lines)


def marginal_table(series: list[Result], single: list[Result], reference: str) -> str:
    """Files/s with each tool's start-up cost taken out: (N - 1) / (t(N) - t(1))."""
    one = {r.tool: r for r in single if r.ok}
    rates: dict[str, float] = {}
    for row in series:
        first = one.get(row.tool)
        if row.ok and first is not None and row.seconds > first.seconds:
            rates[row.tool] = (row.files - 1) / (row.seconds - first.seconds)
    lines = ["\nseries, start-up taken out (the same tools on 1 slice): "
             "files/s = (N - 1) / (t(N) - t(1))",
             f"{'tool':28} {'t(1) s':>8} {'files/s':>9} {'dcmanon speed x':>16}"]
    ref = rates.get(reference)
    for row in series:
        if row.tool not in rates:
            continue
        speed = f"{ref / rates[row.tool]:.2f}" if ref else "-"
        lines.append(f"{row.tool:28} {one[row.tool].seconds:8.2f} {rates[row.tool]:9.1f} "
                     f"{speed:>16}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 slices and a 64 MB file")
    parser.add_argument("--slices", type=int, help="CT slices (default 300; quick 40)")
    parser.add_argument("--big-mb", type=int, help="multi-frame file size in MB "
                        "(default 1024; quick 64)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dcmanon-bench"))
    parser.add_argument("--no-peers", action="store_true", help="skip dicognito and "
                        "dicom-anonymizer (no pip install)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    slices = args.slices or (40 if args.quick else 300)
    big_mb = args.big_mb or (64 if args.quick else 1024)
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    log(f"corpus in {work}: {slices} CT slices 512x512, a {big_mb} MB multi-frame file")
    series, big = work / "corpus" / "ct-series", work / "corpus" / "multiframe"
    build_series(series, slices)
    build_big(big / "big.dcm", big_mb)
    peers = None if args.no_peers else peer_venv(work)
    # pip byte-compiles the peers it installs; an editable dcmanon is compiled on first import,
    # or never where PYTHONDONTWRITEBYTECODE is set: every run would compile it again.
    import dcmanon

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(dcmanon.__file__).parent)],
                   check=True)
    cert = None
    if shutil.which("gdcmanon") and shutil.which("openssl"):
        cert, key = work / "cert.pem", work / "key.pem"
        if not cert.exists():
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", str(key), "-out", str(cert), "-subj",
                            "/CN=dcmanon-bench", "-days", "30"], check=True,
                           capture_output=True)
    single = work / "corpus" / "ct-one"
    shutil.rmtree(single, ignore_errors=True)
    single.mkdir(parents=True)
    shutil.copy(sorted(series.glob("*.dcm"))[0], single)
    results = run_corpus("series", series, work / "out-series", args, peers, cert)
    one = run_corpus("1 slice", single, work / "out-one", args, peers, cert)
    results += run_corpus("big", big, work / "out-big", args, peers, cert)
    reference = f"dcmanon -j {args.jobs}"
    print(table(results, reference))
    print(marginal_table([r for r in results if r.corpus == "series"], one, reference))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
