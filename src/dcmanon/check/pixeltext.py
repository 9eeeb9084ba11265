"""Text left in the pixels of de-identified images, read with OCR (``--ocr`` of ``check`` and
``scan``), and the pictures the HTML report shows of them.

Every output with pixel data is decoded one frame at a time (stored values, no colour
conversion; identical frames read once; a multi-frame image beyond ``max_frames`` frames is
sampled evenly, first and last frame included) and read by the OCR engine of
:mod:`dcmanon.pixels.ocr`, shown as :mod:`dcmanon.pixels.render` shows it. Lines made only of
allow-listed words (laterality, orientation, units, scale numbers:
:func:`dcmanon.pixels.ocr.is_harmless`) and lines of fewer than two letters or digits are not
findings. A line read at the same place on several frames of an image is reported once, on the
first of them.

``check`` compares each output with its original (the file at the same relative path): a line
holding one of the original's identifiers (names, IDs, dates in their usual spellings, OCR's
confusions of letters and digits forgiven) is a ``pixel-identifier`` finding; other text is
``pixel-text``. The regions where the output's pixels differ from the original's are the
blanked ones, outlined in the report's pictures. ``scan`` has no originals: every line is
``pixel-text``.

What OCR reads is PHI: it is held in findings (masked by every report unless asked) and never
logged.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from dcmanon.check.findings import Finding, Report, Thumbnail
from dcmanon.errors import MissingExtraError, PixelError
from dcmanon.pixels.boxes import Box

if TYPE_CHECKING:
    import numpy as np


log = logging.getLogger(__name__)

OCR_HINT = ("--ocr reads the outputs' pixels with the OCR engine, which is not installed: "
            "pip install 'dcmanon[ocr]'")
MAX_FRAMES = 32
"""Frames of one image read by default; longer images are sampled evenly (0: every frame)."""
THUMBNAILS = 200
"""At most this many pictures in a report (the others are counted)."""
THUMBNAIL_SIDE = 256
"""The longer side of a picture, in pixels (smaller frames are shown as they are)."""
MAX_REGIONS = 64
"""Blanked regions outlined per picture (the largest)."""
BLANKED_COLOUR = (0, 255, 255)
"""Outline of a region where the output's pixels differ from the original's (cyan)."""
TEXT_COLOUR = (255, 0, 255)
"""Outline of text OCR read in the output (magenta)."""
HIDDEN_COLOUR = (96, 0, 96)
"""What covers the text read in a picture of a report that masks values (dark magenta)."""
MIN_CHARACTERS = 2
"""Lines with fewer letters and digits are not reported: a lone character is no identifier, and
the detector reads one in the edge of a blanked box or a bright blob of anatomy."""
PIXEL_ELEMENT = "(7FE0,0010) PixelData"
_ALNUM = re.compile(r"[^\W_]")


def require_ocr() -> None:
    """Load the OCR engine now (a missing engine is a usage error, before any file is read).

    Raises
    ------
    MissingExtraError
        If numpy, Pillow, OpenCV, rapidocr or onnxruntime is missing: names ``dcmanon[ocr]``.
    """
    try:
        import cv2  # noqa: F401
        import numpy  # noqa: F401
        import PIL  # noqa: F401

        from dcmanon.pixels import ocr

        ocr.load_engine()
    except (ImportError, MissingExtraError):
        raise MissingExtraError(OCR_HINT) from None


@dataclass(frozen=True)
class TextRead:
    """A line of text OCR read in a frame (the text is PHI: never log it)."""

    frame: int
    box: Box
    text: str


@dataclass
class ImageRead:
    """What was read in one image: the lines, and how many of its frames were read."""

    lines: list[TextRead] = field(default_factory=list)
    frames: int = 0
    read: int = 0
    distinct: int = 0
    changed: dict[int, list[Box]] = field(default_factory=dict)
    """Frames whose pixels differ from the original's, with the differing regions."""
    picture: tuple[int, Any, Any] | None = None
    """(frame, output frame, original frame) for the report's picture."""


def frames_to_read(count: int, limit: int = MAX_FRAMES) -> list[int]:
    """The 0-based frames read of an image of ``count`` frames: all of them, or ``limit``
    evenly spaced ones with the first and the last.

    Examples
    --------
    >>> frames_to_read(5), frames_to_read(100, 4), frames_to_read(3, 0)
    ([0, 1, 2, 3, 4], [0, 33, 66, 99], [0, 1, 2])
    """
    if limit <= 0 or count <= limit:
        return list(range(count))
    if limit == 1:
        return [0]
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def has_pixels(ds: Dataset) -> bool:
    """Whether ``ds`` holds (integer) pixel data."""
    return 0x7FE00010 in ds


