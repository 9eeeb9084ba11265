"""Factories for synthetic DICOM patients that carry planted, fake PHI.

Everything this module produces is invented: the names are built from
made-up syllables, the telephone numbers use the fictional ``555-01xx``
range, the addresses are in the fictional town of *Nowhereville* and every
identifier is derived from a hash of the factory arguments. Nothing here
describes, or is derived from, a real person. The data exists so that the
test suite and the demo can check that a de-identifier removes every
identifying string it is given, wherever it is hidden.

The instances are valid CT Image Storage objects in Explicit VR Little
Endian, complete enough for ``dciodvfy`` to report no errors. Besides the
usual top-level attributes, the PHI is planted in places that are easy to
miss:

* free text: ``ImageComments`` (0020,4000) names the patient and the MRN;
* a private block: creator ``ACME FAKE 1.0`` in group 0x0009, with the
  patient's name in the LO (0009,1001) and a DS in (0009,1002);
* one sequence level down: ``OtherPatientIDsSequence`` (0010,1002),
  ``ReferencedStudySequence`` (0008,1110) and ``RequestAttributesSequence``
  (0040,0275), whose item carries ``RequestedProcedureID``,
  ``ScheduledProcedureStepID``, the accession number and the study UID;
* two sequence levels down, a PN: ``PerformedProtocolCodeSequence``
  (0040,0260) item > ``ProtocolContextSequence`` (0040,0440) item, a
  content item of ``ValueType`` ``PNAME`` whose ``PersonName`` (0040,A123) is
  the patient's name (concept ``(121029, DCM, "Subject Name")``). The
  General Series module allows a Protocol Context Sequence (Content Item
  Macro) in each Performed Protocol Code Sequence item, so the nesting is
  valid and not invented for the test.

All output is deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import datetime
import hashlib
import pathlib
import struct
from dataclasses import dataclass

from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

__all__ = [
    "PRIVATE_CREATOR",
    "PRIVATE_GROUP",
    "SITE_MARKERS",
    "UID_ROOT",
    "FakePatient",
    "make_instance",
    "make_patient",
    "patient_folder_name",
    "phi_markers",
    "write_study_tree",
]

UID_ROOT = "2.25."
"""Root of every UID made here (UUID-derived UIDs, ITU-T X.667)."""

PRIVATE_GROUP = 0x0009
"""Group of the planted private block."""

PRIVATE_CREATOR = "ACME FAKE 1.0"
"""Private creator of the planted private block."""

_IMPLEMENTATION_CLASS_UID = "2.25.137038893848335227112353283958389651123"
_IMPLEMENTATION_VERSION_NAME = "DCMANON_FAKE"

# Invented syllables: every surname is a prefix followed by a suffix.
_SURNAME_PREFIXES = (
    "Zorb", "Quix", "Blorf", "Vexel", "Grumm", "Thrax", "Yolt", "Plimb",
    "Snarv", "Krell", "Wibb", "Drox", "Fnord", "Glimm", "Moxo", "Jorp",
)  # fmt: skip
_SURNAME_SUFFIXES = (
    "ington", "wick", "hamble", "leyton", "stone", "worth", "bury", "fordel",
    "hollow", "field", "mere", "sby", "thorpe", "dale", "ridge", "wood",
)  # fmt: skip
_PHYSICIAN_SUFFIXES = (
    "mannox", "bergle", "steinov", "quistor", "holmsby", "senvik", "gaardel", "lundqvar",
    "strupp", "kowitz", "nakumbra", "verhub", "ottamble", "briscorn", "dunmirk", "pellquax",
)  # fmt: skip
_GIVEN_NAMES = (
    "Quillon", "Marzipa", "Tobbler", "Yarrowen", "Zephine", "Brundle",
    "Calixor", "Dweomer", "Elzabet", "Fennick", "Gorwinn", "Halvira",
    "Ixabel", "Jostrel", "Kembrin", "Lurvana",
)  # fmt: skip
_PHYSICIAN_GIVEN_NAMES = (
    "Orvella", "Pendrix", "Rasmolt", "Sivrana", "Tarquel", "Umbrisa", "Velkorn", "Wistara",
    "Xandrel", "Ysomir", "Zandrot", "Abrivel", "Borquin", "Cindral", "Dorvish", "Emmerak",
)  # fmt: skip
_STREET_NAMES = (
    "Nowhere Lane", "Fictive Road", "Imaginary Way", "Pretend Street",
    "Makebelieve Avenue", "Phantom Close", "Invented Drive", "Mock Terrace",
)  # fmt: skip
_CITY = "Nowhereville, ZZ 00000"

_INSTITUTION_NAME = "Fictional General Hospital"
_INSTITUTION_ADDRESS = "1 Nowhere Plaza, Nowhereville, ZZ 00000"
_STATION_NAME = "FAKECT01"
_DEVICE_SERIAL_NUMBER = "SN-FAKE-000042"
_OPERATORS_NAME = "Operatrix^Fakey"
_PERFORMING_PHYSICIAN_NAME = "Scannerby^Imaginia^^Dr."

SITE_MARKERS: tuple[str, ...] = (
    _INSTITUTION_NAME,
    _INSTITUTION_ADDRESS,
    _STATION_NAME,
    _DEVICE_SERIAL_NUMBER,
    "Operatrix",
    "Scannerby",
)
"""Identifying strings about the (fake) site and staff, shared by all patients."""

_CODE_SCHEME = "99ACME"  # local coding scheme designators start with "99"
_DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"
_BASE_STUDY_DATE = datetime.date(2021, 3, 1)
_BASE_BIRTH_DATE = datetime.date(1930, 1, 1)


@dataclass(frozen=True)
class FakePatient:
    """An invented patient and the fake identifying data planted for it.

    Attributes
    ----------
    name : str
        DICOM person name, ``Family^Given``.
    patient_id : str
        Medical record number, ``MRN`` followed by eight digits.
    other_patient_id : str
        A second identifier, planted in ``OtherPatientIDsSequence``.
    birth_date : str
        DICOM date, ``YYYYMMDD``.
    sex : str
        ``"F"`` or ``"M"``.
    address : str
        Postal address (street line, town, fake postal code).
    phone : str
        Telephone number in the fictional ``555-01xx`` range, with extension.
    referring_physician : str
        DICOM person name of the patient's referring physician.
    index : int
        The ``index`` argument of :func:`make_patient`.
    seed : int
        The ``seed`` argument of :func:`make_patient`.
    """

    name: str
    patient_id: str
    other_patient_id: str
    birth_date: str
    sex: str
    address: str
    phone: str
    referring_physician: str
    index: int
    seed: int

    @property
    def family_name(self) -> str:
        """Family name component of :attr:`name`."""
        return self.name.split("^")[0]

    @property
    def given_name(self) -> str:
        """Given name component of :attr:`name`."""
        parts = self.name.split("^")
        return parts[1] if len(parts) > 1 else ""

    @property
    def street(self) -> str:
        """First line of :attr:`address`."""
        return self.address.split(",")[0]


def _digest(*parts: object) -> int:
    """Return a stable 128-bit integer derived from ``parts``."""
    key = "\x1f".join(repr(part) for part in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:16], "big")


def _uid(seed: int, patient: FakePatient, *parts: object) -> str:
    """Return a ``2.25.`` UID derived from the seed, the patient and ``parts``."""
    return f"{UID_ROOT}{_digest('uid', seed, patient.patient_id, *parts)}"


def make_patient(index: int, seed: int = 0) -> FakePatient:
    """Return the deterministic fake patient number ``index``.

    Parameters
    ----------
    index : int
        Number of the patient, ``>= 0``. Under one seed, any 16 consecutive
        indices give distinct given names, any 256 consecutive indices give
        distinct family names, and indices below 10**8 distinct patient IDs
        and telephone numbers.
    seed : int, optional
        Selects another population of fake patients.

    Returns
    -------
    FakePatient
        The patient; the same arguments always give an equal patient.

    Raises
    ------
    ValueError
        If ``index`` or ``seed`` is negative.
    """
    if index < 0 or seed < 0:
        raise ValueError("index and seed must not be negative")
    # 97 is odd, so this is a bijection of index modulo 4096 for each seed.
    mixed = (index * 97 + seed * 131) % 4096
    family = _SURNAME_PREFIXES[mixed % 16] + _SURNAME_SUFFIXES[(mixed // 16) % 16]
    given = _GIVEN_NAMES[(index + 3 * seed) % 16]
    # 7919 is prime to 10**8, so the MRN is a bijection of index modulo 10**8.
    mrn = (12_345 + 7_919 * index + 1_000_003 * seed) % 100_000_000
    other = _digest("other-id", index, seed) % 10**9
    birth = _BASE_BIRTH_DATE + datetime.timedelta(days=_digest("birth", index, seed) % 27_000)
    house = 1 + _digest("house", index, seed) % 998
    street = _STREET_NAMES[_digest("street", index, seed) % len(_STREET_NAMES)]
    # Physicians' names come from their own lists, so that no physician shares
    # a name, or a name component, with any patient.
    referrer = (
        _SURNAME_PREFIXES[(mixed + 5) % 16]
        + _PHYSICIAN_SUFFIXES[(mixed // 16 + 3) % 16]
        + "^"
        + _PHYSICIAN_GIVEN_NAMES[(index + 3 * seed) % 16]
        + "^^Dr."
    )
    return FakePatient(
        name=f"{family}^{given}",
        patient_id=f"MRN{mrn:08d}",
        other_patient_id=f"XID{other:09d}",
        birth_date=birth.strftime("%Y%m%d"),
        sex="FM"[mixed % 2],
        address=f"{house} {family} {street}, {_CITY}",
        phone=f"555-01{mixed % 100:02d} x{index % 100_000:05d}",
        referring_physician=referrer,
        index=index,
        seed=seed,
    )


def phi_markers(patient: FakePatient) -> list[str]:
    """Return the identifying strings planted for ``patient``.

    A de-identified copy of any instance of the patient should contain none
    of them, neither in its bytes nor in its file name.

    Parameters
    ----------
    patient : FakePatient
        The patient.

    Returns
    -------
    list of str
        Name (whole and each component), the referring physician's family
        name, patient ID, other patient ID, birth date, address (whole and
        street line) and telephone number; each at least six characters
        long, without duplicates, in a fixed order.
    """
    markers = [
        patient.name,
        patient.family_name,
        patient.given_name,
        patient.referring_physician.split("^")[0],
        patient.patient_id,
        patient.other_patient_id,
        patient.birth_date,
        patient.address,
        patient.street,
        patient.phone,
    ]
    return list(dict.fromkeys(markers))


def _age(birth_date: str, on: datetime.date) -> str:
    """Return the DICOM age string (AS) of someone born on ``birth_date``."""
    birth = datetime.datetime.strptime(birth_date, "%Y%m%d").date()
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return f"{max(years, 0):03d}Y"


def _pixel_data(rows: int, columns: int, offset: int) -> bytes:
    """Return a 12-bit gradient as little-endian unsigned 16-bit samples."""
    span = max(rows + columns - 2, 1)
    values = [
        (((r + c) * 3_000) // span + offset) % 4096 for r in range(rows) for c in range(columns)
    ]
    return struct.pack(f"<{len(values)}H", *values)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    """Return a Code Sequence Macro item."""
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def make_instance(
    patient: FakePatient,
    study: int = 0,
    series: int = 0,
    instance: int = 0,
    *,
    rows: int = 64,
    columns: int = 64,
    seed: int = 0,
) -> FileDataset:
    """Return a synthetic CT Image Storage instance of ``patient``.

    Parameters
    ----------
    patient : FakePatient
        Whose fake PHI to plant.
    study, series, instance : int, optional
        Position of the instance; each ``>= 0``. Instances with the same
        patient, seed, study (and series) share the Study Instance UID and
        Frame of Reference UID (and the Series Instance UID).
    rows, columns : int, optional
        Image size, each between 1 and 4096.
    seed : int, optional
        Enters every UID, so that separate trees do not share UIDs.

    Returns
    -------
    FileDataset
        Explicit VR Little Endian dataset with its file meta information
        (``MediaStorageSOPInstanceUID`` equal to ``SOPInstanceUID``) and a
        128-byte preamble, ready for ``save_as``.

    Raises
    ------
    ValueError
        If a position is negative or the image size is out of range.
    """
    if min(study, series, instance, seed) < 0:
        raise ValueError("study, series, instance and seed must not be negative")
    if not (1 <= rows <= 4096 and 1 <= columns <= 4096):
        raise ValueError("rows and columns must be between 1 and 4096")

    study_uid = _uid(seed, patient, "study", study)
    # Study 0 points at study 1, every other study at the one before it, so
    # that in a tree of two or more studies the reference resolves.
    related_study_uid = _uid(seed, patient, "study", study - 1 if study > 0 else 1)
    frame_of_reference_uid = _uid(seed, patient, "frame-of-reference", study)
    series_uid = _uid(seed, patient, "series", study, series)
    sop_uid = _uid(seed, patient, "instance", study, series, instance)

    study_date = _BASE_STUDY_DATE + datetime.timedelta(
        days=_digest("study-date", seed, patient.patient_id, study) % 900
    )
    study_start = datetime.datetime.combine(study_date, datetime.time(8, 0)) + datetime.timedelta(
        minutes=_digest("study-time", seed, patient.patient_id, study) % 540
    )
    series_start = study_start + datetime.timedelta(minutes=7 * series + 2)
    acquired = series_start + datetime.timedelta(seconds=2 * instance, microseconds=250_000)
    created = acquired + datetime.timedelta(seconds=30)
    study_key = _digest("accession", seed, patient.patient_id, study)

    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(_IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION_NAME

    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\x00" * 128)

    # SOP Common
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceCreationDate = created.strftime("%Y%m%d")
    ds.InstanceCreationTime = created.strftime("%H%M%S")
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.TimezoneOffsetFromUTC = "+0100"

    # General Study, General Series, General Acquisition, General Image
    ds.StudyDate = study_start.strftime("%Y%m%d")
    ds.SeriesDate = series_start.strftime("%Y%m%d")
    ds.AcquisitionDate = acquired.strftime("%Y%m%d")
    ds.ContentDate = acquired.strftime("%Y%m%d")
    ds.AcquisitionDateTime = acquired.strftime("%Y%m%d%H%M%S.%f") + "+0100"
    ds.StudyTime = study_start.strftime("%H%M%S")
    ds.SeriesTime = series_start.strftime("%H%M%S")
    ds.AcquisitionTime = acquired.strftime("%H%M%S.%f")
    ds.ContentTime = acquired.strftime("%H%M%S.%f")
    ds.AccessionNumber = f"ACC{study_key % 10**10:010d}"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME Fake Imaging"
    ds.InstitutionName = _INSTITUTION_NAME
    ds.InstitutionAddress = _INSTITUTION_ADDRESS
    ds.ReferringPhysicianName = patient.referring_physician
    ds.StationName = _STATION_NAME
    ds.StudyDescription = "CT CHEST (FAKE)"
    ds.SeriesDescription = f"AXIAL {2.5 * (series + 1):.1f}MM (FAKE)"
    ds.PerformingPhysicianName = _PERFORMING_PHYSICIAN_NAME
    ds.OperatorsName = _OPERATORS_NAME
    ds.ManufacturerModelName = "FakeScan 64"

    related = Dataset()
    related.ReferencedSOPClassUID = _DETACHED_STUDY_MANAGEMENT
    related.ReferencedSOPInstanceUID = related_study_uid
    ds.ReferencedStudySequence = Sequence([related])

    # Patient, Patient Study
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.IssuerOfPatientID = "FAKE GENERAL MRN"
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    other_id = Dataset()
    other_id.PatientID = patient.other_patient_id
    other_id.IssuerOfPatientID = "FAKE REGIONAL REGISTRY"
    other_id.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other_id])
    ds.PatientAge = _age(patient.birth_date, study_date)
    ds.PatientAddress = patient.address
    ds.PatientTelephoneNumbers = patient.phone

    # Private block (after group 0008/0010, as tags must ascend)
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", f"{patient.given_name} {patient.family_name}")
    block.add_new(0x02, "DS", f"{36.5 + (patient.index % 20) / 10:.1f}")

    # CT Image, General Series, General Equipment
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "2.5"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.DeviceSerialNumber = _DEVICE_SERIAL_NUMBER
    ds.SoftwareVersions = "0.0-FAKE"
    ds.ProtocolName = "FAKE CHEST ROUTINE"
    ds.ReconstructionDiameter = "350"
    ds.ExposureTime = "500"
    ds.XRayTubeCurrent = "200"
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "HFS"

    # General Study / Series / Image identifiers, Image Plane, Frame of Reference
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = f"S{study_key % 10**6:06d}"
    ds.SeriesNumber = series + 1
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = instance + 1
    z = 100.0 - 2.5 * instance
    ds.ImagePositionPatient = ["-24", "-24", f"{z:.1f}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{z:.1f}"
    ds.ImageComments = (
        f"Synthetic test image. Follow-up for {patient.given_name} {patient.family_name} "
        f"(MRN {patient.patient_id}), phone {patient.phone}."
    )

    # Image Pixel, CT Image, VOI LUT
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = ["0.75", "0.75"]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"

    # Request Attributes; Performed Protocol Code with a PN content item two
    # sequence levels down.
    request = Dataset()
    request.AccessionNumber = ds.AccessionNumber
    request.StudyInstanceUID = study_uid
    request.RequestedProcedureDescription = "CT CHEST (FAKE)"
    request.ScheduledProcedureStepDescription = "CT CHEST ROUTINE (FAKE)"
    request.ScheduledProcedureStepID = f"SPS{study_key % 10**7:07d}"
    request.RequestedProcedureID = f"RP{study_key % 10**8:08d}"
    ds.RequestAttributesSequence = Sequence([request])

    subject = Dataset()
    subject.ValueType = "PNAME"
    subject.ConceptNameCodeSequence = Sequence([_code("121029", "DCM", "Subject Name")])
    subject.PersonName = patient.name
    protocol = _code("FAKECHEST", _CODE_SCHEME, "Fake chest CT protocol")
    protocol.ProtocolContextSequence = Sequence([subject])
    ds.PerformedProtocolCodeSequence = Sequence([protocol])

    ds.add_new(0x7FE00010, "OW", _pixel_data(rows, columns, 37 * instance + 101 * series))
    return ds


def patient_folder_name(patient: FakePatient) -> str:
    """Return the folder name used for ``patient`` by :func:`write_study_tree`.

    It carries the fake name and ID on purpose, so that PHI in file names
    can be tested.
    """
    return f"{patient.family_name}_{patient.given_name}_{patient.patient_id}"


def write_study_tree(
    root: pathlib.Path,
    patients: int = 3,
    studies: int = 2,
    series: int = 2,
    instances: int = 2,
    seed: int = 0,
) -> list[pathlib.Path]:
    """Write a tree of synthetic instances and return their paths.

    The layout is ``root/<Family>_<Given>_<MRN>/study<NN>/series<NN>/<NNNN>.dcm``
    for patients ``make_patient(0, seed)`` to ``make_patient(patients - 1,
    seed)``. Existing files at those paths are overwritten.

    Parameters
    ----------
    root : pathlib.Path
        Folder to write into; created if missing.
    patients, studies, series, instances : int, optional
        How many of each to write (per parent).
    seed : int, optional
        Passed to :func:`make_patient` and :func:`make_instance`.

    Returns
    -------
    list of pathlib.Path
        The written files, sorted.
    """
    paths: list[pathlib.Path] = []
    for p in range(patients):
        patient = make_patient(p, seed)
        for st in range(studies):
            for se in range(series):
                folder = root / patient_folder_name(patient) / f"study{st:02d}" / f"series{se:02d}"
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(instances):
                    path = folder / f"{i + 1:04d}.dcm"
                    ds = make_instance(patient, st, se, i, seed=seed)
                    ds.save_as(path, enforce_file_format=True)
                    paths.append(path)
    return sorted(paths)
