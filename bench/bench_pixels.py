"""Benchmark the pixel stage (burned-in text): each ``--pixels`` mode against ``off``, in one run.

    .venv/bin/python bench/bench_pixels.py              # the default corpus, ~3 min on 2 cores
    .venv/bin/python bench/bench_pixels.py --quick      # fewer images, a 120-frame cine
    .venv/bin/python bench/bench_pixels.py --cine-frames 500 --cine-rgb --ct-slices 400

Builds a corpus with text burned in (drawn with a real TrueType font by the helpers of
``tests/pixel_corpus.py``: the patient's name, ID, dates, accession number, plus harmless
labels), written to disk by this script:

* ``burned``: ultrasound single frames of 640x480 in RGB and MONOCHROME2, secondary captures
  (MONOCHROME2, 800x600), and an ultrasound cine (RGB, 640x480, ``--us-cine-frames`` frames
  of which ``--us-cine-distinct`` differ: the anatomy moves, the text stays);
* ``ct``: CT slices of 512x512 without text (``dcmanon.testing``: ORIGINAL\\PRIMARY, not
  flagged);
* ``cine``: one long cine (``--cine-frames``, 480x640 MONOCHROME2, or RGB with ``--cine-rgb``;
  a name on every frame; ``--cine-distinct`` distinct frames), written frame by frame; with
  ``--cine-jpeg``, JPEG baseline YBR_FULL_422 as most ultrasound cines (``--cine-only``: just
  this cine).

Then runs ``dcmanon -I ... -O ... --pixels MODE`` on each (a process each; DCMANON_KEY set)
and prints:

* on ``burned``: wall time and files/s of off, rules, flagged (the default) and all; the
  ratio of flagged to off; CPU seconds per OCR'd frame: CPU of flagged minus CPU of rules is
  W engine start-ups plus N frames (W workers that read, N distinct frames in the corpus),
  and one frame alone (a run on one US frame, flagged minus off) is one start-up plus one
  frame, so per frame = (that difference - W x one frame alone) / (N - W);
* on ``ct``: files/s and files per CPU second of off and flagged in alternating rounds
  (medians), and their ratios (CT slices are not flagged: the fast path must keep its pace;
  wall time includes the final sync of the outputs, so the CPU ratio is the steadier one),
  the same in this process (``anonymize_file``, the two modes taking turns file by file, CPU
  time: no start-up, no sync, the finest comparison), plus ``all`` on a few slices (what OCR
  of every image costs);
* on ``cine``: peak RSS of the run beside the file's size, for off, rules and flagged.

Peak RSS is that of the largest process of a run (``getrusage(RUSAGE_CHILDREN)`` in a small
launcher: the dcmanon process or one of its batch workers). Nothing is asserted: speed is
measured, not tested.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import pixel_corpus as corpus  # noqa: E402  (the test corpus's drawing helpers)

MODES = ("off", "rules", "flagged", "all")


@dataclass
class Run:
    label: str
    mode: str
    seconds: float
    cpu: float
    peak_mb: float
    files: int
    ok: bool
    records: list[dict[str, object]]

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds if self.seconds else 0.0


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# -- the corpus ------------------------------------------------------------------------------

def _text_picture(rows: int, columns: int, seed: int, frame: int = 0) -> np.ndarray:
    """A grey picture (0..1) with the corpus's identifiers and labels drawn on it."""
    picture = corpus._anatomy(rows, columns, seed, frame)
    picture, _ = corpus._draw(picture, corpus._layout(rows, columns))
    picture, _ = corpus._faint(picture)
    return picture


def _rgb(picture: np.ndarray) -> np.ndarray:
    return np.rint(corpus._grey_rgb(picture) * 255).astype(np.uint8)


def _mono(picture: np.ndarray) -> np.ndarray:
    return np.rint(picture * 255).astype(np.uint8)[..., None]


def _save(ds: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)  # type: ignore[attr-defined]


