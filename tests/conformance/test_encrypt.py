"""encrypt against the reference's vectors (``vectors/encrypt.json``), and ``dcmanon decrypt``.

Library-level cases call :mod:`dcmanon.methods.encrypt` directly; processor cases go through
``parse_config`` → ``Anonymizer.anonymize_dataset``; the CLI case and the decrypt round trip
run the command line on real files.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path
from typing import Any

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments
from pydicom.tag import Tag

from dcmanon import Anonymizer, parse_config
from dcmanon.cli import main
from dcmanon.errors import (
    ConfigError,
    DecryptError,
    UnsupportedVRError,
    ValidationError,
    ValueFormatError,
)
from dcmanon.methods.encrypt import decrypt_bytes, decrypt_text, encrypt_bytes
from tests.conformance.vectors import (
    assert_each_case_taken_once,
    build_dataset,
    cases,
    encapsulated_file,
    parse_tag,
    require_reference,
)
from tests.conformance.vectors import values_of as shared_values_of

VECTORS = "encrypt.json"
KEY = "704ab12c8e3e46d4bea600ef62a6bec7"
BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
SINGLE_VALUED = {"LT", "ST", "UT", "UR"}
UNSUPPORTED = {
    "FD": ["(0012,0052)", "FD", [12345.0]],
    "FL": ["(0010,9431)", "FL", [12345.0]],
    "SL": ["(0018,6039)", "SL", [12345]],
    # The reference builds an SS element on a "US or SS" tag; an explicit SS is the same case.
    "SS(US)": ["(0028,0106)", "SS", [-5]],
    "UL": ["(0040,DB73)", "UL", [12345]],
    "US": ["(0008,1196)", "US", [10]],
    "SQ": ["(0040,0100)", "SQ", [[["(0040,0009)", "SH", ["STEP1"]]],
                                 [["(0040,0009)", "SH", ["STEP2"]]]]],
}


# --- which cases each test takes (every case is taken by exactly one; see the coverage test) --

def _is_processor_text(case: dict[str, Any]) -> bool:
    return case["id"].startswith(("proc-roundtrip-", "proc-overlength-"))


GROUPS = {
    "lib_decrypt": lambda c: c["id"].startswith("lib-decrypt-") and c["kind"] == "exact",
    "lib_roundtrip": lambda c: c["id"].startswith("lib-roundtrip-"),
    "lib_decrypt_error": lambda c: c.get("method") == "decrypt" and c["kind"] == "error",
    "processor_text": _is_processor_text,
    "processor_ob": lambda c: c["id"] == "proc-OB",
    "processor_fragments": lambda c: c["id"] == "proc-fragments",
    "unsupported": lambda c: c["id"].startswith("unsupported-"),
    "cli": lambda c: c.get("level") == "cli",
    "key_size": lambda c: c["id"].startswith("keysize-"),
    "deviation_ascii": lambda c: c["id"] == "ascii-encoding",
    "empty_values": lambda c: c["id"] == "empty-values-skipped",
}


# --- helpers ---

def encrypt_config(selector: str, key: str) -> dict[str, Any]:
    return {"rules": [{"tag": selector, "method": "encrypt"}],
            "defaultSettings": {"encrypt": {"encryptKey": key}}}


def values_of(ds: Dataset, tag: int) -> list[str]:
    """The element's values as pydicom reads them back from the bytes dcmanon wrote.

    PN is read from its bytes: pydicom's PersonName drops trailing ``=`` (empty component
    groups), and Base64 text often ends in ``=``.
    """
    raw = ds.get_item(tag)
    if raw is not None and raw.VR == "PN" and isinstance(raw.value, bytes):
        charset = ds.get("SpecificCharacterSet", "ISO_IR 6")
        text = decode_bytes(raw.value, convert_encodings(charset), {0x5C, 0x3D, 0x5E})
        text = text.rstrip(" ")
        return text.split("\\") if text else []
    return shared_values_of(ds, tag)


def raw_text_dataset(tag_text: str, vr: str, values: list[str]) -> Dataset:
    """A dataset holding one text element as pydicom reads it from a file (raw bytes).

    Used where pydicom's own value classes would alter the input: a PersonName drops trailing
    ``=`` (empty component groups), which the PN vectors have.
    """
    data = "\\".join(values).encode("ascii")
    if len(data) % 2:
        data += b"\0" if vr == "UI" else b" "
    ds = Dataset()
    tag = Tag(parse_tag(tag_text))
    ds[tag] = RawDataElement(tag, vr, len(data), data, 0, False, True)
    return ds


def assert_ciphertext(text: str, key: str, plain: str) -> None:
    """``text`` is Base64(IV ‖ AES-CBC) that decrypts to ``plain`` under ``key``."""
    assert BASE64.match(text), text
    blob = base64.b64decode(text)
    assert len(blob) >= 32 and len(blob) % 16 == 0
    assert decrypt_text(key, text) == plain


# --- library level ---

@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["lib_decrypt"]))
def test_decrypt_reference_ciphertext(case: dict[str, Any]) -> None:
    key = case["settings"]["encryptKey"]
    assert decrypt_text(key, case["ciphertext_base64"]) == case["expected_plaintext_utf8"]


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["lib_roundtrip"]))
def test_encrypt_round_trip(case: dict[str, Any]) -> None:
    key, plain = case["settings"]["encryptKey"], case["input"].encode("utf-8")
    blob = encrypt_bytes(key, plain)
    assert len(blob) == 16 + 16 * (len(plain) // 16 + 1)  # IV + PKCS7-padded blocks
    assert decrypt_bytes(key, blob) == plain
    assert encrypt_bytes(key, plain) != blob  # a fresh IV every time
    if not plain:
        # The reference's string overload gives nothing for "": an empty value stays empty.
        ds = build_dataset([["(0008,1030)", "LO", []]])
        Anonymizer(parse_config(encrypt_config("StudyDescription", key))).anonymize_dataset(ds)
        assert values_of(ds, 0x00081030) == []


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["lib_decrypt_error"]))
def test_decrypt_refuses_bad_input(case: dict[str, Any]) -> None:
    with pytest.raises(DecryptError) as caught:
        decrypt_text(case["settings"]["encryptKey"], case["input_text_utf8"])
    assert case["input_text_utf8"] not in str(caught.value)


# --- processor level, through the engine ---

def _processor_values(case: dict[str, Any]) -> list[str]:
    return [case["input"]] if case["vr"] in SINGLE_VALUED else case["input"].split("\\")


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, _is_processor_text))
def test_processor_text_values_encrypted(case: dict[str, Any]) -> None:
    key, tag = case["settings"]["encryptKey"], parse_tag(case["tag"])
    plain = _processor_values(case)
    ds = raw_text_dataset(case["tag"], case["vr"], plain)
    counts = Anonymizer(parse_config(encrypt_config(case["tag"].split(")")[0] + ")", key))
                        ).anonymize_dataset(ds)
    assert counts == {"encrypt": 1}
    out = values_of(ds, tag)
    assert len(out) == len(plain)
    for cipher, value in zip(out, plain, strict=True):
        assert cipher != value
        assert_ciphertext(cipher, key, value)
    assert "\\".join(decrypt_text(key, v) for v in out) == case["input"]


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(
    VECTORS, lambda c: _is_processor_text(c) and "expected_error_if_validating" in c))
def test_processor_overlength_fails_output_validation(case: dict[str, Any]) -> None:
    key = case["settings"]["encryptKey"]
    ds = raw_text_dataset(case["tag"], case["vr"], _processor_values(case))
    config = parse_config(encrypt_config(case["tag"].split(")")[0] + ")", key))
    with pytest.raises(ValidationError) as caught:
        Anonymizer(config, validate_output=True).anonymize_dataset(ds)
    assert caught.value.stage == "output"
    assert caught.value.vr == case["vr"]


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["processor_ob"]))
def test_processor_ob_raw_blob(case: dict[str, Any]) -> None:
    key, tag = case["settings"]["encryptKey"], parse_tag(case["tag"])
    ds = build_dataset([[case["tag"], case["vr"], case["input_bytes_hex"]]])
    Anonymizer(parse_config(encrypt_config("PixelData", key))).anonymize_dataset(ds)
    blob = bytes(ds[tag].value)
    assert ds[tag].VR == "OB"
    assert len(blob) == 32  # IV + one block, raw bytes (no Base64)
    assert decrypt_bytes(key, blob) == bytes.fromhex(case["input_bytes_hex"])


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["processor_fragments"]))
def test_processor_fragments_each_encrypted(case: dict[str, Any], tmp_path: Path) -> None:
    key = case["settings"]["encryptKey"]
    fragments = [f.encode("utf-8") for f in case["input_fragments_utf8"]]
    encapsulated_file(tmp_path / "in.dcm", fragments)
    result = Anonymizer(parse_config(encrypt_config("PixelData", key))).anonymize_file(
        tmp_path / "in.dcm", tmp_path / "out.dcm")
    assert result.status == "done", result.error
    items = list(generate_fragments(pydicom.dcmread(tmp_path / "out.dcm").PixelData))
    assert items[0] == b""  # an empty Basic Offset Table, then one blob per fragment
    assert [decrypt_bytes(key, f) for f in items[1:]] == fragments
    assert items[1] != items[2]  # fresh IV per fragment


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["unsupported"]))
def test_unsupported_vr_fails(case: dict[str, Any]) -> None:
    spec = UNSUPPORTED[case["vr"]]
    ds = build_dataset([spec])
    config = parse_config(encrypt_config(spec[0], case["settings"]["encryptKey"]))
    with pytest.raises(UnsupportedVRError) as caught:
        Anonymizer(config).anonymize_dataset(ds)
    assert caught.value.vr == spec[1]


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["cli"]))
def test_cli_unsupported_vr_fails_the_file(case: dict[str, Any], tmp_path: Path) -> None:
    """``US`` encrypt on a real file: the file fails (exit 1), names the VR, writes nothing."""
    reference = require_reference()
    source, target = reference / case["input_file"], tmp_path / "out.dcm"
    config = reference / case["config"]
    result = Anonymizer(parse_config(config.read_text(encoding="utf-8"))).anonymize_file(
        source, target)
    assert result.status == "failed"
    assert result.error_class == "UnsupportedVRError"
    assert "[US]" in (result.error or "")
    assert not target.exists()
    cli = CliRunner().invoke(main, ["-i", str(source), "-o", str(target), "-c", str(config)])
    assert cli.exit_code == 1
    assert "[US]" in cli.output
    assert not target.exists()
    assert not list(tmp_path.iterdir())  # no temporary file left behind


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["key_size"]))
def test_key_size(case: dict[str, Any]) -> None:
    key = case["settings"]["encryptKey"]
    assert len(key.encode("utf-8")) * 8 == case["key_bits_utf8"]
    raw = encrypt_config("StudyDescription", key)
    if case["kind"] == "error":
        with pytest.raises(ConfigError) as caught:
            parse_config(raw)
        assert str(case["key_bits_utf8"]) in str(caught.value)
        assert key not in str(caught.value)
        return
    assert case["expected"] == "accepted"
    ds = build_dataset([["(0008,1030)", "LO", ["Knee"]]])
    Anonymizer(parse_config(raw)).anonymize_dataset(ds)
    assert_ciphertext(values_of(ds, 0x00081030)[0], key, "Knee")


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["deviation_ascii"]))
def test_deviation_encrypt_non_ascii_is_utf8_and_decrypts_to_original(
        case: dict[str, Any]) -> None:
    """Reference: non-ASCII characters become ``?`` before encryption (decrypts to ``??``).
    dcmanon encrypts UTF-8, so the original comes back."""
    key = case["settings"]["encryptKey"]
    ds = build_dataset([["(0008,0005)", "CS", ["ISO_IR 192"]],
                        ["(0008,1030)", case["vr"], [case["input"]]]])
    Anonymizer(parse_config(encrypt_config("StudyDescription", key))).anonymize_dataset(ds)
    cipher = values_of(ds, 0x00081030)[0]
    assert_ciphertext(cipher, key, case["input"])
    assert decrypt_text(key, cipher) != "?" * len(case["input"])


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["empty_values"]))
def test_empty_values_are_dropped(case: dict[str, Any]) -> None:
    key = case["settings"]["encryptKey"]
    ds = build_dataset([["(0008,1030)", case["vr"], case["input_values"]],
                        ["(0010,1000)", case["vr"], ["", ""]]])
    config = parse_config({"rules": [{"tag": case["vr"], "method": "encrypt"}],
                           "defaultSettings": {"encrypt": {"encryptKey": key}}})
    Anonymizer(config).anonymize_dataset(ds)
    out = values_of(ds, 0x00081030)
    non_empty = [v for v in case["input_values"] if v]
    assert [decrypt_text(key, v) for v in out] == non_empty
    assert values_of(ds, 0x00101000) == ["", ""]  # all empty: left as it was


def test_every_vector_case_is_exercised() -> None:
    assert_each_case_taken_once(VECTORS, GROUPS)


# --- beyond the vectors ---

def test_encrypt_key_from_parameters_with_a_bad_size_fails_the_file_cleanly() -> None:
    """A key that reaches the method without the settings' size check fails the file with a
    typed error (not a crash from the AES library), and the key is never shown."""
    ds = build_dataset([["(0008,1030)", "LO", ["Knee"]]])
    with pytest.raises((ConfigError, ValueFormatError)) as caught:
        config = parse_config({"rules": [{"tag": "StudyDescription", "method": "encrypt"}],
                               "parameters": {"encryptKey": "short-key"}})
        Anonymizer(config).anonymize_dataset(ds)
    assert "short-key" not in str(caught.value)
    assert values_of(ds, 0x00081030) == ["Knee"]


def test_decrypt_with_a_key_of_bad_size_is_a_decrypt_error() -> None:
    with pytest.raises(DecryptError):
        decrypt_bytes("123", encrypt_bytes(KEY, b"abc"))


def test_decrypt_with_the_wrong_key_is_a_decrypt_error() -> None:
    blob = encrypt_bytes(KEY, b"This is for test")
    with pytest.raises(DecryptError):
        # A wrong key almost always breaks the padding; try several so chance cannot pass it.
        for other in ("0" * 32, "1" * 32, "2" * 32, "3" * 32):
            assert decrypt_bytes(other, blob) != b"This is for test"


# --- dcmanon decrypt on a real file ---

ENCRYPTED = {
    "PatientName": "Müller^Jürgen=山田^太郎",
    "PatientID": "PAT-ÆŊŋß",
    "StudyDescription": "测试 Ωmega",
    "InstitutionName": "Hôpital Saint-Éloi",
    "AccessionNumber": "A12345",
}


def _source_file(path: Path) -> Path:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword, value in ENCRYPTED.items():
        setattr(ds, keyword, value)
    ds.OtherPatientIDs = ["ID-1", "ID-ü2"]
    ds.save_as(path, enforce_file_format=True)
    return path


def _write_config(path: Path, key: str) -> Path:
    rules = [{"tag": k, "method": "encrypt"} for k in (*ENCRYPTED, "OtherPatientIDs")]
    path.write_text(json.dumps({"rules": rules,
                                "defaultSettings": {"encrypt": {"encryptKey": key}}}),
                    encoding="utf-8")
    return path


def test_cli_decrypt_restores_encrypted_values(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DCMANON_KEY", raising=False)
    source = _source_file(tmp_path / "in.dcm")
    config = _write_config(tmp_path / "config.json", KEY)
    encrypted, restored = tmp_path / "enc.dcm", tmp_path / "back.dcm"
    runner = CliRunner()

    run = runner.invoke(main, ["-i", str(source), "-o", str(encrypted), "-c", str(config)])
    assert run.exit_code == 0, run.output
    original, enc = pydicom.dcmread(source), pydicom.dcmread(encrypted)
    for keyword, value in ENCRYPTED.items():
        cipher = values_of(enc, enc.data_element(keyword).tag)
        assert cipher != [value]
        assert_ciphertext(cipher[0], KEY, value)
    assert list(enc.OtherPatientIDs) != list(original.OtherPatientIDs)
    assert enc.Rows == original.Rows and enc.PixelData == original.PixelData

    back = runner.invoke(main, ["decrypt", "-i", str(encrypted), "-o", str(restored),
                                "-c", str(config)])
    assert back.exit_code == 0, back.output
    result = pydicom.dcmread(restored)
    for keyword, value in ENCRYPTED.items():
        assert values_of(result, result.data_element(keyword).tag) == [value]
    assert list(result.OtherPatientIDs) == ["ID-1", "ID-ü2"]
    assert "DataSetTrailingPadding" not in result  # dropped from every output
    for element in original:
        if element.tag.element and element.keyword not in (
                *ENCRYPTED, "OtherPatientIDs", "DataSetTrailingPadding"):
            assert result[element.tag].value == element.value, element.keyword


def test_cli_decrypt_with_another_key_fails_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DCMANON_KEY", raising=False)
    source = _source_file(tmp_path / "in.dcm")
    encrypted, restored = tmp_path / "enc.dcm", tmp_path / "back.dcm"
    runner = CliRunner()
    run = runner.invoke(main, ["-i", str(source), "-o", str(encrypted),
                               "-c", str(_write_config(tmp_path / "a.json", KEY))])
    assert run.exit_code == 0, run.output
    other = _write_config(tmp_path / "b.json", "0123456789abcdef0123456789abcdef")
    back = runner.invoke(main, ["decrypt", "-i", str(encrypted), "-o", str(restored),
                                "-c", str(other)])
    assert back.exit_code == 1
    assert not restored.exists()
    for value in ENCRYPTED.values():
        assert value not in back.output


def test_base64_alphabet_only() -> None:
    """Encrypted text values are standard Base64 with padding (what the reference writes)."""
    for size in range(0, 40):
        text = base64.b64encode(encrypt_bytes(KEY, b"x" * size)).decode("ascii")
        assert BASE64.match(text)
        assert len(binascii.a2b_base64(text)) % 16 == 0
