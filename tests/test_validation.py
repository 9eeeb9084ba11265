"""Tests of dcmanon.dicom.validation: fo-dicom 5.1.1 VR and VM checks (SPEC section 9)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from io import BytesIO

import pydicom
import pytest
from pydicom import Dataset, config
from pydicom.dataelem import DataElement
from pydicom.sequence import Sequence

from dcmanon.dicom.validation import element_problem, validate_dataset
from dcmanon.errors import ValidationError
from tests.conformance.vectors import all_cases

PATIENT_NAME = 0x00100010
PATIENT_AGE = 0x00101010
MODALITY = 0x00080060
STUDY_DATE = 0x00080020
STUDY_TIME = 0x00080030
ACQUISITION_DATETIME = 0x0008002A
SLICE_THICKNESS = 0x00180050
INSTANCE_NUMBER = 0x00200013
STUDY_DESCRIPTION = 0x00081030
SOP_INSTANCE_UID = 0x00080018
RETRIEVE_AE_TITLE = 0x00080054
PATIENT_ID = 0x00100020
STATION_NAME = 0x00081010
ADDITIONAL_HISTORY = 0x001021B0  # LT
DERIVATION_DESCRIPTION = 0x00082111  # ST
IMAGE_TYPE = 0x00080008  # CS 2-n
IMAGE_POSITION = 0x00200032  # DS 3
PIXEL_SPACING = 0x00280030  # DS 2
ROWS = 0x00280010  # US 1
VERTICES_SHUTTER = 0x00181620  # IS 2-2n
SHUTTER_SHAPE = 0x00181600  # CS 1-3
CONTOUR_DATA = 0x30060050  # DS 3-3n
REFERRING_PHYSICIAN = 0x00080090  # PN 1
PROCEDURE_CODE_SEQUENCE = 0x00081032
CODE_MEANING = 0x00080104
CODE_VALUE = 0x00080100


@pytest.fixture(autouse=True)
def _lenient_pydicom(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let pydicom hold invalid values without warning, so that validation sees them."""
    monkeypatch.setattr(config.settings, "reading_validation_mode", config.IGNORE)
    monkeypatch.setattr(config.settings, "writing_validation_mode", config.IGNORE)
    yield


