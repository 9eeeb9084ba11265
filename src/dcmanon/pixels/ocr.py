"""Find burned-in text with OCR: RapidOCR (PP-OCR models in ONNX) on the CPU, offline.

The engine and its models come with the ``rapidocr`` wheel (``pip install 'dcmanon[ocr]'``); they
are loaded once per process, on first use, from the wheel's own folder, so nothing is ever
downloaded. Text is found in two steps: the detector outlines every line of text, then the
recogniser reads each line, only to decide which lines may stay (:func:`find_text_boxes`).
What is read is never logged nor returned by :func:`find_text_boxes`: it is PHI.

How frames are read:

* each frame is shown in 8 bits (:mod:`dcmanon.pixels.render`); identical frames are read once;
* lines are detected in two views of the frame: as shown, and its local contrast (faint text
  on a grey band stands out there);
* frames larger than :data:`MAX_SIDE` pixels are shrunk for detection and the boxes mapped back;
* a multi-frame image's boxes are joined over its frames and apply to *every* frame: burned-in
  text stays in place from frame to frame, and a frame where the detector missed a line (its
  anatomy behind the text changed) is blanked all the same.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcmanon.errors import MissingExtraError
from dcmanon.pixels.boxes import Box
from dcmanon.pixels.inkfit import fitted, ink_extent
from dcmanon.pixels.render import to_rgb8

if TYPE_CHECKING:
    import numpy as np
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

INSTALL_HINT = ("OCR of burned-in text needs the OCR engine: pip install 'dcmanon[ocr]' "
                "(or give --pixels rules to blank by region rules only)")
MAX_SIDE = 1280
"""Frames whose longer side exceeds this are shrunk for detection (text of 20 pixels in a
2600-pixel radiograph is still 10 pixels high)."""
MIN_SIDE = 320
"""Frames whose longer side is below this are enlarged: small text in a thumbnail-sized image
is below what the detector sees."""
SMALLEST_SIDE = 16
"""Frames narrower or lower than this are not read: no legible line of text fits (dose grids,
icons); the detector only sees noise there."""
MARGIN = 3
"""Pixels added around a detector's box where its ink could not be told (see
:mod:`dcmanon.pixels.inkfit`), plus :data:`MARGIN_RATIO` of its height."""
MARGIN_RATIO = 0.2
TALLEST_LINE = 0.2
"""Regions taller than this share of the frame (and than 64 pixels) are not lines of text: the
detector takes a textured, noisy region (anatomy, speckle) for one block of text when a frame
holds no text at all. Lines of burned-in text are a few percent of the frame high."""
LOCAL_WINDOW = 15
LOCAL_GAIN = 8.0
"""The second view of every frame (:func:`_local_contrast`): neighbourhood and gain."""
PAD = 16
"""Pixels of border added around a view for detection."""
READ_LIMIT = 5.0
"""Lines wider than this many times their height are not read for the allow-list: they are
blanked whatever they say (no harmless label is that long), which saves most of the reading."""

_MODELS = {"det": "PP-OCRv6_det_small.onnx", "rec": "PP-OCRv6_rec_small.onnx",
           "cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx"}
"""The models the rapidocr wheel ships (its default PP-OCR detector and recogniser)."""

ALLOWED_WORDS = frozenset({
    # laterality and patient orientation
    "r", "l", "a", "p", "h", "f", "i", "rt", "lt", "ap", "pa", "lat",
    # units
    "cm", "mm", "m", "s", "ms", "hz", "khz", "mhz", "db", "%", "bpm", "cm/s", "m/s", "mm/s",
    "kv", "kvp", "ma", "mas", "deg", "°",
    # scale marks
    "+", "-", ".", ":", "|", "/", "x",
})
"""Words that may stay in the image (compared case-insensitively). A line stays only when every
word in it is one of these, a short number (:data:`_NUMBER`) or a number with one of these as
its unit (``10cm``)."""
_NUMBER = re.compile(r"[+-]?\d{1,3}([.,]\d{1,2})?")
"""Scale-tick numbers: at most three digits before the decimal point, so no date, ID or year."""
_WORD = re.compile(r"[^\s]+")
_CONFUSED = str.maketrans({"o": "0", "q": "0", "d": "0", "i": "1", "l": "1", "|": "1", "!": "1",
                           "z": "2", "s": "5", "b": "8", "g": "9"})
"""Letters OCR reads for digits (and back): IDs and dates are compared with both mapped to one."""
_MONTHS = ("jan feb mar apr may jun jul aug sep oct nov dec").split()


@dataclass(frozen=True)
class TextLine:
    """One line of text found in a frame: the detector's box, what it says, and the extent of
    its ink within the box (``None`` when it could not be told; see :mod:`dcmanon.pixels.inkfit`).

    ``text`` is ``None`` when the line was not read (see :data:`READ_LIMIT`). The text is PHI:
    never log it.
    """

    box: Box
    text: str | None
    ink: Box | None = None


def find_text_boxes(frames: np.ndarray | Iterable[np.ndarray], ds: Dataset, *,
                    identifiers: Sequence[str] | None = None) -> list[Box]:
    """Boxes of burned-in text to blank in an image's frames.

    Parameters
    ----------
    frames : numpy.ndarray or iterable of numpy.ndarray
        Stored values, shape ``(frames, rows, columns, samples)``, photometric interpretation
        as ``ds`` says (see :mod:`dcmanon.pixels.render`); or the frames one by one, each
        ``(rows, columns, samples)`` (a cine read from disk a frame at a time: only one frame
        is held at once).
    ds : pydicom.dataset.Dataset
        The image's header: PhotometricInterpretation, BitsStored, PixelRepresentation, palette
        lookup tables.
    identifiers : sequence of str, optional
        Only text matching one of these is returned: names (their parts, in any order and
        case), IDs (with or without separators) and dates (``19700101``, ``1970-01-01``,
        ``01/01/1970``, ``01.01.1970``, ``Jan 1 1970``...). Without it, every line of text is
        returned except those made only of :data:`ALLOWED_WORDS` and scale numbers.

    Returns
    -------
    list of Box
        Fitted to the ink of each line and grown by a margin, clipped to the image; ``frames``
        is ``None`` (every frame).

    Raises
    ------
    MissingExtraError
        If rapidocr or onnxruntime is not installed.
    ValueError
        If ``frames`` is an array that is not 4-D.
    """
    ndim = getattr(frames, "ndim", 4)
    if ndim != 4:
        raise ValueError(f"frames must be 4-D (frames, rows, columns, samples), not "
                         f"{ndim}-D")
    engine = load_engine()
    matcher = IdentifierMatcher(identifiers) if identifiers is not None else None
    if matcher is not None and matcher.empty:
        return []
    found: set[tuple[int, int, int, int]] = set()
    for (rows, columns), lines in _lines_per_distinct_frame(engine, frames, ds,
                                                            read_all=matcher is not None):
        for line in lines:
            if not _to_blank(line, matcher):
                continue
            margin = MARGIN + math.ceil(MARGIN_RATIO * line.box.height)
            box = fitted(line.box, line.ink, margin).clipped(columns, rows)
            if box.area:
                found.add((box.left, box.top, box.right, box.bottom))
    return _outermost(found)


def _outermost(found: set[tuple[int, int, int, int]]) -> list[Box]:
    """The boxes not inside another one (a cine's frames give the same line again, a pixel
    off: blanking it twice is work for nothing), sorted."""
    kept: list[tuple[int, int, int, int]] = []
    for edges in sorted(found, key=lambda e: (e[2] - e[0]) * (e[3] - e[1]), reverse=True):
        if not any(o[0] <= edges[0] and o[1] <= edges[1] and o[2] >= edges[2]
                   and o[3] >= edges[3] for o in kept):
            kept.append(edges)
    return [Box(*edges) for edges in sorted(kept)]


def read_text(frames: np.ndarray, ds: Dataset) -> list[list[TextLine]]:
    """Every line of text in each frame with what it says (for checks of the outputs; the
    text is PHI: never log it). Same arguments as :func:`find_text_boxes`."""
    engine = load_engine()
    cache: dict[bytes, list[TextLine]] = {}
    result = []
    for index in range(frames.shape[0]):
        key = _frame_key(frames[index])
        if key not in cache:
            cache[key] = _read_frame(engine, frames[index], ds, read_all=True)
        result.append(cache[key])
    return result


def _lines_per_distinct_frame(engine: Any, frames: np.ndarray | Iterable[np.ndarray],
                              ds: Dataset, read_all: bool
                              ) -> Iterator[tuple[tuple[int, int], list[TextLine]]]:
    """(rows, columns) and the lines of each distinct frame, taken one at a time: a frame
    identical to one already read (the same stored values) is not read again."""
    seen: set[bytes] = set()
    known: dict[bytes, str] = {}  # what each line read says (PHI: held for this image only)
    total = 0
    for frame in frames:
        total += 1
        key = _frame_key(frame)
        if key in seen:
            continue
        seen.add(key)
        yield (int(frame.shape[0]), int(frame.shape[1])), _read_frame(engine, frame, ds,
                                                                       read_all, known)
    log.debug("OCR read %d distinct frames of %d", len(seen), total)


def _frame_key(frame: np.ndarray) -> bytes:
    import numpy as np

    digest = hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16)
    digest.update(repr(frame.shape).encode())
    return digest.digest()


def _read_frame(engine: Any, frame: np.ndarray, ds: Dataset, read_all: bool,
                known: dict[bytes, str] | None = None) -> list[TextLine]:
    """Detect the lines of one frame in both views; read those that need reading (a line
    whose pixels are in ``known``, read on an earlier frame of a cine, is not read again)."""
    import cv2

    rows, columns = int(frame.shape[0]), int(frame.shape[1])
    if min(rows, columns) < SMALLEST_SIDE:
        return []
    image = to_rgb8(frame, ds)
    longest = max(rows, columns)
    scale = 1.0
    if longest > MAX_SIDE:
        scale = MAX_SIDE / longest
    elif longest < MIN_SIDE:
        scale = 2.0
    shown = image if scale == 1.0 else cv2.resize(
        image, (max(1, round(columns * scale)), max(1, round(rows * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    found: list[tuple[Box, np.ndarray]] = []
    for view in (shown, _local_contrast(shown)):
        for box in _detect(engine, view, scale, rows, columns):
            if not any(_inside(box, other) for other, _ in found):
                found.append((box, view))
    wanted = [i for i, (b, _) in enumerate(found)
              if read_all or b.width <= READ_LIMIT * b.height]
    known = {} if known is None else known
    crops = {i: found[i][1][_crop(found[i][0], scale, found[i][1].shape)] for i in wanted}
    keys = {i: _frame_key(crop) for i, crop in crops.items()}
    todo = [i for i in wanted if keys[i] not in known]
    if todo:
        recognised = engine.recognize_txt([crops[i] for i in todo])
        for i, text in zip(todo, recognised.txts or (), strict=False):
            known[keys[i]] = str(text)
    texts = {i: known[keys[i]] for i in wanted if keys[i] in known}
    return [TextLine(box, texts.get(i), ink_extent(image, box))
            for i, (box, _) in enumerate(found)]


def _local_contrast(image: np.ndarray) -> np.ndarray:
    """Each pixel's difference from its neighbourhood, amplified: text a few grey levels off its
    background (grey on a grey band) stands out as well as white on black."""
    import cv2
    import numpy as np

    # Smoothed first: amplified, pixel noise on a dark field looks like print to the detector
    # (a flat band's faint text keeps most of its contrast).
    gray = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (3, 3), 0)
    # The median keeps the edges of bands and bars, which would otherwise outshine the text.
    background = cv2.medianBlur(gray, LOCAL_WINDOW).astype(np.float32)
    difference = gray.astype(np.float32) - background
    local = np.clip(difference * LOCAL_GAIN + 128.0, 0, 255).astype(np.uint8)
    return np.repeat(local[..., None], 3, axis=-1)


def _detect(engine: Any, view: np.ndarray, scale: float, rows: int, columns: int) -> list[Box]:
    """The boxes of the lines the detector finds in one view, in the frame's pixels."""
    import cv2
    import numpy as np

    # A border of the view's own edge colour: text cut by the edge of the frame is found.
    edges = np.concatenate([view[0], view[-1], view[:, 0], view[:, -1]])
    colour = [int(v) for v in np.median(edges, axis=0)]
    padded = cv2.copyMakeBorder(view, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=colour)
    detected = engine(padded, use_det=True, use_cls=False, use_rec=False)
    quads = getattr(detected, "boxes", None)
    if quads is None or len(quads) == 0:
        return []
    tallest = max(24.0, TALLEST_LINE * rows)
    boxes = []
    for quad in np.asarray(quads, dtype=np.float64):
        xs, ys = (quad[:, 0] - PAD) / scale, (quad[:, 1] - PAD) / scale
        box = Box(max(0, math.floor(xs.min())), max(0, math.floor(ys.min())),
                  min(columns, math.ceil(xs.max()) + 1), min(rows, math.ceil(ys.max()) + 1))
        if box.height > tallest:
            log.debug("OCR: a region %d pixels high is no line of text", box.height)
        elif box.area:
            boxes.append(box)
    return boxes


