"""Record in the output what was done to it (PS3.15 E.1.1), and flag what still needs eyes."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dcmanon._version import __version__
from dcmanon.profiles import Option, Profile

BURNED_IN_MODALITIES = frozenset({"US", "SC", "OT", "ES", "XC", "GM", "SM", "DOC", "IVUS",
                                  "XA", "RF", "DX", "CR", "MG", "IO", "PX"})
"""Modalities whose images often carry burned-in text (annotations, labels, screen captures)."""


def record_deidentification(ds: Dataset, profile: Profile) -> None:
    """Set PatientIdentityRemoved, DeidentificationMethod (+ code sequence) and
    LongitudinalTemporalInformationModified."""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = f"dcmanon {__version__}: {profile.describe()}"[:64]
    items = []
    for code, meaning in profile.codes():
        item = Dataset()
        item.CodeValue = code
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning[:64]
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    if "SOPClassUID" not in ds:
        return  # not a composite instance: no Image Pixel / General Image modules to add to
    if Option.RETAIN_LONGITUDINAL_FULL_DATES in profile.options:
        ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
    elif Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in profile.options:
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
    else:
        ds.LongitudinalTemporalInformationModified = "REMOVED"


def burned_in_flags(ds: Dataset) -> list[str]:
    """Why this file may carry identifying text in its pixels (empty: no known reason)."""
    flags = []
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        flags.append("BurnedInAnnotation is YES")
    modality = str(ds.get("Modality", "")).upper()
    if modality in BURNED_IN_MODALITIES:
        flags.append(f"modality {modality} often carries burned-in text")
    return flags
