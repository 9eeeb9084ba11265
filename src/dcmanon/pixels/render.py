"""Stored pixel values turned into an 8-bit picture, as OCR (or a person) would look at it.

The input is one frame of *stored* values, as the pixel stages hold them: shape
``(rows, columns, samples)``, no photometric conversion applied (YBR stays YBR, palette colour
stays indices), planar configuration already undone (samples last). The dataset says what the
values are: its ``PhotometricInterpretation`` is read for every frame, so a caller whose decoder
turned YBR into RGB must say ``RGB`` there (pydicom 3's ``decompress(as_rgb=False)`` does).

Monochrome data is shown over the frame's *full* range of values, not through the header's
window: text burned in at a value outside the window would be invisible in it and still be
there for anyone who changes the window. Values that already fit 0-255 are shown as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from pydicom.dataset import Dataset

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
YBR = ("YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_422", "YBR_PARTIAL_420")
"""Luminance and chroma; by the time values reach us every pixel carries its own chroma
(``*_422``/``*_420`` are named after how they were stored, not how they are held)."""


def photometric(ds: Dataset) -> str:
    """The dataset's photometric interpretation, upper-case (``MONOCHROME2`` when absent)."""
    return str(ds.get("PhotometricInterpretation") or "MONOCHROME2").strip().upper()


def to_rgb8(frame: np.ndarray, ds: Dataset) -> np.ndarray:
    """One frame of stored values as an 8-bit RGB image ``(rows, columns, 3)``.

    Monochrome frames give three equal channels. Colour frames stay in colour: one grey
    channel can lose the contrast of coloured text (blue on black is almost black in luminance).

    Parameters
    ----------
    frame : numpy.ndarray
        Stored values, shape ``(rows, columns)`` or ``(rows, columns, samples)``.
    ds : pydicom.dataset.Dataset
        Describes the values: PhotometricInterpretation, BitsStored, PixelRepresentation,
        palette lookup tables.

    Returns
    -------
    numpy.ndarray
        ``uint8``, shape ``(rows, columns, 3)``.

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.PhotometricInterpretation = "MONOCHROME1"
    >>> ds.BitsStored = 12
    >>> to_rgb8(np.array([[0, 4095]], dtype=np.uint16), ds)[0, :, 0].tolist()
    [255, 0]
    """
    import numpy as np

    kind = photometric(ds)
    values = frame if frame.ndim == 3 else frame[..., None]
    if kind in MONOCHROME or values.shape[-1] == 1:
        gray = _gray8(values[..., 0], ds, inverted=kind == "MONOCHROME1")
        return np.repeat(gray[..., None], 3, axis=-1)
    if kind == "PALETTE COLOR":
        return _palette8(values[..., 0], ds)
    rgb = _scaled8(values[..., :3], _bits_stored(ds, values))
    if kind in YBR:
        from pydicom.pixels.processing import convert_color_space

        # Partial-range YBR converted as full range keeps every contrast, which is all OCR needs.
        rgb = convert_color_space(rgb, "YBR_FULL", "RGB")
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def to_gray8(frame: np.ndarray, ds: Dataset) -> np.ndarray:
    """One frame of stored values as an 8-bit grey image ``(rows, columns)`` (luminance for
    colour images, see :func:`to_rgb8` for what that loses)."""
    import numpy as np

    rgb = to_rgb8(frame, ds).astype(np.float32)
    gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)


def _bits_stored(ds: Dataset, values: np.ndarray) -> int:
    bits = ds.get("BitsStored")
    return int(bits) if bits else int(values.dtype.itemsize * 8)


def _signed_values(values: np.ndarray, ds: Dataset) -> np.ndarray:
    """The values as numbers: high bits beyond BitsStored dropped (overlays live there), two's
    complement applied to signed data held in an unsigned array."""
    import numpy as np

    bits = _bits_stored(ds, values)
    signed = int(ds.get("PixelRepresentation") or 0) == 1
    if values.dtype.kind not in "ui" or bits >= values.dtype.itemsize * 8:
        return values
    raw = values.astype(np.int64) & ((1 << bits) - 1)
    if signed:
        raw = np.where(raw >= 1 << (bits - 1), raw - (1 << bits), raw)
    return raw


def _gray8(values: np.ndarray, ds: Dataset, inverted: bool) -> np.ndarray:
    import numpy as np

    numbers = _signed_values(values, ds)
    if numbers.size == 0:
        return np.zeros(numbers.shape, dtype=np.uint8)
    low, high = numbers.min(), numbers.max()
    if low >= 0 and high <= 255:
        gray = numbers.astype(np.uint8)  # 8-bit data (or data within 8 bits) shown as stored
    elif high == low:
        gray = np.zeros(numbers.shape, dtype=np.uint8)
    else:
        scale = 255.0 / (float(high) - float(low))
        gray = np.rint((numbers.astype(np.float32) - float(low)) * scale).astype(np.uint8)
    return 255 - gray if inverted else gray


def _scaled8(values: np.ndarray, bits: int) -> np.ndarray:
    import numpy as np

    if values.dtype == np.uint8 or bits <= 8:
        return values.astype(np.uint8)
    top = float((1 << bits) - 1)
    scaled: np.ndarray = np.rint(np.clip(values, 0, top).astype(np.float32) * (255.0 / top))
    return scaled.astype(np.uint8)


def _palette8(indices: np.ndarray, ds: Dataset) -> np.ndarray:
    """Palette indices through the dataset's lookup tables (pydicom reads their descriptors,
    segmented tables included), then to 8 bits by the tables' own depth."""
    import numpy as np
    from pydicom.pixels.processing import apply_color_lut

    rgb = apply_color_lut(indices, ds)
    descriptor = ds.get("RedPaletteColorLookupTableDescriptor")
    bits = int(descriptor[2]) if descriptor is not None and len(descriptor) > 2 else 8
    if rgb.dtype.itemsize > 1 and bits <= 8 and int(rgb.max(initial=0)) <= 255:
        return rgb.astype(np.uint8)
    return _scaled8(rgb, 16 if rgb.dtype.itemsize > 1 else 8)