def _inside(box: Box, other: Box) -> bool:
    """Whether most of ``box`` lies within ``other`` (the same line found in both views)."""
    width = min(box.right, other.right) - max(box.left, other.left)
    height = min(box.bottom, other.bottom) - max(box.top, other.top)
    return width > 0 and height > 0 and width * height >= 0.7 * box.area


def _crop(box: Box, scale: float, shape: tuple[int, ...]) -> tuple[slice, slice]:
    top = max(0, math.floor(box.top * scale))
    left = max(0, math.floor(box.left * scale))
    bottom = min(shape[0], max(top + 1, math.ceil(box.bottom * scale)))
    right = min(shape[1], max(left + 1, math.ceil(box.right * scale)))
    return slice(top, bottom), slice(left, right)


def _to_blank(line: TextLine, matcher: IdentifierMatcher | None) -> bool:
    if matcher is not None:
        # A line that could not be read might be the identifier: blanked.
        return line.text is None or not line.text.strip() or matcher.matches(line.text)
    return line.text is None or not is_harmless(line.text)


def is_harmless(text: str) -> bool:
    """Whether a line of text may stay: every word in it is allow-listed (:data:`ALLOWED_WORDS`,
    scale numbers, a number with an allowed unit). Empty text is not harmless (the detector saw
    something there).

    Examples
    --------
    >>> is_harmless("R"), is_harmless("10 cm"), is_harmless("5.0MHz"), is_harmless("L 3")
    (True, True, True, True)
    >>> is_harmless("DOE R"), is_harmless("19700101"), is_harmless("")
    (False, False, False)
    """
    words = _WORD.findall(text.lower())
    return bool(words) and all(_harmless_word(w) for w in words)


