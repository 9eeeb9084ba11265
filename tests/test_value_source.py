"""Generated values (:class:`dcmanon.io.rawwrite.ValueSource`): written piece by piece in place
of an element's value, the output is the bytes ``save_as`` writes with that value set."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from dcmanon.dicom.constants import PIXEL_DATA
from dcmanon.errors import OutputError
from dcmanon.io.files import read_dicom, write_dicom_atomic
from dcmanon.io.rawwrite import ValueSource, write_streamed

FRAME = 300 * 400  # bytes of a frame: 8-bit MONOCHROME2, 300 x 400
FRAMES = 6


def _frame(index: int) -> bytes:
    return bytes((index * 7 + i) % 251 for i in range(256)) * (FRAME // 256) + bytes(
        FRAME % 256)


def _dataset(syntax: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Doe^Jane"
    ds.Rows, ds.Columns, ds.NumberOfFrames = 300, 400, FRAMES
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(FRAME * FRAMES)  # on disk: zeros (the generated value differs)
    ds["PixelData"].VR = "OB"
    ds.add_new(0x00111010, "LO", "after")  # keep the element order honest: none after 7FE0
    return ds


def _pieces() -> Iterator[bytes]:
    for index in range(FRAMES):
        yield _frame(index)


def _expected(path: Path, charset: str | None) -> bytes:
    """``save_as`` of the file read in full, with the generated value set."""
    ds = read_dicom(str(path), defer=False)
    if charset:
        ds.SpecificCharacterSet = charset
    ds.PixelData = b"".join(_pieces())
    ds["PixelData"].VR = "OB"
    handle = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(handle, enforce_file_format=True)
    return handle.getvalue()


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("charset", [None, "ISO_IR 100"])
def test_a_generated_value_is_written_as_save_as_writes_it(tmp_path: Path, syntax: str,
                                                          charset: str | None) -> None:
    """Element by element, or (a new character set) by pydicom around the generated one."""
    source = tmp_path / "in.dcm"
    _dataset(syntax).save_as(source, enforce_file_format=True)
    ds = read_dicom(str(source), defer=True)  # PixelData stays on disk
    if charset:
        ds.SpecificCharacterSet = charset
    ds.PixelData = b""  # its place; the value comes from the source
    ds["PixelData"].VR = "OB"
    out = tmp_path / "out.dcm"
    write_dicom_atomic(ds, out, sources={PIXEL_DATA: ValueSource(FRAME * FRAMES, _pieces)})
    assert out.read_bytes() == _expected(source, charset)


@pytest.mark.parametrize("length", [FRAME * FRAMES - 2, FRAME * FRAMES + 2, FRAME + 1])
def test_a_source_that_does_not_give_its_length_fails(tmp_path: Path, length: int) -> None:
    source = tmp_path / "in.dcm"
    _dataset(ExplicitVRLittleEndian).save_as(source, enforce_file_format=True)
    ds = read_dicom(str(source), defer=True)
    ds.PixelData = b""
    ds["PixelData"].VR = "OB"
    with pytest.raises(OutputError):
        write_streamed(ds, io.BytesIO(), enforce=True,
                       sources={PIXEL_DATA: ValueSource(length, _pieces)})
    out = tmp_path / "out.dcm"
    with pytest.raises(OutputError):
        write_dicom_atomic(ds, out, sources={PIXEL_DATA: ValueSource(length, _pieces)})
    assert not out.exists()