def build_burned(folder: Path, singles: int, captures: int, cine_frames: int,
                 cine_distinct: int) -> int:
    """US singles (RGB and MONOCHROME2), secondary captures, a US cine; returns the number
    of distinct frames OCR has to read in the folder."""
    from pydicom.uid import (
        SecondaryCaptureImageStorage,
        UltrasoundImageStorage,
        UltrasoundMultiFrameImageStorage,
    )

    shutil.rmtree(folder, ignore_errors=True)
    distinct = 0
    for index in range(singles):
        rgb = index % 2 == 0
        ds = corpus._dataset(480, 640, UltrasoundImageStorage, "US")
        picture = _text_picture(480, 640, seed=20 + index)
        stored = _rgb(picture)[None] if rgb else _mono(picture)[None]
        corpus._set_pixels(ds, stored, "RGB" if rgb else "MONOCHROME2", 8)
        _save(ds, folder / "us" / f"US{index:03d}.dcm")
        distinct += 1
    for index in range(captures):
        ds = corpus._dataset(600, 800, SecondaryCaptureImageStorage, "OT")
        del ds.BurnedInAnnotation  # flagged by its SOP class alone
        corpus._set_pixels(ds, _mono(_text_picture(600, 800, seed=40 + index))[None],
                           "MONOCHROME2", 8)
        _save(ds, folder / "sc" / f"SC{index:03d}.dcm")
        distinct += 1
    if cine_frames:
        patterns = [_rgb(_text_picture(480, 640, seed=60, frame=f))
                    for f in range(min(cine_distinct, cine_frames))]
        ds = corpus._dataset(480, 640, UltrasoundMultiFrameImageStorage, "US")
        stack = np.stack([patterns[f % len(patterns)] for f in range(cine_frames)])
        corpus._set_pixels(ds, stack, "RGB", 8)
        ds.FrameTime = 33.3
        _save(ds, folder / "cine" / "CINE.dcm")
        distinct += len(patterns)
    return distinct


def build_ct(folder: Path, slices: int) -> None:
    """CT slices of 512x512 without text (the bench.py series, smaller)."""
    from dcmanon.testing import make_instance, make_patient

    if folder.exists() and len(list(folder.glob("*.dcm"))) == slices:
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    patient = make_patient(0, seed=42)
    pixels = make_instance(patient, 0, 0, 0, rows=512, columns=512, seed=42).PixelData
    for index in range(slices):
        ds = make_instance(patient, 0, 0, index, rows=8, columns=8, seed=42)
        ds.Rows, ds.Columns = 512, 512
        ds.PixelData = pixels[index % 512:] + pixels[:index % 512]
        ds.save_as(folder / f"CT{index:05d}.dcm", enforce_file_format=True)


def build_long_cine(path: Path, frames: int, distinct: int, rgb: bool,
                    jpeg: bool = False) -> int:
    """A long US cine with a name on every frame, written frame by frame (never whole in
    memory); with ``jpeg``, JPEG baseline YBR_FULL_422 (Pillow's 4:2:2, as most ultrasound
    cines); returns its size in bytes."""
    from pydicom.uid import UltrasoundMultiFrameImageStorage

    shutil.rmtree(path.parent, ignore_errors=True)
    path.parent.mkdir(parents=True)
    rows, columns = 480, 640
    patterns = [(_rgb if rgb or jpeg else _mono)(_text_picture(rows, columns, seed=80, frame=f))
                for f in range(min(distinct, frames))]
    ds = corpus._dataset(rows, columns, UltrasoundMultiFrameImageStorage, "US")
    if jpeg:
        return _write_jpeg_cine(path, ds, patterns, frames)
    corpus._set_pixels(ds, patterns[0][None], "RGB" if rgb else "MONOCHROME2", 8)
    del ds.PixelData
    ds.NumberOfFrames = frames
    ds.FrameTime = 33.3
    ds.save_as(path, enforce_file_format=True)
    frame_bytes = patterns[0].nbytes
    with path.open("ab") as handle:
        handle.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, frame_bytes * frames))
        for index in range(frames):
            handle.write(np.ascontiguousarray(patterns[index % len(patterns)]).tobytes())
    return path.stat().st_size


