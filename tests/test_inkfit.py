"""Fitting the OCR detector's boxes to the ink inside them (dcmanon.pixels.inkfit)."""

from __future__ import annotations

import numpy as np
import pytest

from dcmanon.pixels.boxes import Box
from dcmanon.pixels.inkfit import INK_MARGIN, fitted, ink_extent

pytest.importorskip("cv2")


def _image(noise: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(1)
    grey = np.full((100, 200), 60.0) + rng.normal(0, noise, (100, 200))
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def test_the_ink_of_a_line_is_found_within_a_loose_box() -> None:
    image = _image(noise=5.0)
    image[40:52, 50:58] = 255  # two "glyphs"
    image[42:50, 62:90] = (255, 255, 50)
    detected = Box(40, 30, 100, 62)
    ink = ink_extent(image, detected)
    assert ink == Box(50, 40, 90, 52)
    assert fitted(detected, ink, 9) == ink.grown(INK_MARGIN + 2)  # and 0.15 of its height


def test_faint_ink_on_a_flat_band_is_found() -> None:
    image = _image()
    image[40:50, 60:120] = 72  # twelve grey levels brighter
    assert ink_extent(image, Box(50, 34, 130, 56)) == Box(60, 40, 120, 50)


def test_without_ink_the_detectors_box_is_kept_with_its_margin() -> None:
    image = _image(noise=5.0)
    detected = Box(40, 30, 100, 62)
    assert ink_extent(image, detected) is None
    assert fitted(detected, None, 9) == detected.grown(9)


def test_ink_reaching_the_detectors_edge_keeps_the_whole_box() -> None:
    image = _image()
    image[40:50, 30:80] = 255  # the line goes on left of the box
    assert ink_extent(image, Box(40, 30, 100, 62)) is None


def test_ink_ending_short_of_the_box_along_the_line_keeps_that_edge() -> None:
    detected = Box(40, 30, 200, 62)
    ink = Box(50, 40, 90, 52)  # a fainter rest of the line may lie to the right
    rim = INK_MARGIN + 2  # and 0.15 of the ink's height
    assert fitted(detected, ink, 9) == Box(50 - rim, 40 - rim, 200 + 9, 52 + rim)
