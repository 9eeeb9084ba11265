"""cryptoHash against the reference's vectors (``vectors/cryptohash.json``).

Function-level cases call :func:`dcmanon.methods.cryptohash.hash_text`; processor and engine
cases go through the public path: ``parse_config`` → ``Anonymizer.anonymize_dataset`` on a
dataset built from the case (config binding, engine, element decode and encode).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.encaps import generate_fragments

from dcmanon import Anonymizer, parse_config
from dcmanon.config.settings import CryptoHashSettings
from dcmanon.errors import ConfigError, UnsupportedVRError, ValidationError, ValueFormatError
from dcmanon.methods.base import MethodError
from dcmanon.methods.cryptohash import hash_text, same_length_digits
from tests.conformance.vectors import (
    REFERENCE,
    assert_each_case_taken_once,
    build_dataset,
    cases,
    encapsulated_file,
    parse_tag,
    values_of,
)

VECTORS = "cryptohash.json"


# --- which cases each test takes (every case is taken by exactly one; see the last test) ---

def _is_function_exact(case: dict[str, Any]) -> bool:
    return case.get("level") == "function" and case["kind"] == "exact"


def _is_function_error(case: dict[str, Any]) -> bool:
    return case.get("level") == "function" and case["kind"] == "error"


def _is_text_processor(case: dict[str, Any]) -> bool:
    return case.get("level") == "processor" and "expected_values" in case


def _is_validating(case: dict[str, Any]) -> bool:
    return _is_text_processor(case) and "expected_error_if_validating" in case


def _is_unsupported(case: dict[str, Any]) -> bool:
    return case["id"].startswith("unsupported-")


GROUPS = {
    "function_exact": _is_function_exact,
    "function_error": _is_function_error,
    "text_processor": _is_text_processor,
    "ob_bytes": lambda c: c["id"] == "proc-OB-bytes",
    "fragments": lambda c: c["id"] == "proc-fragments",
    "unsupported": _is_unsupported,
    "engine": lambda c: c.get("level") == "engine",
}


# --- helpers ---

def selector(case: dict[str, Any]) -> str:
    """The rule selector of a case: its numeric tag, ``(gggg,eeee)``."""
    return case["tag"].split(")")[0] + ")"


def hash_config(rules: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    return {"rules": rules, "defaultSettings": {"cryptoHash": settings}}




def unsupported_element(case: dict[str, Any]) -> list[Any]:
    """A ``[tag, VR, values]`` spec for an unsupported-VR case (its input text, typed)."""
    vr, text = case["vr"], case["input"]
    if vr == "SQ":
        items = [[["(0040,0009)", "SH", ["STEP1"]]], [["(0040,0009)", "SH", ["STEP2"]]]]
        return [case["tag"], "SQ", items]
    parse = float if vr in ("FD", "FL") else int
    return [case["tag"], vr, [parse(v) for v in text.split("\\")]]


# --- the vectors ---

@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, _is_function_exact))
def test_function_hash_matches_reference(case: dict[str, Any]) -> None:
    settings = CryptoHashSettings.from_json(case["settings"])
    assert isinstance(settings, CryptoHashSettings)
    assert hash_text(settings, case["input"]) == case["expected"]


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, _is_function_error))
def test_function_hash_error(case: dict[str, Any]) -> None:
    """matchInputStringLength has no same-length digits for an empty value (reference: error)."""
    settings = CryptoHashSettings.from_json(case["settings"])
    assert isinstance(settings, CryptoHashSettings)
    assert settings.match_length
    with pytest.raises(MethodError):
        hash_text(settings, case["input"])
    # In the engine the same failure fails the file with a value-format error.
    ds = build_dataset([["(0008,0050)", "SH", ["A", case["input"]]]])
    config = parse_config(hash_config([{"tag": "AccessionNumber", "method": "cryptoHash"}],
                                      case["settings"]))
    with pytest.raises(ValueFormatError) as caught:
        Anonymizer(config).anonymize_dataset(ds)
    assert "AccessionNumber" in str(caught.value)


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, _is_text_processor))
def test_processor_text_values(case: dict[str, Any]) -> None:
    ds = build_dataset([[case["tag"], case["vr"], case["input_values"]]])
    config = parse_config(hash_config([{"tag": selector(case), "method": "cryptoHash"}],
                                      case["settings"]))
    counts = Anonymizer(config).anonymize_dataset(ds)
    assert counts == {"cryptoHash": 1}
    assert values_of(ds, parse_tag(case["tag"])) == case["expected_values"]
    assert case["vr"] == ds[parse_tag(case["tag"])].VR


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, _is_validating))
def test_processor_output_fails_validation(case: dict[str, Any]) -> None:
    """Hex digests break AE/AS/CS/DS/IS/SH/UI rules: --validateOutput refuses the dataset."""
    ds = build_dataset([[case["tag"], case["vr"], case["input_values"]]])
    config = parse_config(hash_config([{"tag": selector(case), "method": "cryptoHash"}],
                                      case["settings"]))
    with pytest.raises(ValidationError) as caught:
        Anonymizer(config, validate_output=True).anonymize_dataset(ds)
    assert caught.value.stage == "output"
    message = str(caught.value)
    for value in (*case["input_values"], *case["expected_values"]):
        if len(value) > 3:  # shorter ones ("0") occur in any tag number
            assert value not in message  # errors never carry values


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["ob_bytes"]))
def test_processor_ob_bytes_replaced_by_raw_digest(case: dict[str, Any]) -> None:
    ds = build_dataset([[case["tag"], case["vr"], case["input_bytes_hex"]]])
    config = parse_config(hash_config([{"tag": selector(case), "method": "cryptoHash"}],
                                      case["settings"]))
    Anonymizer(config).anonymize_dataset(ds)
    element = ds[parse_tag(case["tag"])]
    assert element.VR == "OB"
    assert bytes(element.value).hex() == case["expected_bytes_hex"]


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["fragments"]))
def test_processor_fragments_each_hashed(case: dict[str, Any], tmp_path: Path) -> None:
    """Each fragment of encapsulated pixel data is replaced by its digest (file level)."""
    source = encapsulated_file(tmp_path / "in.dcm",
                                [bytes.fromhex(f) for f in case["input_fragments_hex"]])
    config = parse_config(hash_config([{"tag": selector(case), "method": "cryptoHash"}],
                                      case["settings"]))
    result = Anonymizer(config).anonymize_file(source, tmp_path / "out.dcm")
    assert result.status == "done", result.error
    out = pydicom.dcmread(tmp_path / "out.dcm")
    items = [f.hex() for f in generate_fragments(out.PixelData)]
    assert items[0] == ""  # an empty Basic Offset Table, then the hashed fragments
    assert items[1:] == case["expected_fragments_hex"]


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, _is_unsupported))
def test_unsupported_vr_fails(case: dict[str, Any]) -> None:
    ds = build_dataset([unsupported_element(case)])
    config = parse_config(hash_config([{"tag": selector(case), "method": "cryptoHash"}],
                                      case["settings"]))
    with pytest.raises(UnsupportedVRError) as caught:
        Anonymizer(config).anonymize_dataset(ds)
    assert caught.value.vr == case["vr"]
    assert "cryptoHash" in caught.value.rule


@pytest.mark.conformance
@pytest.mark.parametrize("case", cases(VECTORS, GROUPS["engine"]))
def test_engine_with_reference_config(case: dict[str, Any]) -> None:
    config = parse_config((REFERENCE / case["config"]).read_text(encoding="utf-8"))
    ds = build_dataset([[case["tag"], case["vr"], case["input_values"]]])
    Anonymizer(config, validate_output=True).anonymize_dataset(ds)
    assert values_of(ds, parse_tag(case["tag"])) == case["expected_values"]


def test_every_vector_case_is_exercised() -> None:
    assert_each_case_taken_once(VECTORS, GROUPS)


# --- beyond the vectors: behaviour the vectors imply ---

def test_hash_types_give_digests_of_their_size() -> None:
    for name, size in (("Sha256", 64), ("Sha384", 96), ("Sha512", 128)):
        settings = CryptoHashSettings.from_json({"cryptoHashKey": "123", "cryptoHashType": name})
        assert isinstance(settings, CryptoHashSettings)
        digest = hash_text(settings, "TEST")
        assert len(digest) == size
        assert digest == digest.lower()


@pytest.mark.parametrize("name", ["Md5", "Sha1", "sha1"])
def test_unsupported_hash_functions_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        parse_config(hash_config([{"tag": "PatientName", "method": "cryptoHash"}],
                                 {"cryptoHashKey": "123", "cryptoHashType": name}))


def test_same_length_digits_limits() -> None:
    """18 characters is the longest value the reference can match (19 overflows a long)."""
    digest = bytes(range(32))
    assert len(same_length_digits(digest, 18)) == 18
    with pytest.raises(MethodError):
        same_length_digits(digest, 19)


def test_match_length_counts_utf16_units_as_the_reference() -> None:
    """.NET string length counts a character outside the BMP as two (a surrogate pair)."""
    settings = CryptoHashSettings.from_json({"cryptoHashKey": "123",
                                             "matchInputStringLength": True})
    assert isinstance(settings, CryptoHashSettings)
    assert len(hash_text(settings, "a\U0001F600")) == 3
    assert hash_text(settings, "a\U0001F600").isdigit()


def test_hash_of_nested_and_multi_valued_elements_is_per_value() -> None:
    """Rules reach into sequences (a documented deviation), and each value is hashed alone."""
    item = [["(0010,0010)", "PN", ["Test", "Test"]]]
    ds = build_dataset([["(0008,1115)", "SQ", [item]], ["(0010,0010)", "PN", ["Test"]]])
    config = parse_config(hash_config([{"tag": "PatientName", "method": "cryptoHash"}],
                                      {"cryptoHashKey": "123"}))
    Anonymizer(config).anonymize_dataset(ds)
    top = values_of(ds, 0x00100010)
    nested = values_of(ds[0x00081115].value[0], 0x00100010)
    assert top == ["d61ffce34b0192c52d7a67215be73f1e2d640d01383dd8115170b9bd20779a91"]
    assert nested == top * 2


def test_deviation_cryptohash_no_key_one_random_key_per_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Reference: no key → a random key per rule. dcmanon: one random key per method for the
    run (so all rules agree), reported in ``generated_keys`` (the CLI warns)."""
    monkeypatch.delenv("DCMANON_KEY", raising=False)
    raw = {"rules": [{"tag": "PatientName", "method": "cryptoHash"},
                     {"tag": "OtherPatientNames", "method": "cryptoHash"}]}

    def run(config: Any) -> tuple[list[str], list[str]]:
        ds = build_dataset([["(0010,0010)", "PN", ["Doe^Jane"]],
                            ["(0010,1001)", "PN", ["Doe^Jane"]]])
        Anonymizer(config).anonymize_dataset(ds)
        return values_of(ds, 0x00100010), values_of(ds, 0x00101001)

    first = parse_config(raw)
    assert first.generated_keys == ("cryptoHash",)
    name, other = run(first)
    assert name == other
    assert name != ["Doe^Jane"]
    again, _ = run(parse_config(raw))
    assert again != name  # another run, another random key
    keyed = parse_config(raw, secret="project secret")
    assert keyed.generated_keys == ()
    assert run(keyed)[0] == run(parse_config(raw, secret="project secret"))[0]

