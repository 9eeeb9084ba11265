"""Region rules: the stock CTP script and deid recipes parse completely, and each tool's way of
combining conditions is kept (one test per semantic rule); the configuration's ``pixels``
section is checked with JSON locations."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from dcmanon import parse_config
from dcmanon.errors import ConfigError
from dcmanon.pixels.boxes import Box
from dcmanon.pixels.ctp import ScriptError, parse_ctp_script
from dcmanon.pixels.deid import RecipeError, parse_deid_recipe
from dcmanon.pixels.library import default_library, rules_from_json, rules_to_json
from dcmanon.pixels.rules import (
    DatasetHeader,
    Rect,
    RuleSet,
    mapping_header,
    matched_boxes,
    resolve,
)
from dcmanon.pixels.setup import build_cleaner

# The stock libraries, copied into the repository by tools/generate_test_data.py.
STOCK = Path(__file__).resolve().parent / "data" / "pixels"
CTP_SCRIPT = STOCK / "ctp" / "DicomPixelAnonymizer.script"
DEID = STOCK / "deid"
KEY = "pixel-rules-test-key-of-more-than-32-characters"


def _stock(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _boxes(sets: list[RuleSet], values: dict[str, str], columns: int = 640,
           rows: int = 480) -> list[Box]:
    return matched_boxes(sets, mapping_header(values), columns, rows)[0]


# -- CTP ---------------------------------------------------------------------------------------

def test_the_stock_ctp_script_parses_completely() -> None:
    text = _stock(CTP_SCRIPT)
    rules = parse_ctp_script(text, "stock")
    assert len(rules.rules) == text.count("{") == 52
    rectangles = len(re.findall(r"\(\s*-?\d+\s*,\s*-?\d+\s*,\s*-?\d+\s*,\s*-?\d+\s*\)", text))
    assert sum(len(rule.rects) for rule in rules.rules) == rectangles
    assert all(rule.rects for rule in rules.rules)
    assert rules.first_match


def test_ctp_first_matching_signature_wins() -> None:
    rules = parse_ctp_script("""
        Specific { Manufacturer.containsIgnoreCase("acme") * Rows.equals("480") }
          (0,0,640,30)
        General { Manufacturer.containsIgnoreCase("acme") }
          (0,450,640,30)
    """)
    found = _boxes([rules], {"Manufacturer": "ACME Imaging", "Rows": "480"})
    assert found == [Box(0, 0, 640, 30)]
    assert _boxes([rules], {"Manufacturer": "ACME Imaging", "Rows": "600"}, rows=600) == [
        Box(0, 450, 640, 480)]


def test_ctp_negative_offsets_count_from_the_right_and_bottom() -> None:
    rules = parse_ctp_script('{ Modality.equals("US") } (-100,-20,100,20) (10,-30,50,10)')
    assert sorted(_boxes([rules], {"Modality": "US"})) == [
        Box(10, 450, 60, 460), Box(540, 460, 640, 480)]


def test_ctp_and_binds_before_or_and_not_negates() -> None:
    rules = parse_ctp_script('{ Modality.equals("US") + Modality.equals("XA") * '
                             '!Manufacturer.startsWith("GE") } (0,0,10,10)')
    assert _boxes([rules], {"Modality": "US", "Manufacturer": "GE"})  # US alone suffices
    assert _boxes([rules], {"Modality": "XA", "Manufacturer": "Philips"})
    assert not _boxes([rules], {"Modality": "XA", "Manufacturer": "GE Healthcare"})
    grouped = parse_ctp_script('{ (Modality.equals("US") + Modality.equals("XA")) * '
                               '!Manufacturer.startsWith("GE") } (0,0,10,10)')
    assert not _boxes([grouped], {"Modality": "US", "Manufacturer": "GE"})


def test_ctp_methods_and_tags() -> None:
    rules = parse_ctp_script('{ [0028,0010].isGreaterThan("400") * '
                             'ManufacturerModelName.matches("LOGIQ[0-9]+") } (0,0,5,5)')
    assert _boxes([rules], {"Rows": "480", "ManufacturerModelName": "LOGIQ9"})
    assert not _boxes([rules], {"Rows": "300", "ManufacturerModelName": "LOGIQ9"})
    assert not _boxes([rules], {"Rows": "480", "ManufacturerModelName": "LOGIQ9 pro"})


def test_ctp_unknown_keyword_never_matches_and_bad_scripts_name_the_line() -> None:
    rules = parse_ctp_script('{ Manfacturer.contains("GE") } (0,0,5,5)')
    assert not _boxes([rules], {"Manufacturer": "GE"})
    with pytest.raises(ScriptError, match="line 2"):
        parse_ctp_script('x\n{ Modality.equals("US") * }\n(0,0,5,5)')
    with pytest.raises(ScriptError, match="never closed"):
        parse_ctp_script('{ Modality.equals("US") (0,0,5,5)')


# -- deid --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "labels"), [
    ("deid.dicom", 118), ("deid.dicom.ultrasound", 3), ("deid.dicom.xray.chest", 4)])
def test_the_stock_deid_recipes_parse_completely(name: str, labels: int) -> None:
    text = _stock(DEID / name)
    sets = parse_deid_recipe(text, name)
    assert sum(len(s.rules) for s in sets) == labels == len(
        re.findall(r"^LABEL", text, re.MULTILINE))
    coordinates = len(re.findall(r"^\s*(?:ctp|keep)?coordinates", text, re.MULTILINE))
    assert sum(len(rule.regions) for s in sets for rule in s.rules) == coordinates


def test_deid_lines_are_anded_whatever_their_leading_operator() -> None:
    # The chest recipe's LABEL reads as "(Modality CR|DX|PR or StudyDescription DX|PR) and
    # (CHEST in StudyDescription or BodyPartExamined)" in deid's docs, but deid's code ANDs its
    # lines and reads all of it left to right: a CR without DX/PR in StudyDescription does
    # not match (unless the last "|| BodyPartExamined CHEST" holds).
    sets = parse_deid_recipe("""%filter graylist
