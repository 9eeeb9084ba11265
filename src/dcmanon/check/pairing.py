"""Pairing an output with its original by their pixels, when their paths differ (``--layout
uid``, or names renamed because they held identifiers), for ``check --ocr``.

Each original image is known by its geometry (frames, rows, columns) and a grid of
:data:`GRID` × :data:`GRID` stored values of its first frame. An output of the same geometry is
the same image when most of the grid's values that are not its background (the most common
value) are equal: blanking changes a few boxes, and two different images (slices of one series)
share their background but not their anatomy. When several originals fit about as well (one
picture with and without its text), only one whose whole first frame is identical pairs; else
none does (the output is then read against every original's identifiers, and nothing blanked
is known). The grids are made once, on the first output that needs them (one frame decoded per
original).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

if TYPE_CHECKING:
    import numpy as np

GRID = 24
"""Points per side of the grid compared."""
SAME = 0.75
"""Share of the grid's points (background excepted) that must be equal."""
MARGIN = 0.15
"""How much better the best original must match than the next one; originals closer than that
are compared frame against frame (up to :data:`CLOSE` of them): only an identical one pairs."""
CLOSE = 4


def geometry(ds: Dataset) -> tuple[int, int, int] | None:
    """(frames, rows, columns) of an image (None when the header does not say)."""
    try:
        return (max(1, int(ds.get("NumberOfFrames") or 1)), int(ds.Rows), int(ds.Columns))
    except (AttributeError, TypeError, ValueError):
        return None


def grid(frame: np.ndarray, points: int = GRID) -> np.ndarray:
    """The stored values at a grid of ``points`` × ``points`` over a frame, one row per point
    (in the frame's own type: 576 bytes for an 8-bit grey image)."""
    import numpy as np

    rows, columns = int(frame.shape[0]), int(frame.shape[1])
    at_rows = np.linspace(0, rows - 1, points).round().astype(int)
    at_columns = np.linspace(0, columns - 1, points).round().astype(int)
    values: np.ndarray = np.ascontiguousarray(frame[np.ix_(at_rows, at_columns)])
    return values.reshape(points * points, -1)


def likeness(output: np.ndarray, original: np.ndarray) -> float:
    """The share of the output's grid points, its background excepted, equal in the original.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[0], [0], [5], [6], [7], [8]])
    >>> likeness(a, a), likeness(a, np.array([[0], [0], [5], [6], [1], [2]]))
    (1.0, 0.5)
    """
    import numpy as np

    if output.shape != original.shape:
        return 0.0
    values, counts = np.unique(output, axis=0, return_counts=True)
    background = values[int(np.argmax(counts))]
    informative = ~(output == background).all(axis=-1)
    if informative.sum() < 0.1 * len(output):
        informative = np.ones(len(output), dtype=bool)  # a flat image: every point counts
    same = (output == original).all(axis=-1)
    return float(same[informative].mean())


@dataclass
class PixelIndex:
    """The originals' grids by geometry, made on first use.

    Parameters
    ----------
    originals : mapping
        Each original's path by its relative path.
    first_frame : callable
        Decodes the first frame of the image in a file (None: no pixels to read).
    """

    originals: Mapping[str, Path]
    first_frame: Callable[[Path], np.ndarray | None]
    _index: dict[tuple[int, int, int], list[tuple[str, np.ndarray]]] | None = field(
        default=None, repr=False)

    def find(self, path: Path, ds: Dataset) -> str | None:
        """The relative path of the original an output's pixels come from (None: none is
        clearly the one)."""
        shape = geometry(ds)
        if shape is None:
            return None
        candidates = self._built().get(shape, [])
        if not candidates:
            return None
        values = self._grid(path)
        if values is None:
            return None
        scores = sorted(((likeness(values, g), rel) for rel, g in candidates), reverse=True)
        best = scores[0][0]
        close = [rel for score, rel in scores[:CLOSE] if score >= SAME and score > best - MARGIN]
        if len(close) <= 1:
            return close[0] if close else None
        # Alike on the grid (the same picture, with and without its text?): the one whose
        # whole frame is identical, if there is one.
        frame = self.first_frame(path)
        identical = [rel for rel in close if frame is not None and _same(
            frame, self.first_frame(self.originals[rel]))]
        return identical[0] if len(identical) == 1 else None

    def _grid(self, path: Path) -> np.ndarray | None:
        frame = self.first_frame(path)
        return grid(frame) if frame is not None else None

    def _built(self) -> dict[tuple[int, int, int], list[tuple[str, np.ndarray]]]:
        if self._index is None:
            from dcmanon.io.files import read_dicom

            self._index = {}
            for rel, path in self.originals.items():
                try:
                    shape = geometry(read_dicom(path))
                except Exception:  # noqa: BLE001  (an unreadable original is reported apart)
                    continue
                values = self._grid(path) if shape is not None else None
                if shape is not None and values is not None:
                    self._index.setdefault(shape, []).append((rel, values))
        return self._index


def _same(frame: np.ndarray, other: np.ndarray | None) -> bool:
    import numpy as np

    return other is not None and bool(np.array_equal(frame, other))