VALID: list[tuple[str, int, str]] = [
    ("AE", RETRIEVE_AE_TITLE, "STORESCP"),
    ("AE", RETRIEVE_AE_TITLE, " A B "),
    ("AE", RETRIEVE_AE_TITLE, "X" * 16),
    ("AS", PATIENT_AGE, ""),
    ("AS", PATIENT_AGE, "045Y"),
    ("AS", PATIENT_AGE, "003D"),
    ("AS", PATIENT_AGE, "012W"),
    ("AS", PATIENT_AGE, "006M"),
    ("CS", MODALITY, "CT"),
    ("CS", MODALITY, "ORIGINAL_1 A"),
    ("CS", MODALITY, ""),
    ("CS", MODALITY, "A" * 16),
    ("DA", STUDY_DATE, "20240131"),
    ("DA", STUDY_DATE, "20240131-20241231"),
    ("DA", STUDY_DATE, "-20241231"),
    ("DA", STUDY_DATE, "20240131-"),
    ("DA", STUDY_DATE, "20240131 "),
    ("DA", STUDY_DATE, "20240000"),  # month and day 00 pass (only upper bounds are checked)
    ("DA", STUDY_DATE, "20241231"),
    ("DS", SLICE_THICKNESS, "0"),
    ("DS", SLICE_THICKNESS, "1.5"),
    ("DS", SLICE_THICKNESS, " -12.5 "),
    ("DS", SLICE_THICKNESS, "+0.25"),
    ("DS", SLICE_THICKNESS, "10."),
    ("DS", SLICE_THICKNESS, ".5"),
    ("DS", SLICE_THICKNESS, "1e10"),
    ("DS", SLICE_THICKNESS, "-1.5E-3"),
    ("DS", SLICE_THICKNESS, "1234567890.12345"),
    ("DT", ACQUISITION_DATETIME, "2024"),
    ("DT", ACQUISITION_DATETIME, "202401"),
    ("DT", ACQUISITION_DATETIME, "20240131"),
    ("DT", ACQUISITION_DATETIME, "2024013112"),
    ("DT", ACQUISITION_DATETIME, "202401311259"),
    ("DT", ACQUISITION_DATETIME, "20240131125960"),
    ("DT", ACQUISITION_DATETIME, "20240131125959.1"),
    ("DT", ACQUISITION_DATETIME, "20240131125959.123456"),
    ("DT", ACQUISITION_DATETIME, "20240131125959+0100"),
    ("DT", ACQUISITION_DATETIME, "20240131125959+1400"),
    ("DT", ACQUISITION_DATETIME, "20240131125959-1200"),
    ("DT", ACQUISITION_DATETIME, "20240131125959.5-0530 "),
    ("DT", ACQUISITION_DATETIME, "2023-2024"),
    ("DT", ACQUISITION_DATETIME, "20230101-"),
    ("DT", ACQUISITION_DATETIME, "-20230101"),
    ("DT", ACQUISITION_DATETIME, "20230101-0500-20240101"),
    ("DT", ACQUISITION_DATETIME, "20230101-20240101-0500"),
    ("DT", ACQUISITION_DATETIME, "20230101-0500-20240101-0500"),
    ("IS", INSTANCE_NUMBER, ""),
    ("IS", INSTANCE_NUMBER, "0"),
    ("IS", INSTANCE_NUMBER, " +12 "),
    ("IS", INSTANCE_NUMBER, "-2147483648"),
    ("IS", INSTANCE_NUMBER, "2147483647"),
    ("IS", INSTANCE_NUMBER, "007"),
    ("LO", STUDY_DESCRIPTION, "Chest CT \x1b$B"),
    ("LO", STUDY_DESCRIPTION, "x" * 64),
    ("LO", STUDY_DESCRIPTION, ""),
    ("LT", ADDITIONAL_HISTORY, "line 1\r\nline 2 with \\ backslash"),
    ("LT", ADDITIONAL_HISTORY, "x" * 10240),
    ("ST", DERIVATION_DESCRIPTION, "x" * 1024),
    ("PN", PATIENT_NAME, "Doe^John^M^Dr^Jr"),
    ("PN", PATIENT_NAME, "Doe^John=ドウ^ジョン=どう^じょん"),
    ("PN", PATIENT_NAME, "=" + "x" * 64),
    ("PN", PATIENT_NAME, ""),
    ("SH", PATIENT_ID, "ID-0001"),
    ("SH", PATIENT_ID, "x" * 16),
    ("TM", STUDY_TIME, "07"),
    ("TM", STUDY_TIME, "0709"),
    ("TM", STUDY_TIME, "070907"),
    ("TM", STUDY_TIME, "070907.0705 "),
    ("TM", STUDY_TIME, "235960.123456"),
    ("TM", STUDY_TIME, "0700-0800"),
    ("TM", STUDY_TIME, "-0800"),
    ("UI", SOP_INSTANCE_UID, "1.2.840"),
    ("UI", SOP_INSTANCE_UID, "1.2.840.10008.1.2.1"),
    ("UI", SOP_INSTANCE_UID, "2.25.0"),
    ("UI", SOP_INSTANCE_UID, "1.0.2 "),
    ("UI", SOP_INSTANCE_UID, ""),
    ("UI", SOP_INSTANCE_UID, "1." + "2" * 62),
    ("UT", 0x00400280, "\x00 anything at all " * 100),
    ("UR", 0x00081190, "not a url at all \\ "),
    ("UC", 0x00189361, "lower-case is fine"),
]


@pytest.mark.parametrize(("vr", "tag", "value"), VALID)
def test_valid_values_pass(vr: str, tag: int, value: str) -> None:
    assert element_problem(vr, [value], tag) is None


