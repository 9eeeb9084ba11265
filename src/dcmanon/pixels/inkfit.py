"""Fit the OCR detector's boxes to the ink of the text inside them.

The detector (DBNet) outlines each line of text loosely: its boxes are the text's core grown by
an "unclip" ratio, and the local-contrast view gives larger ones still. Blanking them whole
removes much of the image around short lines. Inside each box, the ink is what differs from the
background (the median of the box's rim) by more than the rim's noise; the box to blank is the
ink's extent plus a margin. Where that is unsure (no ink found, ink reaching the detector's
edge, ink ending well short of it along the line: a fainter part may have been missed), the
detector's own edge and margin are kept.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from dcmanon.pixels.boxes import Box

if TYPE_CHECKING:
    import numpy as np

INK_MARGIN = 3
"""Pixels added around the ink, plus :data:`INK_MARGIN_RATIO` of its height: the faint,
anti-aliased rim of the glyphs is below the threshold, and it grows with the print."""
INK_MARGIN_RATIO = 0.15
MIN_CONTRAST = 6
"""Grey levels (of 255) a pixel must differ from its background by to be ink, at the least."""
NOISE_FACTOR = 5.0
"""Ink differs from its background by more than this many times the noise in the box (its
robust deviation): speckle and texture are not ink."""
MIN_INK = 4
"""Fewer ink pixels than this in a box: no ink is found, the detector's box is kept."""


def ink_extent(image: np.ndarray, box: Box) -> Box | None:
    """The extent of the ink inside ``box``, or ``None`` when no ink is found.

    Parameters
    ----------
    image : numpy.ndarray
        The frame as shown, 8-bit RGB, shape ``(rows, columns, 3)``.
    box : Box
        A line of text as the detector outlined it, in the frame's pixels.

    Returns
    -------
    Box or None
        Within ``box``; ``None`` if fewer than :data:`MIN_INK` pixels stand out.
    """
    import cv2
    import numpy as np

    rows, columns = int(image.shape[0]), int(image.shape[1])
    box = box.clipped(columns, rows)
    if box.width < 3 or box.height < 3:
        return None
    crop = image[box.top:box.bottom, box.left:box.right].astype(np.int16)
    # The detector's box holds the line and a rim of what lies behind it: the rim's median is
    # the background, its spread the noise (a band behind the text is background as well).
    ring = np.concatenate([crop[0], crop[-1], crop[1:-1, 0], crop[1:-1, -1]])
    background = np.median(ring, axis=0)
    noise = 1.4826 * float(np.median(np.abs(ring - background).max(axis=-1)))
    contrast = np.abs(crop - background).max(axis=-1)
    ink = (contrast > max(MIN_CONTRAST, NOISE_FACTOR * noise)).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    # Lone pixels are noise; glyphs (even a full stop) are more than one pixel.
    kept = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] > 1]
    if sum(int(stats[i, cv2.CC_STAT_AREA]) for i in kept) < MIN_INK:
        return None
    x0 = min(int(stats[i, cv2.CC_STAT_LEFT]) for i in kept)
    y0 = min(int(stats[i, cv2.CC_STAT_TOP]) for i in kept)
    x1 = max(int(stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH]) for i in kept)
    y1 = max(int(stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT]) for i in kept)
    if x0 == 0 or y0 == 0 or x1 == box.width or y1 == box.height:
        # What reaches the rim is no line inside the box (the edge of a band, anatomy, or a
        # line going on beyond the box): the text may be fainter than it, keep the whole box.
        return None
    return Box(box.left + x0, box.top + y0, box.left + x1, box.top + y1)


def fitted(detected: Box, ink: Box | None, margin: int) -> Box:
    """The box to blank for a line: its ink grown by :data:`INK_MARGIN` (and
    :data:`INK_MARGIN_RATIO` of its height); the detector's box grown by ``margin`` when no ink
    was found. Not clipped.

    The detector pads a line about as much along it as across it: ink ending well short of the
    box's left or right edge may be a line whose fainter part was missed, so that side keeps
    the detector's edge.
    """
    if ink is None:
        return detected.grown(margin)
    rim = INK_MARGIN + math.ceil(INK_MARGIN_RATIO * ink.height)
    pad = max(ink.top - detected.top, detected.bottom - ink.bottom)
    slack = 2 * pad + INK_MARGIN
    left = ink.left - rim if ink.left - detected.left <= slack else detected.left - margin
    right = ink.right + rim if detected.right - ink.right <= slack else detected.right + margin
    return Box(left, ink.top - rim, right, ink.bottom + rim, detected.frames)