def _write_jpeg_cine(path: Path, ds: Dataset, patterns: list[np.ndarray], frames: int) -> int:
    """The cine in JPEG baseline: each distinct frame encoded once, the fragments written one
    after the other (an empty basic offset table, as many scanners write)."""
    import io

    from PIL import Image
    from pydicom.uid import JPEGBaseline8Bit

    encoded = []
    for pattern in patterns:
        buffer = io.BytesIO()
        Image.fromarray(pattern, mode="RGB").save(buffer, format="JPEG", quality=92,
                                                  subsampling=1)
        data = buffer.getvalue()
        encoded.append(data + b"\0" * (len(data) % 2))
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = (
        3, "YBR_FULL_422", 0)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression = "01"
    ds.NumberOfFrames = frames
    ds.FrameTime = 33.3
    ds.save_as(path, enforce_file_format=True)
    with path.open("ab") as handle:
        handle.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF))
        handle.write(struct.pack("<HHL", 0xFFFE, 0xE000, 0))  # the basic offset table
        for index in range(frames):
            data = encoded[index % len(encoded)]
            handle.write(struct.pack("<HHL", 0xFFFE, 0xE000, len(data)))
            handle.write(data)
        handle.write(struct.pack("<HHL", 0xFFFE, 0xE0DD, 0))
    return path.stat().st_size


# -- runs ------------------------------------------------------------------------------------

LAUNCHER = """
import json, os, resource, subprocess, sys
code = subprocess.run(sys.argv[2:]).returncode
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "maxrss_kb": usage.ru_maxrss,
               "cpu": usage.ru_utime + usage.ru_stime}, out)
"""
"""Runs a command and writes its children's resource usage: the peak RSS of the largest
process of the run, measured from a fresh, small interpreter (a child forked from this
script would start its high-water mark at this script's own size)."""