INVALID: list[tuple[str, int, str, str]] = [
    ("AE", RETRIEVE_AE_TITLE, "X" * 17, "longer than 16"),
    ("AE", RETRIEVE_AE_TITLE, "    ", "only spaces"),
    ("AE", RETRIEVE_AE_TITLE, "", "only spaces"),
    ("AE", RETRIEVE_AE_TITLE, "A\x1bB", "control character"),
    ("AE", RETRIEVE_AE_TITLE, "A\tB", "control character"),
    ("AS", PATIENT_AGE, "invalid", "AS format"),
    ("AS", PATIENT_AGE, "45Y", "AS format"),
    ("AS", PATIENT_AGE, "045y", "AS format"),
    ("AS", PATIENT_AGE, "045Y ", "AS format"),
    ("CS", MODALITY, "ct", "other than A-Z"),
    ("CS", MODALITY, "CT-1", "other than A-Z"),
    ("CS", MODALITY, "A" * 17, "longer than 16"),
    ("DA", STUDY_DATE, "2024-01-31", "more than one range separator"),
    ("DA", STUDY_DATE, "2024.01.31", "DA format YYYYMMDD"),
    ("DA", STUDY_DATE, "202401", "DA format YYYYMMDD"),
    ("DA", STUDY_DATE, " 20240131", "DA format YYYYMMDD"),
    ("DA", STUDY_DATE, "20241301", "month above 12"),
    ("DA", STUDY_DATE, "20240132", "day above 31"),
    ("DA", STUDY_DATE, "20240101-20241301", "month above 12"),
    ("DS", SLICE_THICKNESS, "030", "not a decimal string"),
    ("DS", SLICE_THICKNESS, "00.5", "not a decimal string"),
    ("DS", SLICE_THICKNESS, "1,5", "not a decimal string"),
    ("DS", SLICE_THICKNESS, "1 5", "not a decimal string"),
    ("DS", SLICE_THICKNESS, ".", "not a decimal string"),
    ("DS", SLICE_THICKNESS, "", "not a decimal string"),
    ("DS", SLICE_THICKNESS, "NaN", "not a decimal string"),
    ("DS", SLICE_THICKNESS, "1e", "not a decimal string"),
    ("DS", SLICE_THICKNESS, "12345678901234567", "longer than 16"),
    ("DS", SLICE_THICKNESS, " 1234567890.1234 ", "longer than 16"),
    ("DT", ACQUISITION_DATETIME, "20240131125959-0000", "-0000"),
    ("DT", ACQUISITION_DATETIME, " - ", "both ends empty"),
    ("DT", ACQUISITION_DATETIME, "2020-2021-2022", "not a valid DT range"),
    ("DT", ACQUISITION_DATETIME, "1-2-3-4-5", "too many '-'"),
    ("DT", ACQUISITION_DATETIME, "20240131+0100+0100", "more than one UTC offset sign"),
    ("DT", ACQUISITION_DATETIME, "20240131+01", "&ZZXX"),
    ("DT", ACQUISITION_DATETIME, "20240131+1500", "above +14 hours"),
    ("DT", ACQUISITION_DATETIME, "20240131-1300-2025-0100", "below -12 hours"),
    ("DT", ACQUISITION_DATETIME, "20240131-1300-2025", "not a valid DT range"),
    ("DT", ACQUISITION_DATETIME, "20240131+0160", "minutes above 59"),
    ("DT", ACQUISITION_DATETIME, "202", "DT format"),
    ("DT", ACQUISITION_DATETIME, "2024013112595", "DT format"),
    ("DT", ACQUISITION_DATETIME, "20240131125959.", "DT format"),
    ("DT", ACQUISITION_DATETIME, "20240131125959.1234567", "DT format"),
    ("DT", ACQUISITION_DATETIME, "202401311259.5", "DT format"),
    ("DT", ACQUISITION_DATETIME, "20240131125961", "seconds above 60"),
    ("DT", ACQUISITION_DATETIME, "202401311260", "minutes above 59"),
    ("DT", ACQUISITION_DATETIME, "2024013124", "hours above 23"),
    ("DT", ACQUISITION_DATETIME, "20240132", "day above 31"),
    ("DT", ACQUISITION_DATETIME, "20240100", "day 00"),
    ("DT", ACQUISITION_DATETIME, "202413", "month above 12"),
    ("DT", ACQUISITION_DATETIME, "202400", "month 00"),
    ("IS", INSTANCE_NUMBER, "1.0", "not an integer string"),
    ("IS", INSTANCE_NUMBER, "1 2", "not an integer string"),
    ("IS", INSTANCE_NUMBER, "  ", "not an integer string"),
    ("IS", INSTANCE_NUMBER, "2147483648", "32-bit"),
    ("IS", INSTANCE_NUMBER, "-2147483649", "32-bit"),
    ("LO", STUDY_DESCRIPTION, "x" * 65, "longer than 64"),
    ("LO", STUDY_DESCRIPTION, "a\nb", "control character"),
    ("LT", ADDITIONAL_HISTORY, "x" * 10241, "longer than 10240"),
    ("ST", DERIVATION_DESCRIPTION, "x" * 1025, "longer than 1024"),
    ("PN", PATIENT_NAME, "a=b=c=d", "more than 3 component groups"),
    ("PN", PATIENT_NAME, "x" * 65, "longer than 64"),
    ("PN", PATIENT_NAME, "Doe^John\r", "control character"),
    ("PN", PATIENT_NAME, "a^b^c^d^e^f", "more than 5 components"),
    ("SH", PATIENT_ID, "x" * 17, "longer than 16"),
    ("SH", PATIENT_ID, "a\x7fb", "control character"),
    ("TM", STUDY_TIME, "07-08-09", "more than one range separator"),
    ("TM", STUDY_TIME, "7", "TM format"),
    ("TM", STUDY_TIME, "070", "TM format"),
    ("TM", STUDY_TIME, "07:09", "TM format"),
    ("TM", STUDY_TIME, "070907.", "TM format"),
    ("TM", STUDY_TIME, "070907.1234567", "TM format"),
    ("TM", STUDY_TIME, "2400", "hours above 23"),
    ("TM", STUDY_TIME, "0760", "minutes above 59"),
    ("TM", STUDY_TIME, "070761", "seconds above 60"),
    ("UI", SOP_INSTANCE_UID, "0.1", "leading zero"),
    ("UI", SOP_INSTANCE_UID, "1.02", "leading zero"),
    ("UI", SOP_INSTANCE_UID, "1..2", "empty component"),
    ("UI", SOP_INSTANCE_UID, ".1.2", "empty component"),
    ("UI", SOP_INSTANCE_UID, "1.2.", "empty component"),
    ("UI", SOP_INSTANCE_UID, "1.2.a", "other than digits"),
    ("UI", SOP_INSTANCE_UID, "1.2 .3", "other than digits"),
    ("UI", SOP_INSTANCE_UID, "1." + "2" * 63, "longer than 64"),
]


