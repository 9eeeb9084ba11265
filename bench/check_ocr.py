"""Time of ``check --ocr`` per image and per frame, against ``check`` of the same set without it.

    .venv/bin/python bench/check_ocr.py                         # a few kinds of the corpus
    .venv/bin/python bench/check_ocr.py --kinds cine radiograph_large

Each kind of image of the pixel corpus (``tests/pixel_corpus.py``: text drawn with a real font)
is written as an original and de-identified twice (``--pixels off``: the text stays; the
default pixel stage: it is blanked). Then, in this process, with the OCR engine loaded first:
``check`` without OCR (the baseline) and ``check --ocr`` of each output set. Prints CPU and
wall seconds, seconds per frame read, the ratio to the baseline, and the findings by category.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dcmanon import Anonymizer, parse_config  # noqa: E402
from dcmanon.check.findings import Report  # noqa: E402
from dcmanon.check.verify import check  # noqa: E402
from dcmanon.pixels import ocr  # noqa: E402
from tests import pixel_corpus as corpus  # noqa: E402

KEY = "bench-check-ocr-key-of-more-than-32-characters"
KINDS = ("monochrome2_8", "rgb_planar0", "ybr_full_422_jpeg", "radiograph_large", "cine")


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(run: Callable[[], Report]) -> tuple[Report, float, float]:
    wall, used = time.perf_counter(), cpu()
    report = run()
    return report, time.perf_counter() - wall, cpu() - used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=sorted(corpus.KINDS))
    kinds = parser.parse_args().kinds
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    ocr.load_engine()
    print(f"engine loaded in {time.perf_counter() - started:.1f} s (once per process)")
    print(f"{'image':18} {'output':6} {'frames':>6} {'plain s':>8} {'ocr cpu s':>9} "
          f"{'ocr wall s':>10} {'s/frame':>8} {'ratio':>6}  findings")
    with tempfile.TemporaryDirectory() as folder:
        for kind in kinds:
            root = Path(folder) / kind
            (root / "orig").mkdir(parents=True)
            image = corpus.make(kind)
            image.ds.save_as(root / "orig" / "img.dcm", enforce_file_format=True)
            for output, mode in (("off", "off"), ("clean", "flagged")):
                anonymizer = Anonymizer(parse_config({"profile": "basic"}, secret=KEY),
                                        pixels=mode)
                (root / output).mkdir()
                anonymizer.anonymize_file(root / "orig" / "img.dcm", root / output / "img.dcm")
                plain = timed(lambda: check(root / "orig", root / output))[1]  # noqa: B023
                report, wall, used = timed(
                    lambda: check(root / "orig", root / output, ocr=True))  # noqa: B023
                frames = image.frames.shape[0]
                found = dict(report.by_category) or "none"
                print(f"{kind:18} {output:6} {frames:>6} {plain:>8.2f} {used:>9.2f} "
                      f"{wall:>10.2f} {used / frames:>8.2f} {wall / plain:>6.0f}  {found}")


if __name__ == "__main__":
    main()