def frame_count(ds: Dataset) -> int:
    """NumberOfFrames (1 when absent or odd)."""
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def decoded_frames(path: Path, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
    """The frames ``indices`` of the image in ``path``, decoded one at a time from the file
    (stored values, YBR kept as YBR, palette indices as indices).

    Raises
    ------
    PixelError
        If no installed decoder reads them.
    """
    from pydicom.pixels.utils import iter_pixels

    from dcmanon.pixels.codec import DECODERS

    done = 0
    problem = ""
    for plugin in DECODERS:
        todo = list(indices[done:])
        if not todo:
            return
        try:
            for index, frame in zip(todo, iter_pixels(path, indices=todo, as_rgb=False,
                                                      decoding_plugin=plugin), strict=False):
                yield index, frame
                done += 1
        except (RuntimeError, NotImplementedError, ValueError, AttributeError) as exc:
            # pydicom's messages name plugins and syntaxes, never element values.
            problem = problem or str(exc).splitlines()[0][:200]
            continue
        return
    raise PixelError(f"{PIXEL_ELEMENT} cannot be decoded: {problem} (encapsulated images need "
                     "the decoders of dcmanon[pixels])")


def unread(exc: Exception) -> str:
    """Why an image could not be read, without any value: dcmanon's own messages (they name
    elements and syntaxes, never values), else the kind of error only."""
    from dcmanon.errors import DcmanonError

    return str(exc) if isinstance(exc, DcmanonError) else f"unexpected {type(exc).__name__}"


def read_image(path: Path, ds: Dataset, *, max_frames: int = MAX_FRAMES,
               original: Path | None = None) -> ImageRead:
    """Read the text in the pixels of one image, frame by frame (memory: a frame or two).

    Parameters
    ----------
    path : Path
        The image (an output).
    ds : Dataset
        Its header (pixel data may stay on disk): describes the values for rendering.
    max_frames : int
        Frames read at most (evenly sampled beyond); 0 reads every frame.
    original : Path, optional
        The original of the image: its frames are compared with the output's, so that the
        blanked regions are known.

    Returns
    -------
    ImageRead
        The lines read (allow-listed ones included: the caller decides), the frames.
    """
    import numpy as np

    from dcmanon.pixels import ocr

    result = ImageRead(frames=frame_count(ds))
    indices = frames_to_read(result.frames, max_frames)
    before = decoded_frames(original, indices) if original is not None else None
    cache: dict[bytes, list[ocr.TextLine]] = {}
    for index, frame in decoded_frames(path, indices):
        result.read += 1
        other = next(before, None) if before is not None else None
        source = other[1] if other is not None and other[0] == index else None
        regions = _differences(frame, source) if source is not None else []
        if regions:
            result.changed[index] = regions
        key = hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest()
        if key not in cache:
            cache[key] = ocr.read_text(_four_d(frame), ds)[0]
        lines = cache[key]
        for line in lines:
            if line.text and len(_ALNUM.findall(line.text)) >= MIN_CHARACTERS:
                result.lines.append(TextRead(index, line.box, line.text))
        if result.picture is None or (regions and not result.changed.get(result.picture[0])):
            # The first frame, unless a later one was cleaned and it was not.
            result.picture = (index, frame, source)
    result.distinct = len(cache)
    return result


def _four_d(frame: np.ndarray) -> np.ndarray:
    return frame[None, :, :, None] if frame.ndim == 2 else frame[None]


def _differences(after: np.ndarray, before: np.ndarray) -> list[Box]:
    """The regions where two frames of stored values differ (the blanked boxes), largest
    first; none when their shapes differ (they cannot be compared)."""
    import cv2
    import numpy as np

    if after.shape != before.shape:
        return []
    changed = after != before
    if changed.ndim == 3:
        changed = changed.any(axis=-1)
    if not changed.any():
        return []
    # Pixels of a box that were already black do not differ: close such gaps first.
    mask = cv2.dilate(changed.astype(np.uint8), np.ones((5, 5), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    rows, columns = changed.shape
    boxes = []
    for x, y, w, h, _ in stats[1:count]:
        boxes.append(Box(int(x) + 2, int(y) + 2, int(x + w) - 2, int(y + h) - 2)
                     .clipped(columns, rows))
    boxes.sort(key=lambda b: -b.area)
    return [b for b in boxes if b.area][:MAX_REGIONS]


def thumbnail(frame: np.ndarray, ds: Dataset, blanked: Iterable[Box], text: Iterable[Box],
              side: int = THUMBNAIL_SIDE, hide_text: bool = True) -> tuple[bytes, int, int]:
    """One frame as a small PNG with ``blanked`` outlined in cyan and ``text`` in magenta
    (with ``hide_text``, covered: the text read is PHI, masked as the reports mask values).

    Returns
    -------
    tuple of (bytes, int, int)
        The PNG and its width and height.
    """
    from PIL import Image, ImageDraw

    from dcmanon.pixels.render import to_rgb8

    rgb = to_rgb8(frame, ds)
    rows, columns = int(rgb.shape[0]), int(rgb.shape[1])
    scale = min(1.0, side / max(rows, columns, 1))
    width, height = max(1, round(columns * scale)), max(1, round(rows * scale))
    image = Image.fromarray(rgb, "RGB")
    if scale < 1.0:
        image = image.resize((width, height), Image.Resampling.BOX)
    draw = ImageDraw.Draw(image)
    for boxes, colour in ((blanked, BLANKED_COLOUR), (text, TEXT_COLOUR)):
        for box in boxes:
            left, top = math.floor(box.left * scale) - 1, math.floor(box.top * scale) - 1
            right, bottom = math.ceil(box.right * scale), math.ceil(box.bottom * scale)
            fill = HIDDEN_COLOUR if hide_text and colour == TEXT_COLOUR else None
            draw.rectangle((left, top, right, bottom), fill=fill, outline=colour, width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue(), width, height


def _xywh(box: Box) -> tuple[int, int, int, int]:
    return (box.left, box.top, box.width, box.height)


def add_thumbnail(report: Report, rel: str, ds: Dataset, read: ImageRead,
                  text: Sequence[TextRead], *, original_ds: Dataset | None = None,
                  show_values: bool = False) -> None:
    """Add the picture of an image that was cleaned or holds text (up to :data:`THUMBNAILS`).

    Unless ``show_values``, the text read is covered in the picture and the original is not
    pictured (the report will not show values); with it, the original's frame is pictured too.
    """
    if read.picture is None or not (read.changed or text):
        return
    if len(report.thumbnails) >= THUMBNAILS:
        report.thumbnails_left_out += 1
        return
    index, frame, source = read.picture
    blanked = read.changed.get(index, [])
    boxes = [t.box for t in text if t.frame == index] or \
        list(dict.fromkeys(t.box for t in text))
    png, width, height = thumbnail(frame, ds, blanked, boxes, hide_text=not show_values)
    before = None
    if show_values and source is not None:
        before = thumbnail(source, original_ds if original_ds is not None else ds, blanked,
                           boxes, hide_text=False)[0]
    report.thumbnails.append(Thumbnail(rel, index, png, width, height,
                                       tuple(_xywh(b) for b in blanked),
                                       tuple(_xywh(b) for b in boxes), before))


def distinct_lines(lines: Iterable[TextRead]) -> list[tuple[TextRead, list[TextRead]]]:
    """Each line once (as first read) with every reading of it: the same text at about the
    same place (boxes overlapping by half) on other frames."""
    groups: list[tuple[TextRead, list[TextRead]]] = []
    for line in lines:
        for first, found in groups:
            if first.text == line.text and _same_place(first.box, line.box):
                found.append(line)
                break
        else:
            groups.append((line, [line]))
    return groups


def _same_place(a: Box, b: Box) -> bool:
    width = min(a.right, b.right) - max(a.left, b.left)
    height = min(a.bottom, b.bottom) - max(a.top, b.top)
    common = max(0, width) * max(0, height)
    return common * 2 >= a.area + b.area - common


def text_finding(category: str, rel: str, line: TextRead, frames: int, kind: str,
                 message: str, element: str = PIXEL_ELEMENT) -> Finding:
    """A finding for one line read in the pixels (on ``frames`` frames), or in ``element``."""
    if frames > 1:
        message += f" (on {frames} frames)"
    return Finding(category, rel, element, kind, line.text, message, line.frame,
                   _xywh(line.box))


def read_overlays(ds: Dataset, max_frames: int = MAX_FRAMES) -> list[tuple[str, list[TextRead]]]:
    """The text in each overlay plane an output keeps (60xx,3000), frame by frame: the element
    and its lines (boxes in the plane's own pixels; allow-listed lines included)."""
    import numpy as np

    from dcmanon.pixels import ocr

    shown = Dataset()  # a plane is shown white on black
    shown.PhotometricInterpretation, shown.BitsStored = "MONOCHROME2", 8
    found = []
    for group in range(0x6000, 0x6020, 2):
        if (group << 16) | 0x3000 not in ds:
            continue
        planes = ds.overlay_array(group)
        planes = planes[None] if planes.ndim == 2 else planes
        lines: list[TextRead] = []
        for index in frames_to_read(int(planes.shape[0]), max_frames):
            image = (planes[index] > 0).astype(np.uint8) * 255
            lines.extend(TextRead(index, line.box, line.text)
                         for line in ocr.read_text(image[None, :, :, None], shown)[0]
                         if line.text and len(_ALNUM.findall(line.text)) >= MIN_CHARACTERS)
        found.append((f"({group:04X},3000) OverlayData", lines))
    return found


def note_frames(report: Report, counts: Sequence[int]) -> None:
    """Say in the report what OCR read: ``counts`` (see :func:`count_read`)."""
    images, frames, read, distinct, sampled = counts
    text = f"OCR read the pixels of {images} image(s): {read} of {frames} frame(s)"
    if sampled:
        text += f" ({sampled} long multi-frame image(s) sampled evenly)"
    report.notes.append(f"{text}; {distinct} distinct frame(s) read (identical frames once)")


def count_read(counts: list[int], read: ImageRead) -> None:
    """Add one image to ``counts``: images, frames, frames read, distinct, images sampled."""
    for index, value in enumerate((1, read.frames, read.read, read.distinct,
                                   int(read.read < read.frames))):
        counts[index] += value


def first_frame(path: Path) -> np.ndarray | None:
    """The first frame of the image in ``path``, decoded (None: none that decodes)."""
    try:
        for _, frame in decoded_frames(path, [0]):
            return frame
    except Exception:  # noqa: BLE001  (no pixel data, or none that decodes)
        return None
    return None
