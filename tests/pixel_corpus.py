"""Images with text burned into their pixels, for the OCR and pixel-cleaning tests.

Every kind of image the pixel stages must handle, each built from one picture: a synthetic
"anatomy" (an ellipse with texture and noise) with the patient's name, ID, dates and accession
number drawn with a real TrueType font (Pillow's own, DejaVu-derived, at pixel sizes) in corners
and in bands, plus harmless labels (``R``, ``L``, ``10 cm``) and other text that is no identifier
(``HR 72``). Each image comes with the words planted, the box each word covers, and the same
image without any text.

Kinds: MONOCHROME1 and MONOCHROME2 at 8 and 16 bits, signed CT, RGB (both planar
configurations), YBR_FULL (native), YBR_FULL_422 in JPEG baseline, JPEG 2000 lossless, RLE
lossless, palette colour, a large radiograph, and a multi-frame cine (some frames identical,
one with a line of text only it carries).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import decompress, pixel_array
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

from dcmanon.pixels.boxes import Box

PATIENT_NAME = "MUSTERMANN^ERIKA"
PATIENT_ID = "PAT4711-0815"
BIRTH_DATE = "19700101"
STUDY_DATE = "20240131"
ACCESSION = "A24-556731"
IDENTIFIERS = (PATIENT_NAME, PATIENT_ID, BIRTH_DATE, STUDY_DATE, ACCESSION)
"""The values the datasets hold, as a caller of identifiers-only OCR passes them."""


@dataclass(frozen=True)
class Planted:
    """A line of text drawn into an image: what it says, the box its ink covers (right and
    bottom exclusive), the frames it is on (None: all), and whether it is an identifier, other
    text, or a harmless label the allow-list keeps."""

    text: str
    box: Box
    role: str  # "identifier", "other" or "harmless"
    frames: frozenset[int] | None = None


@dataclass
class CorpusImage:
    """One image of the corpus: its DICOM dataset (as written, maybe compressed), its stored
    values as the pixel stages hold them (``frames``, 4-D) with the dataset describing them
    (``stored_ds``: after decoding, photometric as decoded), and what was planted."""

    kind: str
    ds: Dataset
    frames: np.ndarray
    stored_ds: Dataset
    planted: list[Planted] = field(default_factory=list)

    def words(self, role: str) -> list[Planted]:
        """The planted lines of one role."""
        return [p for p in self.planted if p.role == role]


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in TrueType font (Pillow >= 10.1) at ``size`` pixels."""
    return ImageFont.load_default(size=size)


# -- drawing ---------------------------------------------------------------------------------

Layout = list[tuple[str, str, tuple[int, int], int]]
"""(text, role, (x, y) where the text starts, font size); negative x/y count from the right /
bottom edge."""