def run_dcmanon(label: str, source: Path, out: Path, mode: str, jobs: int) -> Run:
    """One ``dcmanon`` run in its own process: wall time, CPU and peak RSS."""
    files = sum(1 for p in source.rglob("*") if p.is_file())
    shutil.rmtree(out, ignore_errors=True)
    report = out.with_name(out.name + ".report.jsonl")
    report.unlink(missing_ok=True)
    usage = out.with_name(out.name + ".usage.json")
    env = {**os.environ, "DCMANON_KEY": "bench-secret-not-for-real-use-" + "k" * 16}
    command = [sys.executable, "-c", LAUNCHER, str(usage), sys.executable, "-m", "dcmanon",
               "-I", str(source), "-O", str(out), "-j", str(jobs), "--pixels", mode,
               "--report", str(report)]
    start = time.perf_counter()
    process = subprocess.run(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - start
    measured = json.loads(usage.read_text())
    ok = measured["code"] == 0
    if not ok:
        tail = process.stderr.decode(errors="replace").strip().splitlines()[-2:]
        log(f"{label} --pixels {mode}: exit {measured['code']}: {' | '.join(tail)}")
    records = [json.loads(line) for line in report.read_text().splitlines()
               if line.strip()] if report.exists() else []
    run = Run(label, mode, seconds, measured["cpu"], measured["maxrss_kb"] / 1024, files, ok,
              records)
    log(f"{label:6} --pixels {mode:8} {seconds:7.2f} s  cpu {run.cpu:7.2f} s  "
        f"peak {run.peak_mb:7.1f} MB")
    return run


def _pixel_records(run: Run) -> list[dict[str, object]]:
    return [r["pixels"] for r in run.records if isinstance(r.get("pixels"), dict)]  # type: ignore[misc]


def burned_table(runs: dict[str, Run], one: dict[str, Run], distinct: int, jobs: int) -> str:
    off = runs["off"]
    lines = [f"\nburned-in corpus: {off.files} files, {distinct} distinct frames to OCR, "
             f"-j {jobs}",
             f"{'--pixels':10} {'s':>8} {'files/s':>9} {'CPU s':>8} {'peak MB':>8} "
             f"{'vs off':>8} {'OCR read':>9} {'cleaned':>8} {'boxes':>6}"]
    for mode in MODES:
        run = runs[mode]
        pixels = _pixel_records(run)
        read = sum(1 for p in pixels if p.get("ocr"))
        cleaned = sum(1 for p in pixels if p.get("frames"))
        boxes = sum(int(p.get("boxes") or 0) for p in pixels)  # type: ignore[call-overload]
        ratio = run.files_per_s / off.files_per_s if off.files_per_s else 0.0
        lines.append(f"{mode:10} {run.seconds:8.2f} {run.files_per_s:9.2f} {run.cpu:8.2f} "
                     f"{run.peak_mb:8.1f} {ratio:8.3f} {read:9d} {cleaned:8d} {boxes:6d}"
                     + ("" if run.ok else "  FAILED"))
    flagged, rules = runs["flagged"], runs["rules"]
    read = sum(1 for p in _pixel_records(flagged) if p.get("ocr"))
    workers = max(1, min(jobs, read))
    # CPU of OCR = workers x start-up + frames x per frame; one frame alone = start-up + one.
    total = flagged.cpu - rules.cpu
    alone = one["flagged"].cpu - one["off"].cpu
    per_frame = (total - workers * alone) / (distinct - workers) if distinct > workers else 0.0
    lines.append(f"seconds per OCR'd frame: {per_frame:.2f} CPU s (engine start-up taken out: "
                 f"one 640x480 frame alone cost {alone:.2f} CPU s, start-up included; "
                 f"{total / distinct:.2f} CPU s with {workers} start-up(s) spread over the "
                 f"{distinct} frames); wall: "
                 f"{(flagged.seconds - rules.seconds) / distinct:.2f} s per frame on {jobs} "
                 "worker(s)")
    lines.append(f"files/s flagged / off: {flagged.files_per_s / off.files_per_s:.3f} "
                 f"(CPU: {off.cpu / flagged.cpu:.3f}); peak RSS of one frame OCR'd alone: "
                 f"{one['flagged'].peak_mb:.0f} MB (without OCR: {one['off'].peak_mb:.0f} MB)")
    return "\n".join(lines)


def ct_rounds(source: Path, work: Path, rounds: int, jobs: int) -> tuple[list[Run], list[Run]]:
    """off and flagged in alternating rounds (the machine's load drifts: pairs compare)."""
    offs, flaggeds = [], []
    for index in range(rounds):
        order = ("off", "flagged") if index % 2 == 0 else ("flagged", "off")
        for mode in order:
            run = run_dcmanon("ct", source, work / f"ct-{mode}", mode, jobs)
            (offs if mode == "off" else flaggeds).append(run)
    return offs, flaggeds


def ct_in_process(source: Path, work: Path, rounds: int) -> dict[str, list[float]]:
    """Files per CPU second of ``Anonymizer.anonymize_file`` on the CT slices, off and flagged
    taking turns file by file in this process (the machine's load drifts; turns this short
    share it): no start-up, no sync, so a small difference shows (the runs of the command
    carry both, and their spread hides it). One rate per round over the files."""
    import tempfile
    import warnings

    from dcmanon import Anonymizer, parse_config

    warnings.simplefilter("ignore")  # pydicom's, on the synthetic slices
    files = sorted(source.glob("*.dcm"))
    config = parse_config({"profile": "basic"}, secret="bench-secret-not-for-real-use-" * 2)
    engines = {mode: Anonymizer(config, pixels=mode) for mode in ("off", "flagged")}
    rates: dict[str, list[float]] = {mode: [] for mode in engines}
    with tempfile.TemporaryDirectory(dir=work) as out:
        for mode, engine in engines.items():  # one-time costs (imports, rule tables) first
            engine.anonymize_file(files[0], Path(out) / f"warm-{mode}.dcm", sync=False)
        for index in range(rounds):
            spent = dict.fromkeys(engines, 0.0)
            for number, path in enumerate(files):
                for mode in ("off", "flagged") if (index + number) % 2 == 0 else (
                        "flagged", "off"):
                    target = Path(out) / f"{mode}.dcm"
                    start = time.process_time()
                    engines[mode].anonymize_file(path, target, sync=False)
                    spent[mode] += time.process_time() - start
                    target.unlink()
            for mode in engines:
                rates[mode].append(len(files) / spent[mode])
    return rates


def ct_table(offs: list[Run], flaggeds: list[Run], everything: Run | None, jobs: int,
             inner: dict[str, list[float]] | None = None) -> str:
    off = statistics.median(r.files_per_s for r in offs)
    flagged = statistics.median(r.files_per_s for r in flaggeds)
    ratios = [f.files_per_s / o.files_per_s for o, f in zip(offs, flaggeds, strict=True)]
    cpu_off = statistics.median(r.cpu for r in offs)
    cpu_flagged = statistics.median(r.cpu for r in flaggeds)
    files = offs[0].files
    lines = [f"\nCT slices without text: {files} files, -j {jobs}, "
             f"{len(offs)} alternating rounds (wall time includes the sync of the outputs)",
             f"  --pixels off      {off:8.1f} files/s (median; rounds: "
             + ", ".join(f"{r.files_per_s:.1f}" for r in offs) + ")"
             f"  {files / cpu_off:7.1f} files per CPU s",
             f"  --pixels flagged  {flagged:8.1f} files/s (median; rounds: "
             + ", ".join(f"{r.files_per_s:.1f}" for r in flaggeds) + ")"
             f"  {files / cpu_flagged:7.1f} files per CPU s",
             f"  flagged / off     {flagged / off:8.3f} files/s (medians; per round: "
             + ", ".join(f"{r:.2f}" for r in ratios) + f");  CPU: {cpu_off / cpu_flagged:.3f}"]
    if inner:
        off_rate, flagged_rate = (statistics.median(inner[m]) for m in ("off", "flagged"))
        lines.append(f"  in one process (anonymize_file, taking turns file by file, "
                     f"{len(inner['off'])} rounds, files per CPU s): off {off_rate:.0f}, flagged "
                     f"{flagged_rate:.0f}; flagged / off {flagged_rate / off_rate:.3f}")
    if everything is not None:
        lines.append(f"  --pixels all      {everything.files_per_s:8.2f} files/s on "
                     f"{everything.files} slices (OCR of every slice: "
                     f"{everything.cpu / everything.files:.2f} CPU s per slice, start-up "
                     "included)")
    return "\n".join(lines)


def cine_table(runs: dict[str, Run], size: int, frames: int, distinct: int, rgb: bool,
               jpeg: bool = False) -> str:
    kind = "JPEG baseline YBR_FULL_422" if jpeg else "RGB" if rgb else "MONOCHROME2"
    lines = [f"\nlong cine: {frames} frames of 480x640 {kind} "
             f"({distinct} distinct), {size / 2**20:.1f} MiB"]
    for mode, run in runs.items():
        pixels = _pixel_records(run)
        changed = sum(int(p.get("frames") or 0) for p in pixels)  # type: ignore[call-overload]
        lines.append(f"  --pixels {mode:8} {run.seconds:7.2f} s  peak RSS {run.peak_mb:7.1f} MB"
                     f"  = {run.peak_mb * 2**20 / size:5.2f} x the file  "
                     f"({changed} frames changed)" + ("" if run.ok else "  FAILED"))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="4 US frames, 1 capture, a 20-frame US cine, 100 CT slices, a "
                             "120-frame long cine")
    parser.add_argument("--us", type=int, help="US single frames (default 6; at least 1)")
    parser.add_argument("--captures", type=int, help="secondary captures (default 2)")
    parser.add_argument("--us-cine-frames", type=int, help="frames of the US cine (default 60)")
    parser.add_argument("--us-cine-distinct", type=int, default=20,
                        help="distinct frames in it (default 20)")
    parser.add_argument("--ct-slices", type=int, help="CT slices (default 300)")
    parser.add_argument("--ct-rounds", type=int, default=5, help="off/flagged rounds on CT")
    parser.add_argument("--ct-all", type=int, default=6,
                        help="CT slices run with --pixels all (0: skip)")
    parser.add_argument("--cine-frames", type=int, help="frames of the long cine "
                        "(default 500; 0: skip)")
    parser.add_argument("--cine-distinct", type=int, default=4,
                        help="distinct frames of the long cine (default 4)")
    parser.add_argument("--cine-rgb", action="store_true", help="the long cine in RGB")
    parser.add_argument("--cine-jpeg", action="store_true",
                        help="the long cine in JPEG baseline YBR_FULL_422 (decoded: RGB size)")
    parser.add_argument("--cine-only", action="store_true",
                        help="only the long cine (no burned corpus, no CT slices)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dcmanon-bench-pixels"))
    args = parser.parse_args()
    us = max(1, args.us if args.us is not None else (4 if args.quick else 6))
    captures = args.captures if args.captures is not None else (1 if args.quick else 2)
    us_cine = args.us_cine_frames if args.us_cine_frames is not None else (
        20 if args.quick else 60)
    slices = args.ct_slices or (100 if args.quick else 300)
    cine_frames = args.cine_frames if args.cine_frames is not None else (
        120 if args.quick else 500)
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)

    import dcmanon

    # An editable install is compiled on first import (or never, with PYTHONDONTWRITEBYTECODE).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(dcmanon.__file__).parent)],
                   check=True)
    log(f"corpus in {work}")
    if args.cine_only:
        return _cine_only(work, cine_frames, args)
    burned = work / "corpus" / "burned"
    distinct = build_burned(burned, us, captures, us_cine, args.us_cine_distinct)
    ct = work / "corpus" / "ct"
    build_ct(ct, slices)
    out = work / "out"
    out.mkdir(exist_ok=True)

    burned_runs = {mode: run_dcmanon("burned", burned, out / f"burned-{mode}", mode, args.jobs)
                   for mode in MODES}
    single = work / "corpus" / "one"
    shutil.rmtree(single, ignore_errors=True)
    single.mkdir()
    shutil.copy(burned / "us" / "US000.dcm", single)
    one = {mode: run_dcmanon("one", single, out / f"one-{mode}", mode, 1)
           for mode in ("off", "flagged")}
    offs, flaggeds = ct_rounds(ct, out, args.ct_rounds, args.jobs)
    inner = ct_in_process(ct, out, 3)
    everything = None
    if args.ct_all:
        few = work / "corpus" / "ct-few"
        shutil.rmtree(few, ignore_errors=True)
        few.mkdir()
        for path in sorted(ct.glob("*.dcm"))[:args.ct_all]:
            shutil.copy(path, few)
        everything = run_dcmanon("ct", few, out / "ct-all", "all", args.jobs)
    cine_runs: dict[str, Run] = {}
    size = 0
    if cine_frames:
        long_cine = work / "corpus" / "cine" / "LONG.dcm"
        size = build_long_cine(long_cine, cine_frames, args.cine_distinct, args.cine_rgb,
                               args.cine_jpeg)
        for mode in ("off", "rules", "flagged"):
            cine_runs[mode] = run_dcmanon("cine", long_cine.parent, out / f"cine-{mode}",
                                          mode, 1)

    print(burned_table(burned_runs, one, distinct, args.jobs))
    print(ct_table(offs, flaggeds, everything, args.jobs, inner))
    if cine_runs:
        print(cine_table(cine_runs, size, cine_frames, min(args.cine_distinct, cine_frames),
                         args.cine_rgb, args.cine_jpeg))
    print(PEAK_NOTE)
    return 0


def _cine_only(work: Path, frames: int, args: argparse.Namespace) -> int:
    """``--cine-only``: the long cine in each mode, nothing else."""
    long_cine = work / "corpus" / "cine" / "LONG.dcm"
    size = build_long_cine(long_cine, frames, args.cine_distinct, args.cine_rgb, args.cine_jpeg)
    out = work / "out"
    out.mkdir(exist_ok=True)
    runs = {mode: run_dcmanon("cine", long_cine.parent, out / f"cine-{mode}", mode, 1)
            for mode in ("off", "rules", "flagged")}
    print(cine_table(runs, size, frames, min(args.cine_distinct, frames), args.cine_rgb,
                     args.cine_jpeg))
    print(PEAK_NOTE)
    return 0


PEAK_NOTE = ("\nPeak RSS: the largest process of the run (getrusage(RUSAGE_CHILDREN) of a small "
          "launcher: dcmanon or one of its workers). Ratios are taken in this run; nothing "
          "is asserted.")


if __name__ == "__main__":
    sys.exit(main())
