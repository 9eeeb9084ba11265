"""Encapsulated images written native a frame at a time, never decoded whole.

JPEG baseline, extended and lossless (process 14), lossy JPEG-LS and JPEG 2000 are not encoded
again once blanked: the image is written native, Explicit VR Little Endian
(:func:`dcmanon.pixels.codec.encode_back`). Decoded whole, an ultrasound cine of 200 frames of
480x640 takes 176 MiB. Here the frames are read from the input's fragments (on disk, or in
memory for a small value) and decoded one at a time, by pydicom's decoder as ``decompress``
runs it: once for a :class:`Survey` (and OCR, when due), once more while the writer writes the
native pixel data (:func:`native_value`, a :class:`dcmanon.io.rawwrite.ValueSource`), each frame
blanked on the way. The header changes are those of the whole-image path
(:func:`native_header`), so the output is its output, byte for byte.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from dcmanon.dicom.constants import PIXEL_DATA
from dcmanon.errors import PixelError
from dcmanon.io.rawwrite import ValueSource
from dcmanon.io.streaming import deferred_element
from dcmanon.pixels.blank import blank_native, image_geometry
from dcmanon.pixels.boxes import Box

STREAM_FROM = 8 << 20
"""Decoded size (bytes) from which an encapsulated image written native is decoded a frame
at a time; a smaller one is decoded whole (it holds a few frames at most)."""
DECODE_ERRORS = (ValueError, RuntimeError, NotImplementedError)
"""What pydicom's decoders raise on data they cannot decode."""
_SUBSAMPLED = ("YBR_FULL_422", "YBR_PARTIAL_422", "YBR_PARTIAL_420")
_ITEM = b"\xfe\xff\x00\xe0"
_OFFSET_TABLES = (0x7FE00001, 0x7FE00002)


def streamable(ds: Dataset) -> bool:
    """Whether ``ds``'s pixel data can be written native a frame at a time: encapsulated in a
    syntax that is written native once blanked (not RLE, JPEG-LS or JPEG 2000 Lossless), read
    as Explicit VR Little Endian (as written), 8 or 16 bits allocated, :data:`STREAM_FROM`
    bytes or more once decoded, a decoder installed."""
    from pydicom.pixels.decoders.base import get_decoder

    from dcmanon.pixels import codec

    syntax = codec.syntax_of(ds)
    if not syntax.is_compressed or syntax in codec.REENCODED:
        return False
    if tuple(getattr(ds, "original_encoding", (False, True))) != (False, True):
        return False  # read as implicit VR despite its syntax: pydicom writes it all again
    allocated = int(ds.get("BitsAllocated") or 0)
    if allocated not in (8, 16) or _encapsulated(ds) is None:
        return False
    try:
        frames, rows, columns, samples = image_geometry(ds)
        available = get_decoder(syntax).is_available
    except (PixelError, NotImplementedError):
        return False
    return bool(available) and frames * rows * columns * samples * allocated // 8 >= STREAM_FROM


def _encapsulated(ds: Dataset) -> tuple[str, int] | bytes | None:
    """Where the encapsulated pixel data is: (input file, offset of its value) when it is
    still on disk, its bytes when in memory, None when it is not encapsulated data."""
    raw = deferred_element(ds, PIXEL_DATA)
    if raw is not None:
        return (str(ds.filename), raw.value_tell) if raw.length == 0xFFFFFFFF else None
    element = ds.get_item(PIXEL_DATA, keep_deferred=True)
    value = getattr(element, "value", None)
    return bytes(value) if isinstance(value, bytes | bytearray) and value[:4] == _ITEM else None


class EncodedFrames:
    """The frames of an encapsulated image, decoded one at a time from its input file (or from
    the bytes in memory) as pydicom's ``decompress`` decodes them (no colour conversion).

    Parameters
    ----------
    ds : Dataset
        The image; its Image Pixel attributes and offset tables are copied (``ds`` may change
        afterwards), its pixel data is read again at each pass.
    """

    def __init__(self, ds: Dataset) -> None:
        from dcmanon.pixels import codec

        where = _encapsulated(ds)
        if where is None:
            raise PixelError("(7FE0,0010) PixelData is not encapsulated")
        self._where = where
        self.syntax: UID = codec.syntax_of(ds)
        header = Dataset()
        for tag in list(ds.keys()):
            if tag >> 16 == 0x0028 or int(tag) in _OFFSET_TABLES:
                header[tag] = copy.copy(ds[tag])  # (setting a value changes it in place)
        header.file_meta = FileMetaDataset()
        header.file_meta.TransferSyntaxUID = self.syntax
        self._header = header

    def decoded(self) -> Generator[tuple[Any, dict[str, Any]], None, None]:
        """Each frame's decoded array and pydicom's description of it, in order.

        Raises
        ------
        ValueError, RuntimeError, NotImplementedError
            From pydicom's decoders.
        OSError
            If the input file cannot be read.
        """
        from pydicom.pixels.decoders.base import get_decoder

        if isinstance(self._where, bytes):
            handle: io.BufferedIOBase = io.BytesIO(self._where)
        else:
            handle = open(self._where[0], "rb")  # noqa: SIM115 (closed below)
            handle.seek(self._where[1])
        with handle:
            header = Dataset(self._header)
            header.file_meta = self._header.file_meta
            header[PIXEL_DATA] = DataElement(PIXEL_DATA, "OB", handle, is_undefined_length=True)
            yield from get_decoder(self.syntax).iter_array(header, as_rgb=False,
                                                           decoding_plugin="")


