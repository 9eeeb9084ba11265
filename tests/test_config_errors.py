"""Configuration errors, keys, and what rules select at every depth.

Every problem of a configuration is reported in one pass, with its JSON location and a hint;
keys come from the rule, ``parameters`` or the project secret, and never appear in a message.
Selectors reach nested sequences, private blocks by creator and paths into sequences.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from dcmanon import Anonymizer, load_config, parse_config
from dcmanon.config.loader import Config
from dcmanon.errors import ConfigError, UnsupportedVRError
from dcmanon.keys import KEY_ENV, derive_text_key
from dcmanon.testing import PRIVATE_CREATOR, make_instance, make_patient

PLANTED_KEY = "PLANTED-k3y-0x5EED-never-print-me"


@pytest.fixture(autouse=True)
def _no_project_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def problems(config: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(config, **kwargs)
    return [str(p) for p in caught.value.problems]


def key_of(config: Config, index: int = 0) -> str:
    key = getattr(config.rules[index].settings, "key", None)
    assert isinstance(key, str)
    return key


# --- every problem, in one pass, where it is written ---------------------------------------


def test_unknown_method_names_the_rule_and_suggests() -> None:
    rules = [{"tag": "PatientName", "method": "redact"}] * 3
    rules = [*rules, {"tag": "PatientID", "method": "cryptohsh"}]
    assert problems({"rules": rules}) == [
        'rules[3].method: unknown method "cryptohsh" (did you mean "cryptoHash"?)']


def test_three_mistakes_give_three_problems() -> None:
    config = {
        "rules": [
            {"tag": "PatientName", "method": "cryptohsh"},
            {"tag": "PatientNam", "method": "redact"},
            {"tag": "DS", "method": "perturb", "params": {"spna": 2}},
        ],
        "defaultSettings": {"perturb": {"span": 1}},
    }
    assert problems(config) == [
        'rules[0].method: unknown method "cryptohsh" (did you mean "cryptoHash"?)',
        'rules[1].tag: "PatientNam" is not a tag, masked tag, VR or keyword '
        '(did you mean "PatientName"?)',
        'rules[2].params.spna: unknown setting (did you mean "span"?)',
    ]


def test_the_error_message_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"rulez": [], "rules": [{"tag": "PN", "method": "nope"}]},
                     source="site.json")
    message = str(caught.value)
    assert message.startswith("site.json: 2 problems\n")
    assert 'rulez: unknown section (did you mean "rules"?)' in message
    assert 'rules[0].method: unknown method "nope" (methods: keep, redact' in message


def test_misspelt_rule_field_is_one_problem() -> None:
    assert problems({"rules": [{"Tag": "PatientName", "method": "redact"},
                               {"tag": "PatientName", "methd": "redact"}]}) == [
        'rules[0].Tag: unknown field (did you mean "tag"?)',
        'rules[1].methd: unknown field (did you mean "method"?)',
    ]


def test_setting_problems_are_reported_where_they_are_written_once() -> None:
    config = {
        "rules": [{"tag": "DS", "method": "perturb"}, {"tag": "FD", "method": "perturb"},
                  {"tag": "PN", "method": "redact", "setting": "partial"},
                  {"tag": "AS", "method": "redact", "setting": "partial"},
                  {"tag": "DA", "method": "dateShift", "params": {"dateShiftScope": "Patient"}}],
        "defaultSettings": {"perturb": {"roundTo": 29, "spam": 1}},
        "customSettings": {"partial": {"enablePartialDatesForRedact": "maybe"},
                           "unused": {"span": 2, "colour": "red"}},
    }
    found = problems(config)
    assert [p.split(":")[0] for p in found] == [
        "defaultSettings.perturb.spam",
        "defaultSettings.perturb.roundTo",
        "customSettings.partial.enablePartialDatesForRedact",
        "rules[4].params.dateShiftScope",
        "customSettings.unused.colour",
    ]
    assert "SopInstance" in found[3]


def test_settings_of_methods_without_settings_are_refused() -> None:
    assert problems({"rules": [{"tag": "PN", "method": "remove", "params": {"span": 1}},
                               {"tag": "PN", "method": "keep", "setting": "s"}],
                     "customSettings": {"s": {"span": 1}}}) == [
        "rules[0].params: remove takes no settings",
        "rules[1].setting: keep takes no settings",
    ]


def test_sections_of_the_wrong_type() -> None:
    assert problems({"rules": {}, "defaultSettings": [], "parameters": "k",
                     "unmatched": "redact"}) == [
        "defaultSettings: must be an object of {name: setting object}",
        "parameters: must be an object of {name: value}",
        "rules: must be a list of rule objects",
        'unmatched: must be "keep" or "remove"',
    ]


# --- lenient JSON ----------------------------------------------------------------------------


LENIENT = """\ufeff{
  // the reference reads its configuration with Json.NET, which allows this
  "rules": [
    {"tag": "PatientName", "method": "redact"}, /* a block comment */
    {"tag": "PatientID", "method": "remove",},
  ],
  "defaultSettings": {"redact": {},},
}
"""


def test_comments_trailing_commas_and_bom_in_text() -> None:
    config = parse_config(LENIENT)
    assert [r.method.value for r in config.rules] == ["redact", "remove"]


def test_comments_trailing_commas_and_bom_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(LENIENT.encode("utf-8"))  # the text starts with a BOM
    assert len(load_config(path).rules) == 2


def test_broken_json_is_one_problem_without_location() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('{"rules": [{"tag": "PN", "method": "redact"}')
    [problem] = caught.value.problems
    assert problem.location == ""
    assert "not valid JSON" in problem.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.json")
    assert [p.message for p in caught.value.problems] == ["file not found"]


# --- keys ------------------------------------------------------------------------------------


HASH_RULE = {"tag": "PatientName", "method": "cryptoHash"}


def test_key_from_parameters_literal_file_and_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert key_of(parse_config({"rules": [HASH_RULE],
                                "parameters": {"cryptoHashKey": "literal"}})) == "literal"
    key_file = tmp_path / "hash.key"
    key_file.write_text("from-a-file\n", encoding="utf-8")
    assert key_of(parse_config({"rules": [HASH_RULE],
                                "parameters": {"cryptoHashKeyFile": str(key_file)}})
                  ) == "from-a-file"
    monkeypatch.setenv("SITE_HASH_KEY", "from-the-environment")
    assert key_of(parse_config({"rules": [HASH_RULE],
                                "parameters": {"cryptoHashKeyEnv": "SITE_HASH_KEY"}})
                  ) == "from-the-environment"


def test_parameter_key_problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    empty = tmp_path / "empty.key"
    empty.write_text("\n", encoding="utf-8")
    found = problems({"rules": [HASH_RULE], "parameters": {
        "cryptoHashKeyEnv": "NOT_SET_ANYWHERE",
        "dateShiftKeyFile": str(tmp_path / "absent.key"),
        "encryptKeyFile": str(empty),
        "refreshUIDKey": 5,
        "cryptoHashKy": "k",
    }})
    assert [p.split(":")[0] for p in found] == [
        "parameters.cryptoHashKeyEnv", "parameters.dateShiftKeyFile",
        "parameters.encryptKeyFile", "parameters.refreshUIDKey", "parameters.cryptoHashKy"]
    assert "NOT_SET_ANYWHERE is not set" in found[0]
    assert "empty" in found[2]
    assert 'did you mean "cryptoHashKey"?' in found[4]


def test_encrypt_key_from_parameters_is_checked() -> None:
    found = problems({"rules": [{"tag": "PN", "method": "encrypt"}],
                      "parameters": {"encryptKey": "short"}})
    assert [p.split(":")[0] for p in found] == ["parameters.encryptKey"]
    assert "bits" in found[0]


def test_key_from_project_secret_environment_and_argument(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "secret-from-env")
    config = parse_config({"rules": [HASH_RULE]})
    assert key_of(config) == derive_text_key("secret-from-env", "cryptoHash")
    assert config.generated_keys == ()
    # The secret= argument (from --key-file) wins over the environment.
    config = parse_config({"rules": [HASH_RULE]}, secret="secret-from-argument")
    assert key_of(config) == derive_text_key("secret-from-argument", "cryptoHash")
    # Each method gets its own derived key.
    both = parse_config({"rules": [HASH_RULE, {"tag": "DA", "method": "dateShift"}]},
                        secret="s")
    assert key_of(both, 0) != key_of(both, 1)


def test_key_precedence_rule_then_parameters_then_secret() -> None:
    parameters = {"cryptoHashKey": "from-parameters"}
    in_params = {**HASH_RULE, "params": {"cryptoHashKey": "from-the-rule"}}
    assert key_of(parse_config({"rules": [in_params], "parameters": parameters},
                               secret="s")) == "from-the-rule"
    in_default = {"rules": [HASH_RULE], "parameters": parameters,
                  "defaultSettings": {"cryptoHash": {"cryptoHashKey": "from-the-default"}}}
    assert key_of(parse_config(in_default, secret="s")) == "from-the-default"
    assert key_of(parse_config({"rules": [HASH_RULE], "parameters": parameters},
                               secret="s")) == "from-parameters"
    assert key_of(parse_config({"rules": [HASH_RULE]}, secret="s")) == derive_text_key(
        "s", "cryptoHash")


def test_the_resolved_key_is_the_one_used() -> None:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    config = parse_config({"rules": [HASH_RULE], "parameters": {"cryptoHashKey": "123"}})
    Anonymizer(config).anonymize_dataset(ds)
    expected = hmac.new(b"123", b"Doe^Jane", hashlib.sha256).hexdigest()
    assert ds.get_item("PatientName").value == expected.encode()


def test_no_key_anywhere_gives_one_random_key_per_method_for_the_run() -> None:
    config = parse_config({"rules": [HASH_RULE, {"tag": "PatientID", "method": "cryptoHash"},
                                     {"tag": "DA", "method": "dateShift"},
                                     {"tag": "PN", "method": "redact"}]})
    assert config.generated_keys == ("cryptoHash", "dateShift")
    assert key_of(config, 0) == key_of(config, 1)  # the same pseudonyms within the run
    assert key_of(config, 0) != key_of(config, 2)
    other_run = parse_config({"rules": [HASH_RULE]})
    assert key_of(other_run) != key_of(config, 0)


def test_keys_never_appear_in_configuration_errors(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTED_ENV", PLANTED_KEY)
    key_file = tmp_path / "k.key"
    key_file.write_text(PLANTED_KEY, encoding="utf-8")
    config = {
        "rules": [
            {"tag": "PatientName", "method": "cryptoHash",
             "params": {"cryptoHashKey": PLANTED_KEY, "cryptoHashType": "Md5"}},
            {"tag": "PN", "method": "encrypt", "params": {"encryptKey": PLANTED_KEY}},
            {"tag": "DA", "method": "dateShif", "params": {"dateShiftKey": PLANTED_KEY}},
        ],
        "defaultSettings": {"encrypt": {"encryptKey": PLANTED_KEY + "x"}},
        "parameters": {"encryptKey": PLANTED_KEY[:20], "cryptoHashKeyEnv": "PLANTED_ENV",
                       "dateShiftKeyFile": str(key_file)},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(config, secret=PLANTED_KEY)
    assert len(caught.value.problems) >= 5
    assert PLANTED_KEY[:12] not in str(caught.value)
    # And as JSON text, whose parse errors quote the text around the mistake.
    with pytest.raises(ConfigError) as caught:
        parse_config(json.dumps(config)[:-1] + " oops }")
    assert PLANTED_KEY[:12] not in str(caught.value)


def test_keys_never_appear_in_element_errors() -> None:
    ds = Dataset()
    ds.Rows = 512
    config = parse_config({"rules": [{"tag": "Rows", "method": "cryptoHash",
                                      "params": {"cryptoHashKey": PLANTED_KEY}}]})
    with pytest.raises(UnsupportedVRError) as caught:
        Anonymizer(config).anonymize_dataset(ds)
    assert PLANTED_KEY not in str(caught.value)
    assert '"cryptoHashKey": "***"' in caught.value.rule


# --- what rules select, at every depth -------------------------------------------------------


def written(ds: Dataset) -> Dataset:
    """The dataset as a reader gets it from the bytes written."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def test_pn_rule_reaches_a_person_name_two_sequences_deep() -> None:
    patient = make_patient(0)
    ds = make_instance(patient)
    nested = ds.PerformedProtocolCodeSequence[0].ProtocolContextSequence[0]
    assert str(nested.PersonName) == patient.name
    Anonymizer(parse_config({"rules": [{"tag": "PN", "method": "redact"}]})
               ).anonymize_dataset(ds)
    out = written(ds)
    deep = out.PerformedProtocolCodeSequence[0].ProtocolContextSequence[0]
    assert "PersonName" in deep and str(deep.PersonName) == ""
    assert deep.ValueType == "PNAME"  # the rest of the item is kept
    assert str(out.PatientName) == ""