def _harmless_word(word: str) -> bool:
    if word in ALLOWED_WORDS or _NUMBER.fullmatch(word):
        return True
    number = re.match(r"[+-]?\d{1,3}([.,]\d{1,2})?", word)
    return number is not None and word[number.end():] in ALLOWED_WORDS


class IdentifierMatcher:
    """Tells whether a line of OCR'd text holds one of a file's identifiers.

    Identifiers may be given as DICOM values (``DOE^JOHN``, ``19700101``) or already spelled
    out (as :func:`dcmanon.phi.identifiers.collect_identifiers` gives them): names are split
    into their parts, dates spelled in their usual forms. A name part matches a whole word of
    the text (a part of four letters or more also inside a run of letters, as OCR drops the
    spaces and carets between names); IDs and dates match within the text with separators
    ignored and with the letters OCR confuses with digits (``O``/``0``, ``I``/``1``...) made one.
    """

    def __init__(self, identifiers: Sequence[str]) -> None:
        from dcmanon.phi.identifiers import date_spellings
        from dcmanon.phi.matching import fold

        words: set[str] = set()
        compact: set[str] = set()
        for raw in identifiers:
            for part in str(raw).split("="):
                value = part.strip()
                if not value:
                    continue
                spellings = [value]
                if re.fullmatch(r"\d{8}", value):
                    spellings += date_spellings(value) + _short_year_spellings(value)
                for spelling in spellings:
                    folded = fold(spelling)
                    if any(c.isdigit() for c in folded):
                        key = _compact(folded).translate(_CONFUSED)
                        if len(key) >= 3:
                            compact.add(key)
                    else:
                        for name in re.split(r"[\W_]+", folded):
                            if len(name) >= 2:
                                words.add(name)
        self.words = frozenset(words)
        self.compact = frozenset(compact)

    @property
    def empty(self) -> bool:
        """Whether there is nothing to look for."""
        return not self.words and not self.compact

    def matches(self, text: str) -> bool:
        """Whether ``text`` holds one of the identifiers."""
        from dcmanon.phi.matching import fold

        folded = fold(text)
        tokens = [t for t in re.split(r"[\W_]+", folded) if t]
        if any(t in self.words for t in tokens):
            return True
        letters = "".join(tokens)
        if any(len(w) >= 4 and w in letters for w in self.words):
            return True
        digits = _compact(folded).translate(_CONFUSED)
        return any(term in digits for term in self.compact)


