"""Blanking boxes in native (uncompressed) pixel data, in stored values.

The boxes are written with the image's black, in every sample: 0 for unsigned MONOCHROME2 and
RGB, the smallest stored value for signed data, the largest for MONOCHROME1, Y=0 and Cb=Cr=mid
for YBR, the darkest palette entry for PALETTE COLOR. Only the boxes' bytes change: the values
are written into the encoded bytes (both planar configurations, YBR_FULL_422's shared chroma),
so bits outside BitsStored elsewhere (overlays in high bits) are untouched; inside a box the
whole word is written, which blanks such an overlay there too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dcmanon.errors import PixelError
from dcmanon.pixels.boxes import Box

__all__ = ["PixelError", "black", "blank_native", "blank_overlay", "image_geometry"]


GEOMETRY = (("NumberOfFrames", "(0028,0008)"), ("Rows", "(0028,0010)"),
            ("Columns", "(0028,0011)"), ("SamplesPerPixel", "(0028,0002)"),
            ("BitsAllocated", "(0028,0100)"))


def image_geometry(ds: Any) -> tuple[int, int, int, int]:
    """(frames, rows, columns, samples per pixel) of the image.

    Raises
    ------
    PixelError
        If one of them is not a positive number (the element is named, not its value).
    """
    found = []
    for keyword, tag in GEOMETRY[:4]:
        value = ds.get(keyword)
        try:
            number = 1 if value in (None, "") and keyword in ("NumberOfFrames",
                                                              "SamplesPerPixel") else int(value)
        except (TypeError, ValueError):
            number = 0
        if number < 1:
            raise PixelError(f"{tag} {keyword} is not a positive number: the pixel data "
                             "cannot be cleaned")
        found.append(number)
    return found[0], found[1], found[2], found[3]


def little_endian(ds: Any) -> bool:
    """Whether the PixelData bytes held by ``ds`` are Little Endian (as they were read)."""
    try:
        return bool(ds.original_encoding[1] if ds.original_encoding[1] is not None else True)
    except AttributeError:
        return True


def black(ds: Any) -> list[int]:
    """The stored value of black, one per sample.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds = Dataset()
    >>> ds.PhotometricInterpretation, ds.BitsStored, ds.PixelRepresentation = "MONOCHROME1", 12, 0
    >>> black(ds)
    [4095]
    """
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 8)
    signed = int(ds.get("PixelRepresentation") or 0) == 1
    if photometric == "MONOCHROME1":
        return [(1 << (bits - 1)) - 1 if signed else (1 << bits) - 1]
    if photometric.startswith("MONOCHROME"):
        return [-(1 << (bits - 1)) if signed else 0]
    if photometric.startswith("YBR"):
        return [0, 1 << (bits - 1), 1 << (bits - 1)]
    if photometric == "PALETTE COLOR":
        return [_darkest_entry(ds)]
    return [0] * int(ds.get("SamplesPerPixel") or 3)


def _darkest_entry(ds: Any) -> int:
    """The stored value whose palette colour is darkest (lowest luminance)."""
    import numpy as np
    from pydicom.pixels.processing import apply_color_lut

    bits = int(ds.get("BitsStored") or 8)
    descriptor = ds.get("RedPaletteColorLookupTableDescriptor")
    first = int(descriptor[1]) if descriptor is not None else 0
    entries = int(descriptor[0] or 65536) if descriptor is not None else 1 << bits
    values = np.arange(first, first + entries, dtype=np.uint16 if bits > 8 else np.uint8)
    try:
        rgb = apply_color_lut(values, ds).astype(np.float64)
    except (AttributeError, ValueError, KeyError) as exc:  # pydicom's words: no values
        raise PixelError(f"(0028,1101) RedPaletteColorLookupTableDescriptor: the palette "
                         f"cannot be read to find its darkest entry ({exc})") from None
    luminance = rgb @ np.array([0.299, 0.587, 0.114])
    return int(values[int(np.argmin(luminance))])


def blank_native(data: bytearray | memoryview, ds: Any, boxes: Sequence[Box],
                 frame_range: range | None = None,
                 values: Sequence[int] | None = None) -> set[int]:
    """Write black into ``boxes`` of native pixel data ``data``, in place.

    Parameters
    ----------
    data : bytearray or memoryview
        The PixelData bytes (Little Endian), or those of ``frame_range``'s frames only.
    ds : Dataset
        The image's header (geometry, photometric interpretation, bits).
    boxes : sequence of Box
        Already clipped to the image.
    frame_range : range, optional
        The frames ``data`` holds (default: all of them).
    values : sequence of int, optional
        :func:`black` of ``ds``, when already known (it is computed once per image).

    Returns
    -------
    set of int
        The frames that were changed.

    Raises
    ------
    PixelError
        If the data's size does not match its header, or the layout is not supported.
    """
    import numpy as np

    frames, rows, columns, samples = image_geometry(ds)
    allocated = int(ds.get("BitsAllocated") or 0)
    frame_range = frame_range or range(frames)
    if allocated == 1:
        return _blank_bits(data, ds, boxes, frame_range)
    if allocated not in (8, 16, 32):
        raise PixelError(f"(0028,0100) BitsAllocated {allocated} cannot be blanked "
                         "(only 1, 8, 16 and 32)")
    signed = int(ds.get("PixelRepresentation") or 0) == 1
    order = "<" if little_endian(ds) else ">"
    dtype = np.dtype(f"{order}{'i' if signed else 'u'}{allocated // 8}")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    subsampled = photometric in ("YBR_FULL_422", "YBR_PARTIAL_422")
    per_frame = rows * columns * samples if not subsampled else rows * columns * 2
    needed = per_frame * len(frame_range) * dtype.itemsize
    if len(data) < needed:
        raise PixelError(f"(7FE0,0010) PixelData holds {len(data)} bytes, the header "
                         f"describes {needed}")
    array = np.frombuffer(memoryview(data)[:needed], dtype=dtype)
    if not array.flags.writeable:
        raise PixelError("(7FE0,0010) PixelData is read-only")
    values = list(values) if values is not None else black(ds)
    touched: set[int] = set()
    if subsampled:
        pairs = array.reshape(len(frame_range), rows, columns // 2, 4)
        for index, frame in enumerate(frame_range):
            for box in boxes:
                if box.area and box.applies_to(frame):
                    cells = pairs[index, box.top:box.bottom, box.left // 2:(box.right + 1) // 2]
                    cells[..., 0:2] = values[0]
                    cells[..., 2:4] = values[1]
                    touched.add(frame)
        return touched
    planar = samples > 1 and int(ds.get("PlanarConfiguration") or 0) == 1
    shape = (len(frame_range), samples, rows, columns) if planar else (
        len(frame_range), rows, columns, samples)
    image = array.reshape(shape)
    for index, frame in enumerate(frame_range):
        for box in boxes:
            if not box.area or not box.applies_to(frame):
                continue
            for sample in range(samples):
                value = values[sample] if sample < len(values) else values[0]
                if planar:
                    image[index, sample, box.top:box.bottom, box.left:box.right] = value
                else:
                    image[index, box.top:box.bottom, box.left:box.right, sample] = value
            touched.add(frame)
    return touched


def blank_overlay(data: bytearray, rows: int, columns: int, frames: int,
                  boxes: Sequence[Box]) -> bool:
    """Clear ``boxes`` in an overlay plane's OverlayData (1 bit per pixel, packed from the
    least significant bit), in place; whether any bit was in a box."""
    import numpy as np

    count = rows * columns * frames
    bits = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8), bitorder="little")
    if bits.size < count:
        return False
    image = bits[:count].reshape(frames, rows, columns)
    changed = False
    for frame in range(frames):
        for box in boxes:
            if box.area and box.applies_to(frame):
                image[frame, box.top:box.bottom, box.left:box.right] = 0
                changed = True
    packed = np.packbits(bits, bitorder="little").tobytes()
    data[:len(packed)] = packed
    return changed


def _blank_bits(data: bytearray | memoryview, ds: Any, boxes: Sequence[Box],
                frame_range: range) -> set[int]:
    """1-bit data (packed, least significant bit first, frames end to end): black is 0."""
    import numpy as np

    _, rows, columns, samples = image_geometry(ds)
    count = rows * columns * samples * len(frame_range)
    bits = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8), bitorder="little")
    if bits.size < count:
        raise PixelError(f"(7FE0,0010) PixelData holds {bits.size} bits, the header "
                         f"describes {count}")
    image = bits[:count].reshape(len(frame_range), rows, columns)
    value = 1 if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1" else 0
    touched: set[int] = set()
    for index, frame in enumerate(frame_range):
        for box in boxes:
            if box.area and box.applies_to(frame):
                image[index, box.top:box.bottom, box.left:box.right] = value
                touched.add(frame)
    packed = np.packbits(bits, bitorder="little").tobytes()
    data[:len(packed)] = packed
    return touched