def test_private_element_selected_by_its_creator() -> None:
    patient = make_patient(0)
    ds = make_instance(patient)
    assert patient.family_name in ds[0x00091001].value
    config = parse_config({"rules": [
        {"tag": f"(0009,xx01:{PRIVATE_CREATOR})", "method": "remove"},
        {"tag": "(0009,xx02:SOME OTHER CREATOR)", "method": "remove"}]})
    Anonymizer(config).anonymize_dataset(ds)
    out = written(ds)
    assert 0x00091001 not in out
    assert out[0x00090010].value == PRIVATE_CREATOR
    assert 0x00091002 in out  # another element of the block, and another creator's selector


def test_path_selector_hits_only_the_nested_element() -> None:
    ds = make_instance(make_patient(0))
    ds.RequestedProcedureID = "TOP-LEVEL-RP"  # the same attribute outside the sequence
    request = ds.RequestAttributesSequence[0]
    others = {kw: request[kw].value for kw in request.dir() if kw != "RequestedProcedureID"}
    config = parse_config({"rules": [{"tag": "RequestAttributesSequence.RequestedProcedureID",
                                      "method": "remove"}]})
    Anonymizer(config).anonymize_dataset(ds)
    out = written(ds)
    item = out.RequestAttributesSequence[0]
    assert "RequestedProcedureID" not in item
    assert {kw: item[kw].value for kw in others} == others
    assert out.RequestedProcedureID == "TOP-LEVEL-RP"


