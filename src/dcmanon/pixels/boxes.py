"""Rectangles in an image's pixel grid, the unit every pixel stage speaks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Box:
    """A rectangle of pixels: columns ``left`` to ``right`` and rows ``top`` to ``bottom``.

    The right and bottom edges are exclusive, as in a NumPy slice ``image[top:bottom, left:right]``.
    ``frames`` is ``None`` for every frame, or the 0-based frame indices the box applies to.
    """

    left: int
    top: int
    right: int
    bottom: int
    frames: frozenset[int] | None = None

    @property
    def width(self) -> int:
        """Columns covered (0 when empty)."""
        return max(0, self.right - self.left)

    @property
    def height(self) -> int:
        """Rows covered (0 when empty)."""
        return max(0, self.bottom - self.top)

    @property
    def area(self) -> int:
        """Pixels covered."""
        return self.width * self.height

    def grown(self, margin: int) -> Box:
        """The box with ``margin`` pixels added on every side (not clipped)."""
        return Box(self.left - margin, self.top - margin, self.right + margin,
                   self.bottom + margin, self.frames)

    def clipped(self, columns: int, rows: int) -> Box:
        """The box limited to an image of ``columns`` x ``rows`` pixels."""
        return Box(max(0, self.left), max(0, self.top), min(columns, self.right),
                   min(rows, self.bottom), self.frames)

    def applies_to(self, frame: int) -> bool:
        """Whether the box covers frame ``frame`` (0-based)."""
        return self.frames is None or frame in self.frames