@pytest.mark.parametrize(("vr", "tag", "value", "reason"), INVALID)
def test_invalid_values_fail(vr: str, tag: int, value: str, reason: str) -> None:
    problem = element_problem(vr, [value], tag)
    assert problem is not None
    assert reason in problem
    assert problem.startswith("value ")


def test_lengths_count_utf16_units_like_dotnet() -> None:
    assert element_problem("SH", ["é" * 16], PATIENT_ID) is None
    assert element_problem("SH", ["\U0001f600" * 8], PATIENT_ID) is None
    assert element_problem("SH", ["\U0001f600" * 8 + "x"], PATIENT_ID) is not None


def test_multi_valued_reason_names_the_position() -> None:
    problem = element_problem("SH", ["short", "x" * 17, "ok"], 0x00102154)  # SH 1-n
    assert problem == "value 2 of 3 is longer than 16 characters"


def test_empty_value_inside_multi_valued_element_is_checked() -> None:
    assert element_problem("DS", ["1", ""], PIXEL_SPACING) is not None
    assert element_problem("CS", ["ORIGINAL", ""], IMAGE_TYPE) is None


@pytest.mark.parametrize(
    ("vr", "tag", "count", "allowed"),
    [
        ("DS", SLICE_THICKNESS, 1, True),
        ("DS", SLICE_THICKNESS, 2, False),
        ("DS", IMAGE_POSITION, 3, True),
        ("DS", IMAGE_POSITION, 2, False),
        ("DS", IMAGE_POSITION, 4, False),
        ("DS", PIXEL_SPACING, 2, True),
        ("DS", PIXEL_SPACING, 1, False),
        ("CS", IMAGE_TYPE, 1, False),
        ("CS", IMAGE_TYPE, 2, True),
        ("CS", IMAGE_TYPE, 40, True),
        ("CS", SHUTTER_SHAPE, 3, True),
        ("CS", SHUTTER_SHAPE, 4, False),
        ("IS", VERTICES_SHUTTER, 1, False),
        ("IS", VERTICES_SHUTTER, 2, True),
        # fo-dicom checks only minimum and maximum, not the step of 2-2n / 3-3n
        ("IS", VERTICES_SHUTTER, 3, True),
        ("DS", CONTOUR_DATA, 2, False),
        ("DS", CONTOUR_DATA, 4, True),
        ("US", ROWS, 1, True),
        ("US", ROWS, 2, False),
        ("US or SS", 0x00280106, 2, False),  # SmallestImagePixelValue, VM 1
        ("PN", PATIENT_NAME, 3, True),
        ("PN", PATIENT_NAME, 4, False),
        ("PN", REFERRING_PHYSICIAN, 7, True),  # PN: only PatientName is counted
        ("OB", 0x7FE00010, 1000, True),
        ("OW", 0x7FE00010, 1000, True),
        ("UN", ROWS, 2, True),
        ("UC", 0x00189361, 2, True),
        ("LO", 0x00090010, 5, True),  # private creator
        ("US", 0x00091001, 5, True),  # private element
        ("US", 0x00080002, 5, True),  # not in the dictionary
        ("DS", IMAGE_POSITION, 0, True),  # empty element: no values, no check
    ],
)
def test_value_multiplicity(vr: str, tag: int, count: int, allowed: bool) -> None:
    problem = element_problem(vr, None, tag, value_count=count)
    assert (problem is None) is allowed
    if problem is not None:
        assert problem.startswith(f"VM {count} is not allowed")


