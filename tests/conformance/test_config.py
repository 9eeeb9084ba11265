"""The reference's configuration vectors (vectors/config.json), run against dcmanon.

Settings-resolution cases compare the effective settings of the rule (only the keys the vector
lists: dcmanon fills a missing key itself). Error cases compare the kind of error, that is which
field the problem is reported at, not the reference's wording. Deviating cases
(docs/deviations.md) are excluded from the conformance tests and asserted as dcmanon behaviour
by ``test_deviation_...`` tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dcmanon import load_config, parse_config
from dcmanon.config.loader import Config
from dcmanon.config.settings import Method, PerturbSettings, RangeType, RedactSettings
from dcmanon.errors import ConfigError
from tests.conformance.vectors import REFERENCE, cases

pytestmark = pytest.mark.conformance

VECTORS = "config.json"

DEVIATING = {
    "leak": "params apply to their own rule only",
    "derived-config-0": "a missing defaultSettings uses the built-in defaults",
    "derived-config-1": "an empty defaultSettings uses the built-in defaults",
    "derived-config-13": "profile is a dcmanon section that is not available yet (an error); "
                         "the reference ignores it",
    "error-file-configuration-miss-rules.json": "refused when read, instead of a crash at the "
                                                "first file",
}

EXPECTED_PROBLEMS: dict[str, list[tuple[str, str]]] = {
    # case id → [(location, a word the message must contain)], in order
    "error-rule-0": [("rules[0].tag", "(0040)")],
    "error-rule-1": [("rules[0].tag", "DD")],
    "error-rule-2": [("rules[0].method", "invalid")],
    "error-rule-3": [("rules[0]", "method")],
    "error-rule-4": [("rules[0]", "tag")],
    "error-rule-5": [("rules[0].setting", "CustomerSetting")],
    "error-file-configuration-unsupported-method.json": [("rules[0].method", "invalid")],
    "error-file-configuration-miss-tag.json": [("rules[0]", "tag")],
    # the reference stops at the first problem; dcmanon reports every one
    "error-file-configuration-invalid-DicomTag.json": [("rules[0].tag", "(0040)"),
                                                       ("rules[2].params", "object")],
    "error-file-configuration-invalid-parameters.json": [("rules[1].params", "object")],
    "derived-config-3": [("defaultSettings", "object")],
    "derived-config-4": [("", "JSON")],
    "derived-config-7": [("rules[0].Tag", '"tag"')],
    "derived-config-8": [("rules[0].setting", '"A"')],
    "derived-config-9": [("defaultSettings.dateShift.dateShiftScope", "SopInstance")],
    "derived-config-10": [("defaultSettings.cryptoHash.cryptoHashType", "Sha256")],
    "derived-config-11": [("defaultSettings.encrypt.encryptKey", "bits")],
    "derived-config-12": [("defaultSettings.perturb.rangeType", "Proportional")],
}


def _not_deviating(kind: str) -> Any:
    def predicate(case: dict[str, Any]) -> bool:
        if case["id"] in DEVIATING:
            return False
        if kind == "resolve":
            return "expected_effective_settings" in case
        if kind == "accepted":
            return case.get("expected") == "accepted"
        return case["kind"] == "error"
    return predicate


def reference_config(case: dict[str, Any]) -> Any:
    """The case's configuration: a dict, JSON text, or base settings + one rule."""
    if "config_base" in case:
        base = json.loads((REFERENCE / case["config_base"]).read_text(encoding="utf-8-sig"))
        return {**base, "rules": [json.loads(case["rule_json"])]}
    return case["config"]


def effective(config: Config, index: int = 0) -> dict[str, Any]:
    """The rule's settings by lower-case JSON key."""
    dumped = config.rules[index].settings.model_dump(by_alias=True, mode="json")
    return {key.lower(): value for key, value in dumped.items()}


def assert_same_settings(got: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        actual = got[key.lower()]
        if isinstance(value, str):
            assert str(actual).lower() == value.lower(), key  # enums: case-insensitive
        else:
            assert actual == value, key


@pytest.mark.parametrize("case", cases(VECTORS, _not_deviating("resolve")))
def test_settings_resolution(case: dict[str, Any]) -> None:
    config = parse_config(reference_config(case))
    rule_json = json.loads(case["rule_json"])
    assert config.rules[0].method is Method.parse(rule_json["method"])
    assert_same_settings(effective(config), case["expected_effective_settings"])


@pytest.mark.parametrize("case", cases(VECTORS, _not_deviating("accepted")))
def test_accepted(case: dict[str, Any]) -> None:
    config = parse_config(case["config"])
    assert len(config.rules) == 1
    assert config.rules[0].method in (Method.KEEP, Method.REDACT)


@pytest.mark.parametrize("case", cases(VECTORS, _not_deviating("error")))
def test_refused(case: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        if "config_file" in case:
            load_config(REFERENCE / case["config_file"])
        else:
            parse_config(reference_config(case))
    problems = caught.value.problems
    expected = EXPECTED_PROBLEMS[case["id"]]
    assert [p.location for p in problems] == [location for location, _ in expected]
    for problem, (_, word) in zip(problems, expected, strict=True):
        assert word in problem.message


def test_every_error_case_has_an_expectation() -> None:
    ids = {param.values[0]["id"] for param in cases(VECTORS, _not_deviating("error"))
           if param.values[0] is not None}
    assert ids <= set(EXPECTED_PROBLEMS)


# --- deviations -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(VECTORS, lambda c: c["id"] == "leak"))
def test_deviation_params_do_not_leak_into_later_rules(case: dict[str, Any]) -> None:
    config = parse_config(case["config"])
    assert effective(config, 0)["span"] == 10
    assert effective(config, 1)["span"] == 1  # the reference gives 10 (expected_..._rule2)
    assert effective(config, 1) != case["expected_effective_settings_rule2"]


@pytest.mark.parametrize("case", cases(VECTORS, lambda c: c["id"] == "derived-config-0"))
def test_deviation_missing_default_settings_uses_built_in_defaults(case: dict[str, Any]) -> None:
    config = parse_config(case["config"])
    assert config.rules[0].settings == RedactSettings()


@pytest.mark.parametrize("case", cases(VECTORS, lambda c: c["id"] == "derived-config-1"))
def test_deviation_empty_default_settings_uses_built_in_defaults(case: dict[str, Any]) -> None:
    config = parse_config(case["config"])
    settings = config.rules[0].settings
    assert isinstance(settings, PerturbSettings)
    assert (settings.span, settings.round_to, settings.range_type) == (1, 2, RangeType.PROPORTIONAL)


@pytest.mark.parametrize("case", cases(VECTORS, lambda c: c["id"] == "derived-config-13"))
def test_deviation_profile_names_a_built_in_profile(case: dict[str, Any]) -> None:
    # The reference ignores "profile"; in dcmanon it names a built-in PS3.15 profile.
    with pytest.raises(ConfigError) as caught:
        parse_config(case["config"])
    assert [p.location for p in caught.value.problems] == ["profile"]
    assert "built-in profile" in caught.value.problems[0].message
    # Without it, the rest (including the parameters section) is accepted.
    without = {k: v for k, v in case["config"].items() if k != "profile"}
    config = parse_config(without)
    assert config.rules[0].method is Method.REDACT


@pytest.mark.parametrize(
    "case", cases(VECTORS, lambda c: c["id"] == "error-file-configuration-miss-rules.json"))
def test_deviation_config_without_rules_is_refused_when_read(case: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(Path(REFERENCE / case["config_file"]))
    assert [p.location for p in caught.value.problems] == ["rules"]