def _short_year_spellings(value: str) -> list[str]:
    """A DA value's spellings with a two-digit year, as scanners print them in their title
    bars (``31-JAN-24``, ``31.01.24``, ``01/31/24``)."""
    year, month, day = value[2:4], value[4:6], value[6:8]
    if not ("01" <= month <= "12" and "01" <= day <= "31"):
        return []
    name = _MONTHS[int(month) - 1]
    return [f"{day}-{name}-{year}", f"{int(day)}-{name}-{year}", f"{day}.{month}.{year}",
            f"{month}/{day}/{year}", f"{year}{month}{day}"]


def _compact(folded: str) -> str:
    """Letters and digits only, month names shortened to three letters (``January`` and
    ``Jan`` spell one date)."""
    text = re.sub(r"[\W_]+", "", folded)
    for month in _MONTHS:
        text = re.sub(month + r"[a-z]*", month, text)
    return text


@lru_cache(maxsize=1)
def load_engine() -> Any:
    """The OCR engine of this process, loaded on first use from the models in the rapidocr
    wheel (never downloaded), on the CPU, one thread (workers run in parallel processes).

    Raises
    ------
    MissingExtraError
        If rapidocr or onnxruntime is not installed, or the wheel lacks its models.
    """
    try:
        import onnxruntime  # noqa: F401
        import rapidocr
        from rapidocr import RapidOCR
    except ImportError:
        raise MissingExtraError(INSTALL_HINT) from None
    models = Path(rapidocr.__file__).parent / "models"
    paths = {task: models / name for task, name in _MODELS.items()}
    missing = [task for task, path in paths.items() if not path.is_file()]
    if missing:
        # Without them rapidocr would try to download its models: we never do.
        raise MissingExtraError(f"the rapidocr installation lacks its {', '.join(missing)} "
                                f"model; reinstall it. {INSTALL_HINT}")
    params = {
        "Global.log_level": "critical",  # its messages are of no use to our users
        "Global.text_score": 0.0,  # a line read with low confidence is still text
        "Global.use_cls": False,  # burned-in text is upright
        "Global.max_side_len": 4096,  # we size frames ourselves (MAX_SIDE)
        "Global.model_root_dir": str(models),
        "Det.model_path": str(paths["det"]),
        "Det.limit_type": "max",
        "Det.limit_side_len": 4096,
        "Rec.model_path": str(paths["rec"]),
        "Cls.model_path": str(paths["cls"]),
        "EngineConfig.onnxruntime.intra_op_num_threads": 1,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }
    return RapidOCR(params=params)