def test_vm_reason_names_dictionary_vm() -> None:
    assert element_problem("DS", ["1", "2"], IMAGE_POSITION) == (
        "VM 2 is not allowed (dictionary VM 3)"
    )


def test_string_check_comes_before_vm_check() -> None:
    problem = element_problem("DS", ["1", "x"], IMAGE_POSITION)
    assert problem == "value 2 of 2 is not a decimal string"


def _dataset() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Doe^John"
    ds.PatientAge = "045Y"
    ds.Modality = "CT"
    ds.StudyDate = "20240131"
    ds.SOPInstanceUID = "1.2.840.10008.1"
    ds.ImagePositionPatient = ["1.0", "-2.5", "3"]
    ds.InstanceNumber = "12"
    ds.Rows = 512
    ds.PixelData = b"\0" * 8
    code = Dataset()
    code.CodeValue = "CT0001"
    code.CodeMeaning = "CT chest"
    ds.ProcedureCodeSequence = Sequence([code])
    return ds


def test_valid_dataset_passes() -> None:
    validate_dataset(_dataset())
    validate_dataset(Dataset())


def test_nested_failure_names_the_sequence_path() -> None:
    ds = _dataset()
    second = Dataset()
    second.add_new(CODE_MEANING, "LO", "x" * 65)
    ds.ProcedureCodeSequence.append(second)
    with pytest.raises(ValidationError) as caught:
        validate_dataset(ds, stage="input")
    error = caught.value
    assert error.element == "(0008,1032) ProcedureCodeSequence[1] > (0008,0104) CodeMeaning"
    assert error.vr == "LO"
    assert error.stage == "input"
    assert error.reason == "value is longer than 64 characters"


