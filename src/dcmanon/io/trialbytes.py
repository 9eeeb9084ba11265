"""The fast path's share of a trial run: which files take pydicom's path, and the trial's
attributes encoded as pydicom's path writes them (:meth:`dcmanon.header.trial.TrialSteps.stamp`).
"""

from __future__ import annotations

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.tag import BaseTag

from dcmanon.dicom.constants import SPECIFIC_CHARACTER_SET
from dcmanon.header.trial import TrialSteps
from dcmanon.io.rawdataset import NotPlain, RawElement, RawFile, dataset_of, value_of
from dcmanon.io.splice import OnDisk, Piece, first_bytes

PATIENT_ID, PATIENT_AGE = 0x00100020, 0x00101010
PATIENT_BIRTH_DATE, STUDY_DATE = 0x00100030, 0x00080020
Body = list[tuple[int, list[Piece | OnDisk]]]


def check_age(trial: TrialSteps, raw: RawFile, top: list[RawElement]) -> None:
    """A file whose PatientAge is computed takes pydicom's path (the element is added).

    Raises
    ------
    NotPlain
        If an age is to be added.
    """
    if not trial.computes_age:
        return
    found = {e.tag: value_of(raw, e).decode("latin-1") for e in top
             if e.tag in (PATIENT_AGE, PATIENT_BIRTH_DATE, STUDY_DATE)}
    if trial.age_to_add(*(found.get(t, "") for t in (
            PATIENT_AGE, PATIENT_BIRTH_DATE, STUDY_DATE))) is not None:
        raise NotPlain("a PatientAge is added by the pydicom path")


def stamp(trial: TrialSteps, body: Body, implicit: bool,
          output: dict[int, RawDataElement | None],
          cache: dict[tuple[bool, bytes | None, str], list[tuple[int, bytes]]]) -> Body:
    """``body`` with the trial's attributes (the subject ID: the PatientID as written).

    Raises
    ------
    NotPlain
        If one of them is there with another VR.
    """
    if trial.trial is None:
        return body
    charset = output.get(SPECIFIC_CHARACTER_SET)
    patient = str(dataset_of(output, (PATIENT_ID,), implicit).get("PatientID", "") or "")
    key = (implicit, None if charset is None else bytes(charset.value or b""), patient)
    encoded = cache.get(key)
    if encoded is None:
        if len(cache) > 1024:
            cache.clear()
        encoded = cache[key] = _encode(trial.trial.elements(patient), implicit, charset)
    merged = dict(body)
    for tag, data in encoded:
        # pydicom's path updates an element that is there (a D of the profile) in place,
        # with its VR: the same bytes unless it was written with another VR.
        if tag in merged and not implicit and first_bytes(merged[tag])[4:6] != data[4:6]:
            raise NotPlain("a clinical trial attribute is there with another VR")
        merged[tag] = [data]
    return sorted(merged.items())


def _encode(values: list[tuple[str, str]], implicit: bool,
            charset: RawDataElement | None) -> list[tuple[int, bytes]]:
    ds = Dataset()
    if charset is not None:
        ds._dict[BaseTag(SPECIFIC_CHARACTER_SET)] = charset
    for keyword, value in values:
        setattr(ds, keyword, value)
    encodings = ds.get("SpecificCharacterSet", "iso8859")
    out = []
    for element in ds:
        if element.tag != SPECIFIC_CHARACTER_SET:
            fp = DicomBytesIO()
            fp.is_little_endian, fp.is_implicit_VR = True, implicit
            write_data_element(fp, element, encodings)
            out.append((int(element.tag), fp.getvalue()))
    return out
