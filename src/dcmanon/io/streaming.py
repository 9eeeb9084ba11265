"""Large values stay on disk: they are held out of the dataset and copied byte for byte.

A file is read with its large values deferred (pydicom reads their position, not their bytes).
Before the rules run, every deferred binary value (pixel data, big private blobs, overlays...)
is swapped for a small marker; after the rules, a marker that is still there means the value
was kept, and the original element is put back, still deferred. Writing then copies that
element (header and value) from the input file in blocks: memory stays flat whatever the size
of the file, and the output's bytes are the input's.

A rule that changes such a value (a hash or an encryption of the pixel data) changes the
marker instead: the file is then read again in full and anonymized the ordinary way, so the
result is always what the full read gives.

Files that take the full-read path from the start (documented in the README): deflated
transfer syntaxes (the file's bytes are not the dataset's) and big endian ones.
"""

from __future__ import annotations

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID

from dcmanon.dicom.constants import BULK_VRS, UNDEFINED_LENGTH
from dcmanon.dicom.elements import element_vr
from dcmanon.errors import InputError

MARKER = b"dcmanon:deferred"
"""What a held value looks like to the rules (16 bytes: a whole number of units of any VR)."""
DROPPED_TAGS = frozenset({
    0xFFFAFFFA,  # DigitalSignaturesSequence: no longer valid once anything changed
    0xFFFCFFFC,  # DataSetTrailingPadding: padding, and may hold anything
    0x4FFE0001,  # MACParametersSequence: goes with the signatures
})
"""Elements removed from every output, at every depth, whatever the rules say."""
_TRUNCATED = "truncated (the file ends inside an element)"


def needs_full_read(ds: Dataset) -> bool:
    """Whether ``ds`` must be read in full: deflated or big endian transfer syntax."""
    _, little = getattr(ds, "original_encoding", (None, None))
    if little is False:
        return True
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    return bool(syntax) and UID(str(syntax)).is_deflated


def deferred_element(ds: Dataset, tag: int) -> RawDataElement | None:
    """The element at ``tag`` if its value is still on disk (else None)."""
    element = ds.get_item(tag, keep_deferred=True)
    if isinstance(element, RawDataElement) and element.value is None and element.length:
        return element  # (an empty value can be None too: its length is 0)
    return None


def drop_signatures(ds: Dataset, *, nested: bool) -> None:
    """Remove digital signatures, MAC parameters and trailing padding.

    At the top level only (before the rules run, so that trailing padding is never read), or
    also inside the items of sequences that the rules have already visited (``nested``).
    """
    for tag in list(ds.keys()):
        if tag in DROPPED_TAGS:
            del ds[tag]
        elif nested:
            element = ds.get_item(tag, keep_deferred=True)
            if isinstance(element, DataElement) and element.VR == "SQ":
                for item in element.value or ():
                    drop_signatures(item, nested=True)


def hold_bulk(ds: Dataset) -> dict[int, RawDataElement]:
    """Swap every deferred binary value of ``ds`` for :data:`MARKER`; return the originals.

    Other deferred values (long texts) are read now, as raw bytes: the rules then see them
    exactly as in a full read (pydicom would convert them when they are first read).
    """
    held: dict[int, RawDataElement] = {}
    texts: list[RawDataElement] = []
    for tag in list(ds.keys()):
        raw = deferred_element(ds, tag)
        if raw is None:
            continue
        if element_vr(raw, int(tag), raw.is_implicit_VR) not in BULK_VRS:
            if raw.length != UNDEFINED_LENGTH:
                texts.append(raw)
            continue
        held[int(tag)] = raw
        # Straight into the element dictionary: Dataset.__setitem__ would convert private
        # elements (and read their deferred value).
        ds._dict[tag] = raw._replace(value=MARKER, length=len(MARKER))
    if texts:
        with open(str(ds.filename), "rb") as source:
            for raw in texts:
                source.seek(raw.value_tell)
                value = source.read(raw.length)
                if len(value) != raw.length:
                    raise InputError(f"{ds.filename}: {_TRUNCATED}")
                ds._dict[raw.tag] = raw._replace(value=value)
    return held


def release_bulk(ds: Dataset, held: dict[int, RawDataElement]) -> bool:
    """Put the held originals back where the rules kept the marker.

    Returns
    -------
    bool
        False if a rule changed a held value (the file must then be read in full).
    """
    for tag, raw in held.items():
        if tag not in ds:
            continue  # removed: nothing to put back
        value = ds.get_item(tag, keep_deferred=True).value
        if value != MARKER:
            return False
        ds._dict[BaseTag(tag)] = raw
    return True


def has_deferred(ds: Dataset) -> bool:
    """Whether writing ``ds`` needs its input file (values still on disk)."""
    # keys(), not the dataset itself: iterating a Dataset would read every value.
    return any(deferred_element(ds, tag) is not None for tag in list(ds.keys()))