def test_message_never_contains_the_value() -> None:
    secret = "sEcReT-Patient-7"
    ds = _dataset()
    ds.add_new(MODALITY, "CS", secret)
    with pytest.raises(ValidationError) as caught:
        validate_dataset(ds)
    message = str(caught.value)
    assert "(0008,0060) Modality [CS]" in message
    assert secret not in message
    assert secret.lower() not in message.lower()


def test_first_failure_in_tag_order_wins() -> None:
    ds = _dataset()
    ds.add_new(0x00080016, "UI", "0.1")  # SOPClassUID, before SOPInstanceUID
    ds.add_new(PATIENT_AGE, "AS", "bad")
    ds.add_new(ROWS, "US", [1, 2])
    with pytest.raises(ValidationError) as caught:
        validate_dataset(ds)
    assert caught.value.element == "(0008,0016) SOPClassUID"


def test_binary_vm_failure() -> None:
    ds = _dataset()
    ds.add_new(ROWS, "US", [1, 2])
    with pytest.raises(ValidationError, match=r"\(0028,0010\) Rows \[US\]: VM 2 is not allowed"):
        validate_dataset(ds)


def test_binary_value_given_as_bytes_counts_units() -> None:
    ds = Dataset()
    ds[ROWS] = DataElement(ROWS, "US", b"\x01\x00\x02\x00")
    with pytest.raises(ValidationError, match="VM 2"):
        validate_dataset(ds)


def test_empty_elements_pass() -> None:
    ds = Dataset()
    for tag, vr in [(PATIENT_AGE, "AS"), (MODALITY, "CS"), (SLICE_THICKNESS, "DS"),
                    (SOP_INSTANCE_UID, "UI"), (IMAGE_POSITION, "DS"), (ROWS, "US"),
                    (RETRIEVE_AE_TITLE, "AE"), (ACQUISITION_DATETIME, "DT")]:
        ds.add_new(tag, vr, None)
    validate_dataset(ds)


def test_file_meta_group_is_not_validated() -> None:
    ds = Dataset()
    ds.add_new(0x00020003, "UI", "0.bad")
    validate_dataset(ds)


def test_private_elements_get_string_checks_but_no_vm_check() -> None:
    ds = Dataset()
    ds.add_new(0x00090010, "LO", "ACME")
    ds.add_new(0x00091001, "DS", ["1", "2", "3", "4"])
    validate_dataset(ds)
    ds.add_new(0x00091002, "DS", "030")
    with pytest.raises(ValidationError, match=r"\(0009,1002\) Private \[DS\]"):
        validate_dataset(ds)


def test_numbers_converted_by_pydicom_are_checked_as_written() -> None:
    ds = Dataset()
    ds.SliceThickness = 0.5
    ds.InstanceNumber = 7
    ds.ImagePositionPatient = [1, 2.25, -3]
    validate_dataset(ds)
    ds.add_new(SLICE_THICKNESS, "DS", "007.5")  # pydicom keeps the original string
    with pytest.raises(ValidationError, match="SliceThickness"):
        validate_dataset(ds)


def test_instance_number_overflow_in_dataset() -> None:
    ds = Dataset()
    ds.add_new(INSTANCE_NUMBER, "IS", "99999999999")
    with pytest.raises(ValidationError, match="32-bit"):
        validate_dataset(ds)