class Survey:
    """One pass over the decoded frames of an image (OCR reads them on the way): how they
    decode, checked to be the same for every frame.

    The first frame is decoded on creation; :attr:`header` then describes the decoded frames
    (for OCR and blanking), and :meth:`frames` yields them all.

    Raises
    ------
    ValueError, RuntimeError, NotImplementedError
        From the decoders, or (ValueError) when frames decode differently.
    """

    def __init__(self, source: EncodedFrames, ds: Dataset) -> None:
        self.source = source
        self.count = 0
        _, self.rows, self.columns, self.samples = image_geometry(ds)
        self.allocated = int(ds.BitsAllocated) // 8
        first = source.decoded()
        try:
            array, props = next(first)
        except StopIteration:
            raise ValueError("no frame") from None
        finally:
            first.close()
        self.length = int(array.nbytes)
        self.photometric = str(props["photometric_interpretation"])
        self.planar = int(props.get("planar_configuration") or 0)
        self.multi_sample = int(props["samples_per_pixel"]) > 1
        header = Dataset()
        for tag in list(ds.keys()):
            if tag >> 16 == 0x0028:
                header[tag] = copy.copy(ds[tag])  # (setting a value changes it in place)
        header.file_meta = FileMetaDataset()
        header.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        _describe(header, self.photometric, self.planar if self.multi_sample else None,
                  self._full_chroma(1))
        self.header = header

    def _full_chroma(self, frames: int) -> bool:
        """Whether ``frames`` decoded frames (padded to an even length) hold a value per
        sample of every pixel: a subsampled YBR then becomes YBR_FULL (as decoding whole)."""
        total = frames * self.length
        return total + total % 2 >= frames * self.rows * self.columns * self.samples * \
            self.allocated

    def matches(self, array: Any, props: dict[str, Any]) -> bool:
        """Whether a frame decoded as the first one did."""
        return (int(array.nbytes) == self.length
                and str(props["photometric_interpretation"]) == self.photometric
                and int(props.get("planar_configuration") or 0) == self.planar)

    def frames(self) -> Iterator[Any]:
        """Every frame's stored values, ``(rows, columns, samples)``, one at a time (counted).

        Raises
        ------
        ValueError
            If a frame decodes differently from the first.
        """
        self.count = 0
        for array, props in self.source.decoded():
            if not self.matches(array, props):
                raise ValueError("frames decode differently")
            self.count += 1
            yield array.reshape(self.rows, self.columns, -1)

    def consistent(self) -> bool:
        """After :meth:`frames`: whether the header written for all the frames is the one
        the first frame gave (the YBR_FULL judgement depends on the total length)."""
        return self.count > 0 and self._full_chroma(self.count) == self._full_chroma(1)


def _describe(header: Dataset, photometric: str, planar: int | None, full: bool) -> None:
    """Set the photometric interpretation and planar configuration of decoded frames, as
    ``decompress`` and :func:`dcmanon.pixels.codec.decode_in_place` set them."""
    header.PhotometricInterpretation = photometric
    if planar is not None:
        header.PlanarConfiguration = planar
    if str(header.get("PhotometricInterpretation", "")).upper() in _SUBSAMPLED and full:
        header.PhotometricInterpretation = "YBR_FULL"


def native_header(ds: Dataset, survey: Survey) -> None:
    """Change ``ds``'s header as decoding it whole does (photometric interpretation, planar
    configuration, number of frames, transfer syntax, PixelData's VR), PixelData's value left
    empty: :func:`native_value` gives it while the writer writes it. (The rest of what writing
    native records is :func:`dcmanon.pixels.codec.mark_native`.)"""
    _describe(ds, survey.photometric, survey.planar if survey.multi_sample else None,
              survey._full_chroma(survey.count))
    if "NumberOfFrames" in ds or survey.count > 1:
        ds.NumberOfFrames = survey.count
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds[PIXEL_DATA] = DataElement(PIXEL_DATA, "OB" if survey.allocated == 1 else "OW", b"")


def native_value(survey: Survey, boxes: Sequence[Box], values: Sequence[int]) -> ValueSource:
    """The native pixel data of the surveyed image, ``boxes`` blanked with ``values``
    (:func:`dcmanon.pixels.blank.black` of :attr:`Survey.header`), generated a frame at a time
    while the writer writes it.

    Raises
    ------
    PixelError
        While it is written: if a frame no longer decodes as it did in the survey.
    """
    frames, length = survey.count, survey.length
    total = frames * length

    def chunks() -> Iterator[bytes | bytearray]:
        index = -1
        try:
            for index, (array, props) in enumerate(survey.source.decoded()):
                if index >= frames or not survey.matches(array, props):
                    raise PixelError("(7FE0,0010) PixelData decodes differently than it did "
                                     "before (the input changed?)")
                data = bytearray(array.tobytes())
                mine = [b for b in boxes if b.area and b.applies_to(index)]
                if mine:
                    blank_native(data, survey.header, mine, range(index, index + 1), values)
                yield data
        except DECODE_ERRORS as exc:
            raise PixelError(f"(7FE0,0010) PixelData: a frame cannot be decoded again "
                             f"({type(exc).__name__})") from None
        if index + 1 != frames:
            raise PixelError("(7FE0,0010) PixelData holds fewer frames than it did before "
                             "(the input changed?)")
        if total % 2:
            yield b"\0"

    return ValueSource(total + total % 2, chunks)
