"""The ``clinicalTrial`` section: the attributes of PS3.3's Clinical Trial Subject (C.7.1.3),
Clinical Trial Study (C.7.2.3) and Clinical Trial Series (C.7.3.2) modules, written on every
output."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FIELDS: dict[str, tuple[str, int, str]] = {
    # configuration name: (keyword, most characters, Type in its module)
    "sponsorName": ("ClinicalTrialSponsorName", 64, "1"),
    "protocolID": ("ClinicalTrialProtocolID", 64, "1"),
    "protocolName": ("ClinicalTrialProtocolName", 64, "2"),
    "siteID": ("ClinicalTrialSiteID", 64, "2"),
    "siteName": ("ClinicalTrialSiteName", 64, "2"),
    "subjectID": ("ClinicalTrialSubjectID", 64, "1C"),
    "timePointID": ("ClinicalTrialTimePointID", 64, "2"),
    "timePointDescription": ("ClinicalTrialTimePointDescription", 1024, "3"),
    "coordinatingCenterName": ("ClinicalTrialCoordinatingCenterName", 64, "2"),
}
"""Each configuration name with its element, its longest value and its Type."""


@dataclass(frozen=True)
class ClinicalTrial:
    """The trial's attributes (configuration name → value, only those given).

    ``subjectID`` absent: each output gets its own PatientID as written (the subject table's
    replacement, else the keyed pseudonym).
    """

    values: tuple[tuple[str, str], ...]

    def elements(self, patient_id: str) -> list[tuple[str, str]]:
        """(keyword, value) of every attribute to write: the Type 1 and 2 ones always (empty
        when not given, as Type 2 allows), Type 3 ones when given."""
        given = dict(self.values)
        given.setdefault("subjectID", patient_id)
        return [(keyword, given.get(name, "")) for name, (keyword, _, type_) in FIELDS.items()
                if type_ != "3" or name in given]


def parse_clinical_trial(raw: Any, problem: Any) -> ClinicalTrial | None:
    """The section, or None after reporting each problem with ``problem(location, message)``."""
    if not isinstance(raw, Mapping):
        problem("clinicalTrial", "must be an object of {name: text}")
        return None
    values: list[tuple[str, str]] = []
    ok = True
    by_lower = {name.lower(): name for name in FIELDS}
    for key, value in raw.items():
        name = by_lower.get(str(key).lower())
        where = f"clinicalTrial.{key}"
        if name is None:
            problem(where, "unknown field (known: " + ", ".join(FIELDS) + ")")
            ok = False
        elif not isinstance(value, str) or "\\" in value:
            problem(where, "must be a text without backslashes")
            ok = False
        elif not value.strip() and FIELDS[name][2] == "1":
            problem(where, "must not be empty (Type 1 in PS3.3 C.7.1.3)")
            ok = False
        elif len(value) > FIELDS[name][1]:
            problem(where, f"longer than {FIELDS[name][1]} characters")
            ok = False
        else:
            values.append((name, value))
    for required in ("sponsorName", "protocolID"):
        if required not in dict(values) and not any(
                str(k).lower() == required.lower() for k in raw):
            problem(f"clinicalTrial.{required}", "missing (Type 1 in PS3.3 C.7.1.3)")
            ok = False
    return ClinicalTrial(tuple(values)) if ok else None