def test_dates_and_times_as_python_objects() -> None:
    ds = Dataset()
    ds.add_new(STUDY_DATE, "DA", date(2024, 1, 31))
    ds.add_new(STUDY_TIME, "TM", time(7, 9, 7, 500))
    ds.add_new(ACQUISITION_DATETIME, "DT", datetime(2024, 1, 31, 7, 9, 7))
    validate_dataset(ds)


def test_patient_name_multiplicity_in_dataset() -> None:
    ds = Dataset()
    ds.add_new(PATIENT_NAME, "PN", ["A", "B", "C"])
    validate_dataset(ds)
    ds.add_new(PATIENT_NAME, "PN", ["A", "B", "C", "D"])
    with pytest.raises(ValidationError, match="PatientName"):
        validate_dataset(ds)


def test_string_values_given_as_bytes_are_decoded() -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds[STATION_NAME] = DataElement(STATION_NAME, "SH", "ÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉ".encode())
    validate_dataset(ds)  # 16 characters, 32 bytes
    ds[STATION_NAME] = DataElement(STATION_NAME, "SH", b"OK\\" + "É".encode() * 17)
    with pytest.raises(ValidationError, match="value 2 of 2 is longer than 16"):
        validate_dataset(ds)


def test_values_read_back_from_a_file() -> None:
    ds = _dataset()
    ds.add_new(PATIENT_AGE, "AS", "45Y")
    del ds.PixelData  # its ambiguous VR cannot be resolved for writing
    buffer = BytesIO()
    ds.save_as(buffer, implicit_vr=False, little_endian=True)
    buffer.seek(0)
    read = pydicom.dcmread(buffer, force=True)
    with pytest.raises(ValidationError, match=r"\(0010,1010\) PatientAge \[AS\]"):
        validate_dataset(read)


def _dataset_from_vector(rows: list[list[object]]) -> Dataset:
    ds = Dataset()
    for tag_text, vr, values in rows:
        assert isinstance(tag_text, str) and isinstance(vr, str) and isinstance(values, list)
        tag = int(tag_text[1:5] + tag_text[6:10], 16)
        ds.add_new(tag, vr, values[0] if len(values) == 1 else values)
    return ds


def test_vector_engine_validate_input_fails_on_patient_age() -> None:
    case = next(c for c in all_cases("engine.json") if c["id"] == "engine-validate-input-fails")
    with pytest.raises(ValidationError) as caught:
        validate_dataset(_dataset_from_vector(case["input_dataset"]), stage="input")
    assert caught.value.element == "(0010,1010) PatientAge"
    assert caught.value.vr == "AS"
    assert "nnnD" in caught.value.reason


def test_vector_engine_input_passes_once_the_age_is_valid() -> None:
    case = next(c for c in all_cases("engine.json") if c["id"] == "engine-validate-input-fails")
    rows = [r if r[0] != "(0010,1010)" else [r[0], r[1], ["100Y"]] for r in case["input_dataset"]]
    validate_dataset(_dataset_from_vector(rows))


def _overlength_cases() -> list[tuple[str, str, int, str]]:
    found = []
    for case in all_cases("cryptohash.json"):
        if "expected_error_if_validating" in case:
            tag = int(case["tag"][1:5] + case["tag"][6:10], 16)
            found.append((case["id"], case["vr"], tag, case["expected_values"][0]))
    return found


@pytest.mark.parametrize(("case_id", "vr", "tag", "value"), _overlength_cases())
def test_vector_cryptohash_outputs_fail_validation(case_id: str, vr: str, tag: int,
                                                   value: str) -> None:
    assert element_problem(vr, [value], tag) is not None, case_id


def test_vector_encrypt_pn_output_fails_validation() -> None:
    # encrypt writes base64(IV || ciphertext): 152 characters for the 88-character PN input
    base64_output = "jJ7zRxhIpEWWIH9qAIHDyg90+s0wl15xgVP" * 4 + "+yt4Agb8=="
    problem = element_problem("PN", [base64_output], 0x0008009C)
    assert problem == "value has a component group longer than 64 characters"
