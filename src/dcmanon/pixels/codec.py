"""Pixel data in and out: stored values of native and encapsulated images, and writing back.

Native data is blanked in its own bytes (:func:`dcmanon.pixels.blank.blank_native`). Encapsulated
data is decoded with pydicom 3 (its pylibjpeg, openjpeg, libjpeg, pyjpegls and RLE plugins),
blanked, and encoded again *losslessly in the same transfer syntax* where pydicom can encode
it (RLE Lossless, JPEG-LS Lossless, JPEG 2000 Lossless); where it cannot (JPEG baseline,
extended, lossless process 14, lossy JPEG-LS and JPEG 2000...), the image is written as native
Explicit VR Little Endian, and LossyImageCompression stays ``01`` when the source was lossy.
Neither step may mint a new SOP Instance UID or turn YBR into RGB behind our back: both are
asked not to, and the photometric interpretation after decoding is what the stored values are.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from dcmanon.errors import MissingExtraError, PixelError

REENCODED = (RLELossless, JPEGLSLossless, JPEG2000Lossless)
"""Transfer syntaxes written again in the same syntax after blanking."""
LOSSY = {"1.2.840.10008.1.2.4.50": "ISO_10918_1", "1.2.840.10008.1.2.4.51": "ISO_10918_1",
         "1.2.840.10008.1.2.4.81": "ISO_14495_1", "1.2.840.10008.1.2.4.91": "ISO_15444_1",
         "1.2.840.10008.1.2.4.93": "ISO_15444_1", "1.2.840.10008.1.2.4.201": "ISO_15444_15",
         "1.2.840.10008.1.2.4.203": "ISO_15444_15", "1.2.840.10008.1.2.4.100": "ISO_13818_2",
         "1.2.840.10008.1.2.4.101": "ISO_13818_2"}
"""Lossy transfer syntaxes and their LossyImageCompressionMethod."""
DECODERS = ("", "pylibjpeg", "pyjpegls", "pillow", "gdcm")
"""pydicom's decoding plugins, in the order they are tried: first pydicom's own choice (the
colours a pydicom-based viewer shows), then each alone (one plugin's failure can stop pydicom's
loop: GDCM's "output array is read-only")."""
_SUBSAMPLED = ("YBR_FULL_422", "YBR_PARTIAL_422", "YBR_PARTIAL_420")


@dataclass(frozen=True)
class Decoded:
    """An encapsulated image turned native in the dataset: what it was and how to go back."""

    syntax: UID
    photometric: str


def require_numpy() -> None:
    """Raise a clear error when the ``pixels`` extra is missing."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            "cleaning pixel data needs numpy and the image codecs: install dcmanon[pixels]"
        ) from None


def stored_frames(ds: Any) -> Any:
    """The stored values of a *native* image as a 4-D array (frames, rows, columns, samples),
    without any photometric conversion (YBR stays YBR, palette indices stay indices)."""
    from dcmanon.pixels.blank import image_geometry

    return values_of(ds.PixelData, ds, image_geometry(ds)[0])


def values_of(data: bytes | memoryview, ds: Any, frames: int) -> Any:
    """``frames`` frames of native pixel data ``data`` (the image's, or some of its frames'
    only) as a 4-D array of stored values; ``ds`` describes one frame (its NumberOfFrames is
    not read).

    Raises
    ------
    PixelError
        If ``data`` holds fewer values than ``frames`` frames, or BitsAllocated is unusual.
    """
    import numpy as np

    from dcmanon.pixels.blank import image_geometry, little_endian

    _, rows, columns, samples = image_geometry(ds)
    allocated = int(ds.BitsAllocated)
    signed = int(ds.get("PixelRepresentation") or 0) == 1
    if allocated == 1:
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
        return bits[:frames * rows * columns].reshape(frames, rows, columns, 1)
    if allocated not in (8, 16, 32):
        raise PixelError(f"(0028,0100) BitsAllocated {allocated} cannot be read as frames")
    order = "<" if little_endian(ds) else ">"
    dtype = np.dtype(f"{order}{'i' if signed else 'u'}{allocated // 8}")
    values = np.frombuffer(data, dtype=dtype, count=len(data) // dtype.itemsize)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    subsampled = photometric in ("YBR_FULL_422", "YBR_PARTIAL_422")
    count = frames * rows * columns * (2 if subsampled else samples)
    if values.size < count:
        raise PixelError(f"(7FE0,0010) PixelData holds fewer values ({values.size}) than the "
                         f"header describes ({count})")
    if subsampled:
        pairs = values[:count].reshape(frames, rows, columns // 2, 4)
        full = np.empty((frames, rows, columns, 3), dtype=dtype)
        full[:, :, 0::2, 0] = pairs[..., 0]
        full[:, :, 1::2, 0] = pairs[..., 1]
        full[..., 1] = np.repeat(pairs[..., 2], 2, axis=2)
        full[..., 2] = np.repeat(pairs[..., 3], 2, axis=2)
        return full
    if samples > 1 and int(ds.get("PlanarConfiguration") or 0) == 1:
        return values[:count].reshape(frames, samples, rows, columns).transpose(0, 2, 3, 1)
    return values[:count].reshape(frames, rows, columns, samples)


def syntax_of(ds: Any) -> UID:
    """The transfer syntax of ``ds``'s pixel data (a file without file meta: as it was read)."""
    meta = getattr(ds, "file_meta", None)
    found = meta.get("TransferSyntaxUID") if meta is not None else None
    if found:
        return UID(str(found))
    from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

    implicit, little = getattr(ds, "original_encoding", (False, True))
    if little is False:
        return ExplicitVRBigEndian
    return ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


_DECODING_CHANGES = ("PixelData", "PhotometricInterpretation", "PlanarConfiguration",
                     "SamplesPerPixel", "BitsAllocated", "BitsStored", "HighBit",
                     "PixelRepresentation", "NumberOfFrames", "SOPInstanceUID")


def snapshot(ds: Any) -> tuple[Any, dict[str, Any]]:
    """What decoding may change in ``ds`` (to put back when nothing was blanked)."""
    # Copies: pydicom changes an element's value in place when an attribute is set again.
    return (ds.file_meta.get("TransferSyntaxUID"),
            {k: copy.copy(ds[k]) for k in _DECODING_CHANGES if k in ds})


def restore(ds: Any, saved: tuple[Any, dict[str, Any]]) -> None:
    """Undo :func:`decode_in_place`: the elements and syntax of :func:`snapshot`."""
    syntax, elements = saved
    for keyword in _DECODING_CHANGES:
        if keyword in ds and keyword not in elements:
            delattr(ds, keyword)
    for element in elements.values():
        ds[element.tag] = element
    if syntax is not None:
        ds.file_meta.TransferSyntaxUID = syntax


def decode_in_place(ds: Any) -> Decoded:
    """Turn an encapsulated image into native pixel data in ``ds`` (stored values kept).

    Raises
    ------
    PixelError
        If no installed decoder reads it.
    """
    from pydicom.pixels.utils import decompress

    syntax = syntax_of(ds)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    problem = ""
    for plugin in DECODERS:
        try:
            decompress(ds, as_rgb=False, generate_instance_uid=False, decoding_plugin=plugin)
        except (RuntimeError, NotImplementedError, ValueError) as exc:
            # pydicom's messages name plugins and syntaxes, never element values.
            problem = problem or str(exc).splitlines()[0][:200]
            continue
        break
    else:
        raise PixelError(f"(7FE0,0010) PixelData in {syntax.name} cannot be decoded: "
                         f"{problem}")
    if str(ds.get("PhotometricInterpretation", "")).upper() in _SUBSAMPLED:
        from dcmanon.pixels.blank import image_geometry

        frames, rows, columns, samples = image_geometry(ds)
        allocated = int(ds.BitsAllocated) // 8
        if len(ds.PixelData) >= frames * rows * columns * samples * allocated:
            # The decoder gave every pixel its own chroma: that is YBR_FULL (same colours).
            ds.PhotometricInterpretation = "YBR_FULL"
    return Decoded(syntax, photometric)


def encode_back(ds: Any, decoded: Decoded) -> str:
    """Encode a blanked image again: in its own syntax where that is lossless and pydicom
    encodes it, else leave it native Explicit VR Little Endian (recorded). Returns the name
    of the transfer syntax written."""
    syntax = decoded.syntax
    if syntax in REENCODED:
        try:
            ds.compress(syntax, generate_instance_uid=False)
        except (RuntimeError, NotImplementedError, ValueError):
            pass  # e.g. a layout the encoder refuses: written native below
        else:
            return syntax.name
    return mark_native(ds, syntax)


def mark_native(ds: Any, syntax: UID) -> str:
    """Record in ``ds`` that its pixel data, decoded from ``syntax``, is written native:
    Explicit VR Little Endian, LossyImageCompression ``01`` (and its method when absent) for a
    lossy source. Returns the name of the transfer syntax written."""
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    method = LOSSY.get(str(syntax))
    if method is not None or str(ds.get("LossyImageCompression", "")) == "01":
        ds.LossyImageCompression = "01"
        if method is not None and "LossyImageCompressionMethod" not in ds:
            ds.LossyImageCompressionMethod = method
    return ExplicitVRLittleEndian.name


FRAME_BY_FRAME = {"MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR"}
"""Photometric interpretations a frame decodes to as it was encoded (JPEG 2000's YBR_RCT and
YBR_ICT come back as RGB): those are encoded again frame by frame."""


def by_frame(ds: Any) -> bool:
    """Whether ``ds``'s encapsulated frames can be decoded and encoded again one at a time:
    RLE / JPEG-LS / JPEG 2000 Lossless, a photometric interpretation that decoding keeps
    (:data:`FRAME_BY_FRAME`), and the encoder installed."""
    from pydicom.pixels.encoders.base import get_encoder

    syntax = syntax_of(ds)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if syntax not in REENCODED or photometric not in FRAME_BY_FRAME:
        return False
    return bool(get_encoder(syntax).is_available)


def decoded_frames(ds: Any) -> Iterator[Any]:
    """The stored values of each frame of an encapsulated image, decoded one at a time
    (``(rows, columns, samples)``; for :func:`by_frame` images, whose photometric
    interpretation decoding keeps).

    Raises
    ------
    ValueError, RuntimeError, NotImplementedError
        From pydicom's decoders, when a frame cannot be decoded this way.
    """
    from pydicom.pixels.utils import pixel_array

    from dcmanon.pixels.blank import image_geometry

    count, rows, columns, samples = image_geometry(ds)
    for index in range(count):
        yield pixel_array(ds, index=index, as_rgb=False).reshape(rows, columns, samples)


def reencode_frames(ds: Any, boxes: list[Any], values: list[int]) -> set[int] | None:
    """Blank ``boxes`` in an RLE / JPEG-LS / JPEG 2000 Lossless image one frame at a time:
    frames without a box keep their original fragments, and only one frame is decoded at a
    time. Returns the frames changed, or None when this image takes the whole-image path
    (another syntax, a photometric interpretation that decoding changes, an encoder that is
    missing or refuses the layout); ``ds`` is then unchanged.
    """
    from pydicom.encaps import encapsulate, generate_frames
    from pydicom.pixels.encoders.base import get_encoder
    from pydicom.pixels.utils import pixel_array

    from dcmanon.pixels.blank import blank_native, image_geometry

    if not by_frame(ds):
        return None
    syntax = syntax_of(ds)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    encoder = get_encoder(syntax)
    count, rows, columns, samples = image_geometry(ds)
    originals = list(generate_frames(ds.PixelData, number_of_frames=count))
    if len(originals) != count:
        return None
    options: dict[str, Any] = {
        "rows": rows, "columns": columns, "samples_per_pixel": samples,
        "bits_allocated": int(ds.BitsAllocated), "bits_stored": int(ds.BitsStored),
        "pixel_representation": int(ds.get("PixelRepresentation") or 0),
        "photometric_interpretation": photometric, "number_of_frames": 1,
        "planar_configuration": 0}
    frame_header = _frame_header(ds)
    fragments: list[bytes] = []
    touched: set[int] = set()
    for index, fragment in enumerate(originals):
        mine = [b for b in boxes if b.area and b.applies_to(index)]
        if not mine:
            fragments.append(fragment)
            continue
        import numpy as np

        try:
            array = pixel_array(ds, index=index, as_rgb=False)
            data = bytearray(array.astype(array.dtype.newbyteorder("<")).tobytes())
            blank_native(data, frame_header, mine, range(index, index + 1), values)
            blanked = np.frombuffer(bytes(data), dtype=array.dtype.newbyteorder("<")).reshape(
                array.shape)
            fragments.append(encoder.encode(blanked, **options))
        except (ValueError, RuntimeError, NotImplementedError):
            return None  # a layout the plugins refuse frame by frame: the whole-image path
        touched.add(index)
    ds.PixelData = encapsulate(fragments)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return touched


def _frame_header(ds: Any) -> Any:
    """The Image Pixel attributes of one decoded frame (interleaved samples, Little Endian)."""
    from pydicom.dataset import Dataset

    header = Dataset()
    for keyword in ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored",
                    "PixelRepresentation", "PhotometricInterpretation"):
        if keyword in ds:
            setattr(header, keyword, ds.get(keyword))
    header.PlanarConfiguration = 0
    return header
