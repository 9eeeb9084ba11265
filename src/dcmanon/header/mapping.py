"""Mapping files (``id_old,id_new``): which pseudonym stands for which original.

They re-identify the data, so they are written only when asked, and kept apart from it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from dcmanon.config.loader import Config
from dcmanon.config.settings import Method, RefreshUIDSettings
from dcmanon.dicom.walk import quiet_pydicom
from dcmanon.keys import keyed_uid

UID_FILE = "uid_mapping.csv"
PATIENT_FILE = "patient_mapping.csv"


@dataclass(frozen=True)
class Identities:
    """The UIDs and the patient ID of a dataset before anonymization."""

    uids: frozenset[str]
    patient_id: str


def _uids(ds: Dataset) -> set[str]:
    found: set[str] = set()
    with quiet_pydicom():
        for element in ds.iterall():
            if element.VR == "UI" and element.value:
                values = element.value if isinstance(element.value, list) else [element.value]
                found.update(str(v).strip("\0 ") for v in values)
    return found


def original_identities(ds: Dataset) -> Identities:
    """Capture what the mapping files need, before the dataset is changed."""
    with quiet_pydicom():
        patient = str(ds.get("PatientID", "") or "")
    return Identities(frozenset(_uids(ds)), patient)


def _uid_keys(config: Config) -> list[str]:
    keys = [config.uid_key] if config.uid_key else []
    for rule in config.rules:
        settings = rule.settings
        if (rule.method is Method.REFRESH_UID and isinstance(settings, RefreshUIDSettings)
                and settings.key and settings.key not in keys):
            keys.append(settings.key)
    return keys


def mappings(before: Identities, ds: Dataset, config: Config) -> tuple[tuple[str, str, str], ...]:
    """(kind, old, new) for every UID that was replaced and for the patient ID."""
    with quiet_pydicom():
        patient = str(ds.get("PatientID", "") or "")
    return mapping_rows(before, Identities(frozenset(_uids(ds)), patient), config)


def uid_values(value: bytes) -> list[str]:
    """The UIDs of a UI element's encoded value, as :func:`original_identities` reads them."""
    text = value.decode("latin-1").rstrip("\0 ")
    return [v.strip("\0 ") for v in text.split("\\")] if text else []


def mapping_rows(before: Identities, after: Identities,
                 config: Config) -> tuple[tuple[str, str, str], ...]:
    """(kind, old, new) for every UID of ``before`` replaced by its keyed UID in ``after``,
    and for the patient ID."""
    rows: list[tuple[str, str, str]] = []
    keys = _uid_keys(config)
    for old in sorted(before.uids - after.uids):
        for key in keys:
            new = keyed_uid(key, old)
            if new in after.uids:
                rows.append(("uid", old, new))
                break
    if before.patient_id and after.patient_id != before.patient_id:
        rows.append(("patient", before.patient_id, after.patient_id))
    return tuple(rows)


def write_mapping_files(folder: Path, rows: Iterable[tuple[str, str, str]]) -> list[Path]:
    """Write ``uid_mapping.csv`` and ``patient_mapping.csv`` (sorted, without duplicates)."""
    folder.mkdir(parents=True, exist_ok=True)
    unique = sorted(set(rows))
    written = []
    for kind, name in (("uid", UID_FILE), ("patient", PATIENT_FILE)):
        path = folder / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id_old", "id_new"])
            writer.writerows((old, new) for k, old, new in unique if k == kind)
        written.append(path)
    return written
