"""Built-in profiles, options, keys, mapping files and the generated PS3.15 table."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom import dcmread

from dcmanon import Anonymizer, default_config, parse_config
from dcmanon.cli import main
from dcmanon.errors import ConfigError
from dcmanon.profiles import EDITION, PROFILES, Option, Profile, load_table
from dcmanon.testing import make_instance, make_patient, write_study_tree
from tests.standard import cid7050_codes, e1_1_rows, option_columns, safe_private, table_e1_1


def test_generated_table_matches_the_standard_row_for_row() -> None:
    standard = table_e1_1()
    table = load_table()
    assert table.edition == standard["edition"] == EDITION
    ours = {**{f"({t >> 16:04X},{t & 0xFFFF:04X})": r for t, r in table.rows.items()},
            table.curve_row.tag: table.curve_row, table.private_row.tag: table.private_row,
            **{r.tag: r for r in table.overlay_rows.values()}}
    rows = e1_1_rows()
    assert len(ours) == len(rows) == 657
    columns = option_columns()
    assert set(columns) == {option.value for option in Option}
    for row in rows:
        mine = ours[row.tag]
        assert (mine.keyword, mine.vr) == (row.keyword, row.vr), row.tag
        assert mine.basic == row.basic, row.tag
        for option in Option:
            assert option.column == columns[option.value]
            assert mine.options.get(option.column, "") == row.options.get(option.column, ""), \
                row.tag
    codes = cid7050_codes()
    assert {c["key"]: str(c["cid7050_code"]) for c in table.columns} == codes


def test_every_safe_private_attribute_of_the_standard_is_known_safe() -> None:
    standard = safe_private()
    assert len(standard) == 479
    assert standard - load_table().safe_private == set()


def test_option_names_are_forgiving_and_unknown_ones_get_a_hint() -> None:
    assert Option.parse("retainSafePrivate") is Option.RETAIN_SAFE_PRIVATE
    assert Option.parse("Retain Longitudinal Temporal Information with Modified Dates Option") \
        is Option.RETAIN_LONGITUDINAL_MODIFIED_DATES
    with pytest.raises(ConfigError) as caught:
        parse_config({"profile": "basic", "options": ["retain-uid"]})
    assert caught.value.problems[0].location == "options[0]"
    assert 'did you mean "retain-uids"' in caught.value.problems[0].message


def test_the_two_longitudinal_options_exclude_each_other() -> None:
    with pytest.raises(ConfigError, match="exclude each other"):
        parse_config({"profile": "basic", "options": ["retain-longitudinal-full-dates",
                                                      "retain-longitudinal-modified-dates"]})


def test_conflicting_options_take_the_more_protective_code() -> None:
    # Device calibration dates: Retain Device Identity says K, Modified Dates says C.
    row = load_table().rows[0x00181200]  # DateOfLastCalibration
    both = Profile.build("basic", frozenset({Option.RETAIN_DEVICE_IDENTITY,
                                             Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}))
    assert Profile.build("basic", frozenset({Option.RETAIN_DEVICE_IDENTITY})).row_code(row) == "K"
    assert both.row_code(row) == "C"


def test_research_profile_keeps_what_research_needs_and_nothing_identifying() -> None:
    patient = make_patient(0)
    ds = make_instance(patient)
    config = parse_config({"profile": "research"}, secret="k")
    Anonymizer(config).anonymize_dataset(ds)
    assert ds.PatientSex == patient.sex  # patient characteristics retained
    assert ds.PatientAge  # retained (aggregated above 89)
    assert ds.DeviceSerialNumber  # device identity retained
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert ds.StudyDate != make_instance(patient).StudyDate  # dates shifted, not kept
    assert patient.family_name not in str(ds.to_json_dict())
    codes = {item.CodeValue for item in ds.DeidentificationMethodCodeSequence}
    assert codes == {"113100"} | {load_table_code(o) for o in PROFILES["research"]}


def load_table_code(option: Option) -> str:
    """The option's CID 7050 code, from the standard (not the engine's table)."""
    return cid7050_codes()[option_columns()[option.value]]


def test_user_rules_come_first_and_override_the_profile() -> None:
    patient = make_patient(1)
    ds = make_instance(patient)
    config = parse_config({"profile": "basic",
                           "rules": [{"tag": "StudyDescription", "method": "keep"},
                                     {"tag": "PatientSex", "method": "keep"}]}, secret="k")
    Anonymizer(config).anonymize_dataset(ds)
    assert ds.PatientSex == patient.sex
    assert ds.StudyDescription  # kept by the user's rule (and scrubbed of identifiers)
    assert "InstitutionName" not in ds  # the profile still applies to the rest


def test_kept_free_text_loses_the_patients_identifiers_whatever_the_rule() -> None:
    patient = make_patient(2)
    ds = make_instance(patient)
    config = parse_config({"profile": "basic",
                           "rules": [{"tag": "ImageComments", "method": "keep"}]}, secret="k")
    Anonymizer(config).anonymize_dataset(ds)
    assert patient.family_name not in ds.ImageComments
    assert patient.patient_id not in ds.ImageComments
    assert "***" in ds.ImageComments


def test_ages_over_89_are_aggregated_when_kept() -> None:
    ds = make_instance(make_patient(0))
    ds.PatientAge = "093Y"
    config = parse_config({"profile": "basic", "options": ["retain-patient-characteristics"]},
                          secret="k")
    Anonymizer(config).anonymize_dataset(ds)
    assert ds.PatientAge == "090Y"


def test_burned_in_annotation_is_flagged(tmp_path: Path) -> None:
    ds = make_instance(make_patient(0))
    ds.BurnedInAnnotation = "YES"
    source = tmp_path / "in.dcm"
    ds.save_as(source, enforce_file_format=True)
    # (pixels off: the header's flag is the subject here, not OCR of the image)
    result = Anonymizer(default_config(secret="k"), pixels="off").anonymize_file(
        source, tmp_path / "o.dcm")
    assert result.status == "done"
    assert result.flags == ("BurnedInAnnotation is YES",)


def test_mapping_files_are_written_only_when_asked(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCMANON_KEY", "mapping-test")
    write_study_tree(tmp_path / "in", patients=2, studies=1, series=1, instances=2)
    runner = CliRunner()
    result = runner.invoke(main, ["-I", str(tmp_path / "in"), "-O", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "maps").exists()
    result = runner.invoke(main, ["-I", str(tmp_path / "in"), "-O", str(tmp_path / "out2"),
                                  "--mapping-dir", str(tmp_path / "maps")])
    assert result.exit_code == 0, result.output
    with (tmp_path / "maps" / "patient_mapping.csv").open() as handle:
        patients = list(csv.DictReader(handle))
    assert {p["id_old"] for p in patients} == {make_patient(0).patient_id,
                                                make_patient(1).patient_id}
    outputs = sorted((tmp_path / "out2").rglob("*.dcm"))
    assert {p["id_new"] for p in patients} == {str(dcmread(p).PatientID) for p in outputs}
    with (tmp_path / "maps" / "uid_mapping.csv").open() as handle:
        uids = {row["id_old"]: row["id_new"] for row in csv.DictReader(handle)}
    for path in sorted((tmp_path / "in").rglob("*.dcm")):
        source = dcmread(path)
        assert source.SOPInstanceUID in uids
        assert uids[source.StudyInstanceUID].startswith("2.25.")