def _layout(rows: int, columns: int, scale: float = 1.0) -> Layout:
    """Identifiers in the four corners and in a band; harmless labels; other text."""
    s = lambda n: max(1, round(n * scale))  # noqa: E731
    return [
        ("MUSTERMANN, ERIKA", "identifier", (s(8), s(8)), s(16)),
        (f"ID: {PATIENT_ID}", "identifier", (s(8), s(30)), s(15)),
        ("DOB 01.01.1970", "identifier", (-s(150), s(8)), s(14)),
        ("2024-01-31 10:42", "identifier", (-s(160), -s(26)), s(15)),
        (f"ACC {ACCESSION}", "identifier", (s(8), -s(26)), s(14)),
        ("R", "harmless", (s(40), rows // 2), s(18)),
        ("10 cm", "harmless", (-s(60), rows // 2), s(14)),
        ("HR 72 GAIN 45", "other", (columns // 2 - s(55), s(72)), s(14)),
        ("E. MUSTERMANN 1970", "identifier", (columns // 2 - s(75), rows // 2 + s(60)), s(15)),
    ]


def _band_layout(rows: int) -> Layout:
    """A band across the image holding a name and date (drawn on a dark strip)."""
    return [("Erika Mustermann  Jan 31 2024", "identifier", (120, rows - 96), 16)]


def _anatomy(rows: int, columns: int, seed: int, frame: int = 0) -> np.ndarray:
    """A text-free grey picture (float 0..1): a textured ellipse on a dark field."""
    rng = np.random.default_rng(seed * 1000 + frame)
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    cy, cx = rows * (0.52 + 0.02 * np.sin(frame)), columns * 0.5
    inside = ((y - cy) / (rows * 0.32)) ** 2 + ((x - cx) / (columns * 0.36)) ** 2 <= 1
    unit = max(rows, columns) / 512  # the texture scales with the image, as anatomy would
    texture = 0.35 + 0.12 * np.sin(x / (23.0 * unit) + frame) * np.cos(y / (31.0 * unit))
    picture = np.where(inside, texture, 0.03).astype(np.float32)
    picture += rng.normal(0, 0.02, picture.shape).astype(np.float32)
    return np.clip(picture, 0, 1)


def _draw(picture: np.ndarray, layout: Layout, ink: float = 1.0,
          bands: bool = False) -> tuple[np.ndarray, list[Planted]]:
    """Draw ``layout`` onto a grey picture (0..1); returns it and the planted lines."""
    rows, columns = picture.shape
    canvas = Image.fromarray(np.rint(picture * 255).astype(np.uint8), mode="L")
    draw = ImageDraw.Draw(canvas)
    placed = []
    for text, role, (x, y), size in layout:
        face = font(size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
        x = x if x >= 0 else columns + x
        y = y if y >= 0 else rows + y
        placed.append((text, role, x, y, face, Box(x + left, y + top, x + right, y + bottom)))
    if bands:  # dark strips across the image behind every line, drawn before any text
        for *_, box in placed:
            draw.rectangle((0, box.top - 6, columns, box.bottom + 6), fill=10)
    planted = []
    for text, role, x, y, face, box in placed:
        draw.text((x, y), text, fill=round(ink * 255), font=face)
        planted.append(Planted(text, box, role))
    return np.asarray(canvas, dtype=np.float32) / 255.0, planted


# -- datasets --------------------------------------------------------------------------------

def _dataset(rows: int, columns: int, sop_class: str, modality: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = BIRTH_DATE
    ds.StudyDate = STUDY_DATE
    ds.AccessionNumber = ACCESSION
    ds.BurnedInAnnotation = "YES"
    ds.Rows, ds.Columns = rows, columns
    return ds


def _set_pixels(ds: Dataset, stored: np.ndarray, photometric: str, bits: int,
                signed: bool = False, planar: int | None = None) -> None:
    """Native pixel data from stored values ``(frames, rows, columns, samples)``."""
    frames, _, _, samples = stored.shape
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if stored.dtype.itemsize == 1 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = int(signed)
    if samples > 1:
        ds.PlanarConfiguration = planar or 0
    if frames > 1:
        ds.NumberOfFrames = frames
    data = stored.transpose(0, 3, 1, 2) if samples > 1 and planar == 1 else stored
    ds.PixelData = np.ascontiguousarray(data).astype(stored.dtype.newbyteorder("<")).tobytes()


def stored_frames(ds: Dataset) -> tuple[np.ndarray, Dataset]:
    """Decode a dataset as the pixel stages do: stored values, no colour conversion (YBR stays
    YBR, palette indices stay indices), 4-D; with a copy of the dataset describing them."""
    # Deep copies: decompress changes the elements' values in place (a shallow copy shares
    # them: the corpus's JPEG, JPEG 2000 and RLE images were left native by it).
    copy = deepcopy(ds)
    if copy.file_meta.TransferSyntaxUID.is_compressed:
        decompress(copy, as_rgb=False, generate_instance_uid=False)
        native = int(copy.Rows) * int(copy.Columns) * int(copy.SamplesPerPixel) * (
            int(copy.BitsAllocated) // 8) * int(copy.get("NumberOfFrames") or 1)
        if copy.PhotometricInterpretation == "YBR_FULL_422" and len(copy.PixelData) >= native:
            # The decoder gave every pixel its own chroma: YBR_FULL, the same colours.
            copy.PhotometricInterpretation = "YBR_FULL"
    array = pixel_array(copy, as_rgb=False)
    frames = int(copy.get("NumberOfFrames") or 1)
    samples = int(copy.SamplesPerPixel)
    return array.reshape(frames, int(copy.Rows), int(copy.Columns), samples), copy


def _finish(kind: str, ds: Dataset, planted: list[Planted]) -> CorpusImage:
    frames, stored_ds = stored_frames(ds)
    return CorpusImage(kind, ds, frames, stored_ds, planted)


def _grey_rgb(picture: np.ndarray, colours: bool = True) -> np.ndarray:
    """A grey picture in RGB, ink of pure white made yellow, green and cyan by region."""
    rgb = np.repeat(picture[..., None], 3, axis=-1)
    if colours:
        ink = picture > 0.97
        rows = picture.shape[0]
        top, bottom = np.zeros_like(ink), np.zeros_like(ink)
        top[: rows // 3] = True
        bottom[2 * rows // 3:] = True
        rgb[ink & top] = (1.0, 1.0, 0.2)  # yellow
        rgb[ink & bottom] = (0.3, 1.0, 0.3)  # green
    return rgb


def make(kind: str, text: bool = True, rows: int = 512, columns: int = 512) -> CorpusImage:
    """One image of the corpus (see :data:`KINDS`); ``text=False`` gives it without text."""
    return KINDS[kind](text, rows, columns)


def _faint(picture: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, Planted]:
    """A light grey band across the image with text only 12 grey levels brighter (as some
    ultrasound scanners write the institution in their title bar)."""
    rows, columns = picture.shape
    size, y = max(1, round(14 * scale)), round(rows * 0.78)
    face = font(size)
    canvas = Image.fromarray(np.rint(picture * 255).astype(np.uint8), mode="L")
    draw = ImageDraw.Draw(canvas)
    text, x = "*WESTEND CLINIC* 31-JAN-24", round(columns * 0.3)
    left, top, right, bottom = draw.textbbox((x, y), text, font=face)
    draw.rectangle((0, top - 4, columns, bottom + 4), fill=178)
    draw.text((x, y), text, fill=190, font=face)
    line = Planted(text, Box(left, top, right, bottom), "identifier")
    return np.asarray(canvas, dtype=np.float32) / 255.0, line


def _picture(rows: int, columns: int, text: bool, seed: int, bands: bool = False,
             scale: float = 1.0) -> tuple[np.ndarray, list[Planted]]:
    picture = _anatomy(rows, columns, seed)
    if not text:
        return picture, []
    layout = _layout(rows, columns, scale) + (_band_layout(rows) if bands else [])
    picture, planted = _draw(picture, layout, bands=bands)
    picture, faint = _faint(picture, scale)
    return picture, [*planted, faint]


def _mono(photometric: str, bits: int) -> Callable[[bool, int, int], CorpusImage]:
    def build(text: bool, rows: int, columns: int) -> CorpusImage:
        picture, planted = _picture(rows, columns, text, seed=bits, bands=bits == 16)
        top = (1 << bits) - 1
        values = picture if photometric == "MONOCHROME2" else 1.0 - picture
        dtype = np.uint8 if bits <= 8 else np.uint16
        stored = np.rint(values * top).astype(dtype)[None, ..., None]
        ds = _dataset(rows, columns, SecondaryCaptureImageStorage, "OT")
        _set_pixels(ds, stored, photometric, bits)
        return _finish(f"{photometric.lower()}_{bits}", ds, planted)
    return build


def _ct(text: bool, rows: int, columns: int) -> CorpusImage:
    picture, planted = _picture(rows, columns, text, seed=3)
    # Air -1000 HU, tissue about 0..80 HU, text at the top of the 12-bit signed range.
    hu = np.where(picture > 0.97, 2047, -1000 + picture * 2600)
    stored = np.rint(hu).astype(np.int16)[None, ..., None]
    ds = _dataset(rows, columns, "1.2.840.10008.5.1.4.1.1.2", "CT")
    _set_pixels(ds, stored, "MONOCHROME2", 12, signed=True)
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    return _finish("ct_signed", ds, planted)


def _rgb(planar: int) -> Callable[[bool, int, int], CorpusImage]:
    def build(text: bool, rows: int, columns: int) -> CorpusImage:
        picture, planted = _picture(rows, columns, text, seed=4 + planar, bands=planar == 1)
        stored = np.rint(_grey_rgb(picture) * 255).astype(np.uint8)[None]
        ds = _dataset(rows, columns, UltrasoundImageStorage, "US")
        _set_pixels(ds, stored, "RGB", 8, planar=planar)
        return _finish(f"rgb_planar{planar}", ds, planted)
    return build


def _ybr_full(text: bool, rows: int, columns: int) -> CorpusImage:
    from pydicom.pixels import convert_color_space

    picture, planted = _picture(rows, columns, text, seed=6)
    rgb = np.rint(_grey_rgb(picture) * 255).astype(np.uint8)
    stored = convert_color_space(rgb, "RGB", "YBR_FULL")[None]
    ds = _dataset(rows, columns, UltrasoundImageStorage, "US")
    _set_pixels(ds, stored, "YBR_FULL", 8, planar=1)
    return _finish("ybr_full", ds, planted)


def _jpeg_baseline(text: bool, rows: int, columns: int) -> CorpusImage:
    picture, planted = _picture(rows, columns, text, seed=7)
    rgb = np.rint(_grey_rgb(picture) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    # Pillow writes YCbCr JPEG; subsampling=1 is 4:2:2, as YBR_FULL_422 says.
    Image.fromarray(rgb, mode="RGB").save(buffer, format="JPEG", quality=92, subsampling=1)
    ds = _dataset(rows, columns, UltrasoundImageStorage, "US")
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression = "01"
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    return _finish("ybr_full_422_jpeg", ds, planted)


def _jpeg2000(text: bool, rows: int, columns: int) -> CorpusImage:
    picture, planted = _picture(rows, columns, text, seed=8, bands=True)
    grey = np.rint(picture * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(grey, mode="L").save(buffer, format="JPEG2000", irreversible=False,
                                         no_jp2=True)
    ds = _dataset(rows, columns, SecondaryCaptureImageStorage, "OT")
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    return _finish("jpeg2000", ds, planted)


def _rle(text: bool, rows: int, columns: int) -> CorpusImage:
    picture, planted = _picture(rows, columns, text, seed=9)
    stored = np.rint(picture * 4095).astype(np.uint16)[None, ..., None]
    ds = _dataset(rows, columns, SecondaryCaptureImageStorage, "OT")
    _set_pixels(ds, stored, "MONOCHROME2", 12)
    ds.compress(RLELossless, generate_instance_uid=False)
    return _finish("rle", ds, planted)


def _palette(text: bool, rows: int, columns: int) -> CorpusImage:
    picture, planted = _picture(rows, columns, text, seed=10)
    indices = np.rint(picture * 255).astype(np.uint8)[None, ..., None]
    ds = _dataset(rows, columns, UltrasoundImageStorage, "US")
    _set_pixels(ds, indices, "PALETTE COLOR", 8)
    ramp = np.arange(256, dtype=np.uint16) * 257  # 16-bit entries, a warm "hot iron" palette
    red, green, blue = ramp, np.clip(ramp.astype(np.int64) * 3 // 2 - 16000, 0, 65535), ramp // 2
    blue[-1] = green[-1] = 65535  # the ink (index 255) is white
    for colour, table in (("Red", red), ("Green", green), ("Blue", blue)):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData",
                np.asarray(table, dtype="<u2").tobytes())
    return _finish("palette", ds, planted)


def _radiograph(text: bool, rows: int, columns: int) -> CorpusImage:
    rows, columns = 2400, 2000
    picture, planted = _picture(rows, columns, text, seed=11, scale=3.0)
    stored = np.rint((1.0 - picture) * 16383).astype(np.uint16)[None, ..., None]
    ds = _dataset(rows, columns, "1.2.840.10008.5.1.4.1.1.1", "CR")
    _set_pixels(ds, stored, "MONOCHROME1", 14)
    return _finish("radiograph_large", ds, planted)


CINE_FRAMES = 6
CINE_TIME_FRAME = 2
"""The one frame of the cine that also carries a time stamp."""


def _cine(text: bool, rows: int, columns: int) -> CorpusImage:
    stack, planted = [], []
    for frame in range(CINE_FRAMES):
        # Frames 4 and 5 repeat frame 3 (a frozen loop): read once.
        picture = _anatomy(rows, columns, seed=12, frame=min(frame, 3))
        if text:
            layout = _layout(rows, columns)
            if frame == CINE_TIME_FRAME:
                layout = [*layout, ("31/01/2024", "identifier", (columns // 2 - 40, rows - 60),
                                    15)]
            picture, lines = _draw(picture, layout)
            picture, faint = _faint(picture)
            lines.append(faint)
            for line in lines:
                if line not in planted and line.text != "31/01/2024":
                    planted.append(line)
                elif line.text == "31/01/2024":
                    planted.append(Planted(line.text, line.box, line.role,
                                           frozenset({CINE_TIME_FRAME})))
        stack.append(np.rint(_grey_rgb(picture) * 255).astype(np.uint8))
    ds = _dataset(rows, columns, UltrasoundMultiFrameImageStorage, "US")
    _set_pixels(ds, np.stack(stack), "RGB", 8)
    ds.FrameTime = 33.3
    return _finish("cine", ds, planted)


KINDS: dict[str, Callable[[bool, int, int], CorpusImage]] = {
    "monochrome2_8": _mono("MONOCHROME2", 8),
    "monochrome2_16": _mono("MONOCHROME2", 16),
    "monochrome1_8": _mono("MONOCHROME1", 8),
    "monochrome1_16": _mono("MONOCHROME1", 16),
    "ct_signed": _ct,
    "rgb_planar0": _rgb(0),
    "rgb_planar1": _rgb(1),
    "ybr_full": _ybr_full,
    "ybr_full_422_jpeg": _jpeg_baseline,
    "jpeg2000": _jpeg2000,
    "rle": _rle,
    "palette": _palette,
    "radiograph_large": _radiograph,
    "cine": _cine,
}
"""Every kind of image in the corpus, by name."""
