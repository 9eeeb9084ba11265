"""The reference's selector vectors (vectors/tag_selectors.json), run against dcmanon.

Each case's ``selector`` goes through :func:`parse_selector`; masked cases also check the
match examples. Deviating cases (docs/deviations.md) are excluded from
the conformance tests and asserted as dcmanon behaviour by ``test_deviation_...`` tests.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from dcmanon import Anonymizer, parse_config
from dcmanon.config.selectors import (
    CreatorSelector,
    ElementRef,
    MaskedSelector,
    SelectorError,
    TagSelector,
    VRSelector,
    parse_selector,
)
from dcmanon.errors import ConfigError
from tests.conformance.vectors import cases, parse_tag

pytestmark = pytest.mark.conformance

VECTORS = "tag_selectors.json"

DEVIATING = {
    "derived-(0010, 0010)": "(0010, 0010) is (0010,0010), not (0010,0001)",
    "derived-(0010,0010)anything": "text after a tag is an error, not ignored",
    "derived-Unknown": "Unknown is not a DICOM keyword: refused",
    "derived-0010xxxx": "0010xxxx is (0010,xxxx), no character is lost",
    "explicit-tag-vs-private-element": "numeric tags match private elements",
}


def _kind(name: str) -> Any:
    def predicate(case: dict[str, Any]) -> bool:
        if case["id"] in DEVIATING or case["id"].startswith("derived-(0029"):
            return False  # the private-creator form has a test of its own
        if name == "error":
            return case["kind"] == "error"
        return case["kind"] != "error" and str(case["expected"]["kind"]).startswith(name)
    return predicate


def ref(tag_text: str, vr: str = "UN", creator: str | None = None) -> ElementRef:
    return ElementRef(parse_tag(tag_text), vr, creator)


@pytest.mark.parametrize("case", cases(VECTORS, _kind("tag")) + cases(VECTORS, _kind("keyword")))
def test_tag_and_keyword(case: dict[str, Any]) -> None:
    assert parse_selector(case["selector"]) == TagSelector(parse_tag(case["expected"]["tag"]))


@pytest.mark.parametrize("case", cases(VECTORS, _kind("vr")))
def test_vr(case: dict[str, Any]) -> None:
    selector = parse_selector(case["selector"])
    assert selector == VRSelector(case["expected"]["vr"])
    if case["expected"]["vr"] == "NONE":  # a pseudo-VR that matches nothing
        assert not any(selector.matches(ElementRef(0x00100010, vr)) for vr in ("PN", "UN", ""))
    else:
        assert selector.matches(ElementRef(0x00100010, case["expected"]["vr"]))
        assert not selector.matches(ElementRef(0x00100010, "LT"))


@pytest.mark.parametrize("case", cases(VECTORS, _kind("masked")))
def test_masked(case: dict[str, Any]) -> None:
    selector = parse_selector(case["selector"])
    assert isinstance(selector, MaskedSelector)
    assert (selector.value, selector.mask) == (int(case["expected"]["value_hex"], 16),
                                               int(case["expected"]["mask_hex"], 16))
    for tag_text in case.get("matches", []):
        assert selector.matches(ref(tag_text)), tag_text
    for tag_text in case.get("does_not_match", []):
        assert not selector.matches(ref(tag_text)), tag_text


@pytest.mark.parametrize("case", cases(VECTORS, _kind("error")))
def test_invalid(case: dict[str, Any]) -> None:
    with pytest.raises(SelectorError):
        parse_selector(case["selector"])
    # In a configuration, the problem is reported at the rule's tag.
    with pytest.raises(ConfigError) as caught:
        parse_config({"rules": [{"tag": case["selector"], "method": "redact"}]})
    assert [p.location for p in caught.value.problems] == ["rules[0].tag"]


@pytest.mark.parametrize("case", cases(VECTORS, lambda c: c["id"].startswith("derived-(0029")))
def test_private_creator_form(case: dict[str, Any]) -> None:
    """``(gggg,00ee:CREATOR)``: element ``ee`` of the block CREATOR reserved, whatever block."""
    selector = parse_selector(case["selector"])
    assert selector == CreatorSelector(0x0029, "SIEMENS CSA HEADER", 0x10)
    assert selector.matches(ref("(0029,1010)", "OB", "SIEMENS CSA HEADER"))
    assert selector.matches(ref("(0029,2010)", "OB", "SIEMENS CSA HEADER"))
    assert not selector.matches(ref("(0029,1010)", "OB", "SIEMENS CSA NON-IMAGE"))
    assert not selector.matches(ref("(0029,1011)", "OB", "SIEMENS CSA HEADER"))
    assert not selector.matches(ref("(0029,0010)", "LO"))  # the creator element itself


# --- deviations -------------------------------------------------------------------------------


def deviating(case_id: str) -> list[Any]:
    return cases(VECTORS, lambda c: c["id"] == case_id)


@pytest.mark.parametrize("case", deviating("derived-(0010, 0010)"))
def test_deviation_space_after_comma_is_the_tag_written(case: dict[str, Any]) -> None:
    assert case["expected"]["tag"] == "(0010,0001)"  # the reference's reading
    assert parse_selector(case["selector"]) == TagSelector(0x00100010)
    assert parse_selector("( 0010 , 0010 )") == TagSelector(0x00100010)


@pytest.mark.parametrize("case", deviating("derived-(0010,0010)anything"))
def test_deviation_trailing_text_after_a_tag_is_an_error(case: dict[str, Any]) -> None:
    with pytest.raises(SelectorError):
        parse_selector(case["selector"])
    with pytest.raises(ConfigError) as caught:
        parse_config({"rules": [{"tag": case["selector"], "method": "redact"}]})
    assert [p.location for p in caught.value.problems] == ["rules[0].tag"]


@pytest.mark.parametrize("case", deviating("derived-Unknown"))
def test_deviation_unknown_is_not_a_keyword(case: dict[str, Any]) -> None:
    with pytest.raises(SelectorError):
        parse_selector(case["selector"])


@pytest.mark.parametrize("case", deviating("derived-0010xxxx"))
def test_deviation_masked_tag_without_comma_keeps_every_character(case: dict[str, Any]) -> None:
    selector = parse_selector(case["selector"])
    assert isinstance(selector, MaskedSelector)
    assert (selector.value, selector.mask) == (0x00100000, 0xFFFF0000)
    assert selector == parse_selector("(0010,xxxx)")
    assert selector.matches(ref("(0010,0010)")) and selector.matches(ref("(0010,2160)"))
    assert not selector.matches(ref("(0011,0010)"))


def _private_dataset() -> Dataset:
    ds = Dataset()
    ds.add_new(0x00130010, "LO", "ACME PRIVATE")
    ds.add_new(0x00131010, "LO", "planted private value")
    ds.add_new(0x00131011, "LO", "another private value")
    return ds


@pytest.mark.parametrize("case", deviating("explicit-tag-vs-private-element"))
def test_deviation_numeric_tag_matches_a_private_element_with_its_creator(
        case: dict[str, Any]) -> None:
    selector = parse_selector(case["selector"])
    assert selector.matches(ElementRef(0x00131010, "LO", "ACME PRIVATE"))
    ds = _private_dataset()
    config = parse_config({"rules": [{"tag": case["selector"], "method": "remove"}]})
    Anonymizer(config).anonymize_dataset(ds)
    assert 0x00131010 not in ds
    assert ds[0x00131011].value == "another private value"
    assert ds[0x00130010].value == "ACME PRIVATE"


@pytest.mark.parametrize("case", deviating("explicit-tag-vs-private-element"))
def test_masked_selectors_match_private_elements_too(case: dict[str, Any]) -> None:
    """The second half of explicit-tag-vs-private-element, which is the reference's too."""
    assert case["expected"]["matches_with_masked_selector_(0013,1010)_or_(0013,10xx)"]
    for text in ("(0013,1010)", "(0013,10xx)"):
        ds = _private_dataset()
        config = parse_config({"rules": [{"tag": text, "method": "redact"}]})
        Anonymizer(config).anonymize_dataset(ds)
        assert ds.get_item(0x00131010).value in (b"", None, "")


def test_deviation_creator_selector_with_absent_creator_matches_nothing() -> None:
    """The reference fails the file when the creator is not in the dataset."""
    ds = _private_dataset()
    config = parse_config({"rules": [
        {"tag": "(0013,0010:SOMEONE ELSE)", "method": "remove"},
        {"tag": "(0029,xxxx:SIEMENS CSA HEADER)", "method": "remove"}]})
    assert Anonymizer(config).anonymize_dataset(ds) == {"keep": 3}
    assert [int(t) for t in list(ds.keys())] == [0x00130010, 0x00131010, 0x00131011]