LABEL Chest
  contains Modality CR|DX|PR
  || contains StudyDescription DX|PR
  + contains StudyDescription CHEST || contains BodyPartExamined CHEST
  coordinates 0,0,10,10
""")
    assert not _boxes(sets, {"Modality": "CR", "StudyDescription": "Chest",
                             "BodyPartExamined": "ABDOMEN"})
    assert _boxes(sets, {"Modality": "MR", "StudyDescription": "Head",
                         "BodyPartExamined": "CHEST"})
    assert _boxes(sets, {"Modality": "CR", "StudyDescription": "PR Chest"})


def test_deid_operators_in_a_line_apply_left_to_right() -> None:
    sets = parse_deid_recipe("""%filter graylist
LABEL Order
  contains Modality US || contains Manufacturer ACME + contains Rows 999
  coordinates 0,0,10,10
""")
    # (US or ACME) and 999: false; with precedence it would be US or (ACME and 999): true.
    assert not _boxes(sets, {"Modality": "US", "Manufacturer": "Other", "Rows": "480"})
    assert _boxes(sets, {"Modality": "CT", "Manufacturer": "acme", "Rows": "999"})


def test_deid_contains_is_a_lower_cased_search_and_every_label_applies() -> None:
    sets = parse_deid_recipe("""%filter graylist
LABEL One
  contains Manufacturer ge|siemens
  coordinates 0,0,10,10
LABEL Two
  equals Modality us
  + notcontains ManufacturerModelName ^x
  ctpcoordinates 20,20,5,5
%filter blacklist
LABEL Three
  missing PatientComments
  coordinates 100,100,110,120
