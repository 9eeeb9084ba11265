"""Synthetic images for the pixel tests: every photometric interpretation, native and
encapsulated, with a known pattern so that blanked and kept pixels can be told apart."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    UltrasoundImageStorage,
    generate_uid,
)

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def pattern(rows: int, columns: int, frames: int, samples: int, low: int, high: int,
            seed: int = 7) -> np.ndarray:
    """A 4-D array of values between low and high (never the black of the tests' images)."""
    rng = np.random.default_rng(seed)
    return rng.integers(low, high, size=(frames, rows, columns, samples), endpoint=True)


def base(modality: str = "US", sop_class: str = UltrasoundImageStorage, rows: int = 64,
         columns: int = 80) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID-12345"
    ds.Modality = modality
    ds.Manufacturer = "Acme Imaging"
    ds.Rows, ds.Columns = rows, columns
    return ds


def native(ds: Dataset, values: np.ndarray, photometric: str, bits: int = 8,
           signed: bool = False, planar: int = 0) -> Dataset:
    """Fill ``ds`` with native pixel data from a (frames, rows, columns, samples) array."""
    frames, _, _, samples = values.shape
    ds.PhotometricInterpretation = photometric
    ds.SamplesPerPixel = samples
    allocated = 8 if bits <= 8 else 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = allocated, bits, bits - 1
    ds.PixelRepresentation = int(signed)
    if samples > 1:
        ds.PlanarConfiguration = planar
    if frames > 1:
        ds.NumberOfFrames = frames
    dtype = np.dtype(f"<{'i' if signed else 'u'}{allocated // 8}")
    array = values.astype(dtype)
    if samples > 1 and planar:
        array = array.transpose(0, 3, 1, 2)
    ds.PixelData = np.ascontiguousarray(array).tobytes()
    return ds


def palette(ds: Dataset, values: np.ndarray) -> Dataset:
    """An 8-bit PALETTE COLOR image whose darkest entry is 37 (not 0)."""
    native(ds, values, "PALETTE COLOR")
    entries = np.arange(256)
    red = ((entries * 7) % 256) * 257
    green = ((entries * 13) % 256) * 257
    blue = ((entries * 29) % 256) * 257
    red[37] = green[37] = blue[37] = 0
    red[0], green[0], blue[0] = 65535, 30000, 30000
    for colour, lut in (("Red", red), ("Green", green), ("Blue", blue)):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", lut.astype("<u2").tobytes())
    return ds


def jpeg_baseline(ds: Dataset, rgb: np.ndarray) -> Dataset:
    """A YBR_FULL_422 JPEG baseline image (encoded by Pillow, 4:2:2)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb[0].astype(np.uint8), "RGB").save(buffer, "JPEG", quality=95,
                                                          subsampling=1)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression = "01"
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    return ds


def save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path
