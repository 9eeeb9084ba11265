"""Referential integrity of a set of files, before and after de-identification.

Checked without knowing which output came from which original: the study/series grouping
(how many studies, how many series in each, how many instances in each series) must be the
same; no series may span studies where it did not; SOP Instance UIDs must stay unique;
MediaStorageSOPInstanceUID must equal SOPInstanceUID; and references (UIDs inside sequences
and other UI elements) must resolve within the set at least as often as they did.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from pydicom._uid_dict import UID_dictionary
from pydicom.dataset import Dataset

from dcmanon.check.findings import ElementText, Finding

SOP_INSTANCE, STUDY, SERIES, FRAME_OF_REFERENCE = 0x00080018, 0x0020000D, 0x0020000E, 0x00200052
MEDIA_STORAGE_SOP_INSTANCE = 0x00020003
IDENTITY_TAGS = frozenset({SOP_INSTANCE, STUDY, SERIES, FRAME_OF_REFERENCE})
_STANDARD_ROOT = "1.2.840.10008."
DIRECTORY = "1.2.840.10008.1.3.10"
"""Media Storage Directory Storage: a DICOMDIR."""


def instance_uid(value: str) -> bool:
    """Whether a UID can identify something (not a registered or standard DICOM UID).

    Examples
    --------
    >>> instance_uid("1.2.840.10008.5.1.4.1.1.2"), instance_uid("2.25.12345")
    (False, True)
    """
    return bool(value) and value not in UID_dictionary and not value.startswith(_STANDARD_ROOT)


@dataclass(frozen=True)
class Reference:
    """A UID in one file that points at something (an instance, a series, a study...)."""

    file: str
    where: str
    signature: str
    value: str


@dataclass
class SetShape:
    """The identity UIDs and references of a set of files."""

    studies: dict[str, Counter[str]] = field(default_factory=dict)
    series_studies: dict[str, set[str]] = field(default_factory=dict)
    sop_files: dict[str, str] = field(default_factory=dict)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """(file, first file) pairs that share a SOP Instance UID."""
    targets: set[str] = field(default_factory=set)
    references: list[Reference] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    """Files whose MediaStorageSOPInstanceUID is not their SOPInstanceUID."""

    def add(self, rel: str, ds: Dataset, texts: list[ElementText]) -> None:
        """Record one file (``texts`` from :func:`dcmanon.check.findings.iter_texts`)."""
        top: dict[int, str] = {}
        for et in texts:
            if not et.path and (et.tag in IDENTITY_TAGS or et.tag == MEDIA_STORAGE_SOP_INSTANCE):
                top[et.tag] = et.texts[0].strip("\0 ")
            elif et.vr == "UI" and et.tag >> 16 != 0x0002:
                signature = re.sub(r"\[\d+\]", "", et.where)
                self.references.extend(Reference(rel, et.where, signature, v.strip("\0 "))
                                       for v in et.texts if instance_uid(v.strip("\0 ")))
        sop, study, series = top.get(SOP_INSTANCE, ""), top.get(STUDY, ""), top.get(SERIES, "")
        if study or series:
            self.studies.setdefault(study, Counter())[series] += 1
            self.series_studies.setdefault(series, set()).add(study)
        if sop:
            first = self.sop_files.setdefault(sop, rel)
            if first != rel:
                self.duplicates.append((rel, first))
        self.targets.update(v for tag, v in top.items() if v and tag in IDENTITY_TAGS)
        # A DICOMDIR's MediaStorageSOPInstanceUID is its file-set's own: no SOPInstanceUID.
        meta = getattr(ds, "file_meta", None)
        directory = meta is not None and meta.get("MediaStorageSOPClassUID") == DIRECTORY
        if top.get(MEDIA_STORAGE_SOP_INSTANCE, sop) != sop and not directory:
            self.mismatched.append(rel)

    def grouping(self) -> list[tuple[int, ...]]:
        """Per study, the sizes of its series (sorted): the set's shape without its UIDs."""
        return sorted(tuple(sorted(series.values())) for series in self.studies.values())

    def describe(self) -> str:
        """``N studies, M series, K instances``."""
        series = sum(len(s) for s in self.studies.values())
        instances = sum(sum(s.values()) for s in self.studies.values())
        return f"{len(self.studies)} studies, {series} series, {instances} instances"

    def unresolved(self) -> dict[str, list[Reference]]:
        """References that point at nothing in the set, by element (without item numbers)."""
        out: dict[str, list[Reference]] = {}
        for ref in self.references:
            if ref.value not in self.targets:
                out.setdefault(ref.signature, []).append(ref)
        return out


def integrity_findings(originals: SetShape, outputs: SetShape) -> list[Finding]:
    """What the outputs broke of the originals' structure."""
    findings = [Finding("integrity", rel, "(0002,0003) MediaStorageSOPInstanceUID", "uid", "",
                        "MediaStorageSOPInstanceUID is not the SOPInstanceUID")
                for rel in outputs.mismatched]
    if originals.grouping() != outputs.grouping():
        findings.append(Finding(
            "integrity", "", "(0020,000D) StudyInstanceUID / (0020,000E) SeriesInstanceUID",
            "uid", "", f"study and series grouping differs: originals {originals.describe()}; "
                       f"outputs {outputs.describe()}"))
    split_before = sum(len(s) > 1 for s in originals.series_studies.values())
    split = [series for series, studies in outputs.series_studies.items() if len(studies) > 1]
    if len(split) > split_before:
        findings.append(Finding("integrity", "", "(0020,000E) SeriesInstanceUID", "uid", "",
                                f"{len(split)} series span more than one study"))
    if len(outputs.duplicates) > len(originals.duplicates):
        findings.extend(Finding("integrity", rel, "(0008,0018) SOPInstanceUID", "uid", "",
                                "the SOPInstanceUID of another output (a duplicate)")
                        for rel, _ in outputs.duplicates)
    before = originals.unresolved()
    for signature, refs in sorted(outputs.unresolved().items()):
        if len(refs) > len(before.get(signature, ())):
            findings.extend(Finding("integrity", ref.file, ref.where, "uid", "",
                                    "a reference that resolves to nothing in the set "
                                    f"({len(before.get(signature, ()))} such before)")
                            for ref in refs)
    return findings