""")
    found = _boxes(sets, {"Manufacturer": "GE Healthcare", "Modality": "US",
                          "ManufacturerModelName": "LOGIQ"})
    assert sorted(found) == [Box(0, 0, 10, 10), Box(20, 20, 25, 25), Box(100, 100, 110, 120)]
    assert len(_boxes(sets, {"Manufacturer": "Philips", "Modality": "US",
                             "ManufacturerModelName": "xario", "PatientComments": ""})) == 0


def test_deid_keepcoordinates_from_ultrasound_regions() -> None:
    sets = parse_deid_recipe(_stock(DEID / "deid.dicom.ultrasound"))
    ds = Dataset()
    ds.Modality = "US"
    region = Dataset()
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 100, 50
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = 539, 429
    ds.SequenceOfUltrasoundRegions = [region]
    boxes, _ = matched_boxes(sets, DatasetHeader(ds), 640, 480)
    mask = np.zeros((480, 640), dtype=int)
    for b in boxes:
        mask[b.top:b.bottom, b.left:b.right] += 1
    assert mask.max() == 1  # no overlaps
    assert not mask[50:430, 100:540].any()
    assert mask.sum() == 640 * 480 - 440 * 380
    # Without regions, deid's ultrasound recipe blanks the whole image.
    del ds.SequenceOfUltrasoundRegions
    assert matched_boxes(sets, DatasetHeader(ds), 640, 480)[0] == [Box(0, 0, 640, 480)]


def test_resolve_applies_steps_in_order() -> None:
    steps = [(False, Box(0, 0, 10, 10)), (True, Box(2, 2, 8, 8)), (False, Box(4, 4, 6, 6))]
    boxes = resolve(steps, 10, 10)
    assert sum(b.area for b in boxes) == 100 - 36 + 4


# -- the configuration and the default library ------------------------------------------------

def test_configuration_rules_with_frames_keep_and_errors() -> None:
    rules = rules_from_json([
        {"name": "top", "when": [{"tag": "Modality", "equals": "US"},
                                 {"any": [{"tag": "(0008,0070)", "contains": "acme",
                                           "ignoreCase": True},
                                          {"tag": "Rows", "lessThan": 100}]}],
         "blank": [[0, 0, 64, 8], [-10, -5, 10, 5]], "frames": [0, 2]},
        {"keep": [[8, 8, 48, 48]], "when": {"tag": "ImageType", "search": "SCREEN ?SAVE"}},
    ], "configuration")
    boxes = _boxes([rules], {"Modality": "US", "Manufacturer": "ACME"}, 64, 64)
    assert sorted(boxes) == [Box(0, 0, 64, 8, frozenset({0, 2})),
                             Box(54, 59, 64, 64, frozenset({0, 2}))]
    kept = _boxes([rules], {"ImageType": "DERIVED\\SCREEN SAVE"}, 64, 64)
    assert sum(b.area for b in kept) == 64 * 64 - 48 * 48
    assert rules_from_json(rules_to_json(rules), "again").rules == rules.rules
    with pytest.raises(ConfigError, match=r"pixels\.rules\[0\]\.when\.tag: not a DICOM"):
        build_cleaner(parse_config({"profile": "basic", "pixels": {"rules": [
            {"when": {"tag": "Modalty", "equals": "US"}, "blank": [[0, 0, 1, 1]]}]}},
            secret=KEY).pixels)
    with pytest.raises(ConfigError, match=r"pixels\.rules\[0\]\.blank\[0\]: a rectangle"):
        build_cleaner(parse_config({"profile": "basic", "pixels": {"rules": [
            {"blank": [[0, 0, -1, 1]]}]}}, secret=KEY).pixels)
    with pytest.raises(ConfigError, match=r"pixels\.mode: must be one of"):
        parse_config({"profile": "basic", "pixels": {"mode": "some"}}, secret=KEY)


def test_the_default_library_is_applied_by_default() -> None:
    cleaner = build_cleaner(parse_config({"profile": "basic"}, secret=KEY).pixels)
    assert str(cleaner.mode) == "flagged"
    assert [s.name for s in cleaner.rule_sets] == [s.name for s in default_library()]
    assert sum(len(s.rules) for s in default_library()) >= 150
    # A Logiq 9 ultrasound has its top band blanked by CTP's signature.
    assert Box(0, 0, 640, 30) in _boxes(list(default_library()), {
        "Modality": "US", "Manufacturer": "GE Healthcare", "ManufacturerModelName": "LOGIQ9",
        "Rows": "480", "Columns": "640"})
    assert not _boxes(list(default_library()), {"Modality": "CT", "Manufacturer": "Acme"})


def test_scripts_and_recipes_from_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "site.script").write_text('{ Modality.equals("US") } (0,0,16,16)')
    (tmp_path / "site.recipe").write_text(
        "%filter graylist\nLABEL A\n  contains Modality US\n  coordinates 0,0,16,16\n")
    config_file = tmp_path / "config.json"
    config_file.write_text('{"profile": "basic", "pixels": {"mode": "rules", '
                           '"defaultLibrary": false, "ctpScripts": ["site.script"], '
                           '"deidRecipes": ["site.recipe"]}}')
    from dcmanon import load_config

    cleaner = build_cleaner(load_config(config_file, secret=KEY).pixels)
    assert [s.name for s in cleaner.rule_sets] == ["site.script", "site.recipe graylist"]
    (tmp_path / "site.recipe").write_text("%filter graylist\nLABEL A\n  contain Modality US\n")
    with pytest.raises(ConfigError, match=r"deidRecipes\[0\].*line 3: unknown action"):
        build_cleaner(load_config(config_file, secret=KEY).pixels)


def test_recipe_errors_name_the_line() -> None:
    with pytest.raises(RecipeError, match="line 3: ctpcoordinates needs four numbers"):
        parse_deid_recipe("%filter graylist\nLABEL A\n  ctpcoordinates 1,2,3\n")
    assert Rect(-5, 0, 5, None).box(20, 10, None) == Box(15, 0, 20, 10)


def test_the_default_library_is_what_the_generator_makes() -> None:
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location(
        "generate_pixel_rules", root / "tools" / "generate_pixel_rules.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    library, provenance = generator.build(STOCK)
    pixels = root / "src" / "dcmanon" / "pixels"
    assert (pixels / "default_rules.json").read_text(encoding="utf-8") == generator._dumped(
        library), "run tools/generate_pixel_rules.py"
    assert (pixels / "PROVENANCE").read_text(encoding="utf-8") == provenance
    assert "RSNA Public License" in provenance and "MIT" in provenance