def test_keep_on_a_sequence_still_processes_its_items() -> None:
    ds = make_instance(make_patient(0))
    accession = ds.AccessionNumber
    config = parse_config({"rules": [{"tag": "RequestAttributesSequence", "method": "keep"},
                                     {"tag": "AccessionNumber", "method": "redact"}]})
    Anonymizer(config).anonymize_dataset(ds)
    out = written(ds)
    item = out.RequestAttributesSequence[0]
    assert item.AccessionNumber == "" and out.AccessionNumber == ""
    assert accession not in [item.AccessionNumber, out.AccessionNumber]
    assert item.ScheduledProcedureStepID.startswith("SPS")


@pytest.mark.parametrize("method", ["remove", "redact"])
def test_remove_and_redact_act_on_the_whole_sequence(method: str) -> None:
    ds = make_instance(make_patient(0))
    config = parse_config({"rules": [{"tag": "RequestAttributesSequence", "method": method},
                                     {"tag": "SH", "method": "cryptoHash"}],
                           "parameters": {"cryptoHashKey": "k"}})
    counts = Anonymizer(config).anonymize_dataset(ds)
    out = written(ds)
    if method == "remove":
        assert "RequestAttributesSequence" not in out
    else:
        assert "RequestAttributesSequence" in out and len(out.RequestAttributesSequence) == 0
    assert counts[method] == 1  # the items' elements were not visited


@pytest.mark.parametrize("method", ["cryptoHash", "encrypt", "perturb", "substitute",
                                    "dateShift", "refreshUID"])
def test_other_methods_on_a_sequence_fail_naming_it(method: str) -> None:
    ds = make_instance(make_patient(0))
    config = parse_config({"rules": [{"tag": "ProtocolContextSequence", "method": method}]},
                          secret="s")
    with pytest.raises(UnsupportedVRError) as caught:
        Anonymizer(config).anonymize_dataset(ds)
    error = caught.value
    assert error.vr == "SQ"
    assert error.element == ("(0040,0260) PerformedProtocolCodeSequence[0] > "
                             "(0040,0440) ProtocolContextSequence")
    assert method in error.rule
