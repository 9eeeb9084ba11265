"""The hot path: anonymize a file by splicing its encoded bytes, decoding only what changes.

pydicom's full decode and write cost more than everything else on a typical slice. Here the
file is parsed into byte spans (:mod:`dcmanon.io.rawdataset`); each element gets the engine's
step (cached per tag, VR, creator and sequence path); elements kept as they are are copied as
their original bytes, removed ones are skipped, and only the elements that change are decoded
and re-encoded — by the engine's own :meth:`~dcmanon.header.engine.Engine.outcome`, so the methods
are the same code on both paths. Sequence and item lengths are recomputed. Large values left
on disk (pixel data) are copied from the input file.

The result is the file the pydicom path writes, byte for byte (tested on every file the test
suite has). Whatever this path does not handle raises :class:`~dcmanon.io.rawdataset.NotPlain`
before anything is written, and the caller takes the pydicom path: files that are not plain
Little Endian Part 10 data, mapping files of implicit VR data, an element error (so that the
error is reported exactly as pydicom's path reports it), a change of character set, a
PatientAge computed from the birth date (:mod:`dcmanon.io.trialbytes`). Runs
that validate inputs or outputs take pydicom's path from the start.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from dcmanon.config.selectors import ElementRef
from dcmanon.config.settings import Method
from dcmanon.dicom.constants import (
    MAX_NESTING,
    SPECIFIC_CHARACTER_SET,
)
from dcmanon.dicom.elements import Encoding, character_sets
from dcmanon.dicom.walk import quiet_pydicom
from dcmanon.errors import DcmanonError
from dcmanon.header.engine import Engine, Step
from dcmanon.header.mapping import Identities, mapping_rows, uid_values
from dcmanon.header.record import burned_in_flags
from dcmanon.io.fastwalk import (
    BURNED_IN_ANNOTATION,
    CONTEXT_KEYWORDS,
    CONTEXT_TAG_SET,
    CONTEXT_TAGS,
    MODALITY,
    PATIENT_ID,
    SERIES_INSTANCE_UID,
    SOP_CLASS_UID,
    SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
    Kind,
    Walk,
)
from dcmanon.io.rawdataset import (
    NotPlain,
    RawElement,
    RawFile,
    bytes_of,
    dataset_of,
    parse_file,
    uid_text,
    value_of,
)
from dcmanon.io.splice import (
    PREAMBLE,
    RECORD_TAGS,
    RECORD_VRS,
    OnDisk,
    Piece,
    encode_file_meta,
    encode_record_elements,
    first_bytes,
)
from dcmanon.io.streaming import DROPPED_TAGS
from dcmanon.io.trialbytes import check_age, stamp
from dcmanon.methods import Action, FileContext
from dcmanon.phi.identifiers import (
    IDENTIFYING_TAGS,
    Identifiers,
    dictionary_vr,
    identifier_terms,
    is_id,
)
from dcmanon.profiles import ProfileCode

OUTCOME_CACHE_SIZE = 20_000

@dataclass
class FastOutput:
    """An anonymized file, ready to write: pieces in order, and what was done."""

    pieces: list[Piece | OnDisk]
    actions: Counter[str]
    flags: list[str]
    output: dict[int, RawDataElement | None] = field(repr=False)
    implicit: bool
    size: int
    """Bytes of the input."""
    path: str = field(repr=False, default="")
    mappings: tuple[tuple[str, str, str], ...] = field(repr=False, default=())
    """(kind, original, pseudonym) rows, when asked: they re-identify."""
    source: RawFile | None = field(repr=False, default=None)
    """The parsed input (the pixel stage reads its original header from it)."""

    def names(self) -> Dataset:
        """A dataset with the anonymized Study, Series and SOP Instance UIDs (to name the
        output file)."""
        return dataset_of(self.output, (STUDY_INSTANCE_UID, SERIES_INSTANCE_UID,
                                         SOP_INSTANCE_UID), self.implicit)


class FastPath:
    """Anonymize plain files at the byte level with an engine's plan.

    Parameters
    ----------
    engine : Engine
        The engine whose steps and methods are applied (shared with the pydicom path).
    record_mappings : bool
        Collect (kind, original, pseudonym) rows as :mod:`dcmanon.header.mapping` does.
    max_nesting : int
        Refuse files whose sequences nest deeper (:mod:`dcmanon.dicom.nesting`).
    """

    def __init__(self, engine: Engine, record_mappings: bool = False,
                 max_nesting: int = MAX_NESTING) -> None:
        self.engine = engine
        self.max_nesting = max_nesting
        self.record_mappings = record_mappings
        self.actions = engine.profile_actions
        self.entries: dict[tuple[Any, ...], tuple[Step, Kind]] = {}
        self._places: dict[tuple[Any, ...], int] = {}
        self._place_list: list[tuple[Any, ...]] = []
        self._terms: dict[tuple[object, ...], list[str]] = {}
        self._values: dict[tuple[object, ...], object] = {}
        self._flag_cache: dict[tuple[bytes | None, ...], list[str]] = {}
        self.charsets: dict[bytes | None, tuple[str, ...]] = {}
        self._identifiers_by_terms: dict[tuple[tuple[str, ...], tuple[str, ...]],
                                         Identifiers] = {}
        self.outcomes: dict[tuple[object, ...], bytes | Action] = {}
        """Encoded outcomes of elements whose outcome depends only on their value: the same
        UIDs, dates and names recur in every file of a series."""
        self._stamps: dict[tuple[bool, bytes | None, str], list[tuple[int, bytes]]] = {}
        self._records: dict[tuple[bool, bytes | None, bool, bool], list[tuple[int, bytes]]] = {}

    def anonymize(self, path: str, parsed: RawFile | None = None) -> FastOutput:
        """Anonymize the file at ``path`` into pieces (nothing is written).

        ``parsed`` is its header when the caller has read it already (with
        :func:`~dcmanon.io.rawdataset.parse_file`, for the same path).

        Raises
        ------
        NotPlain
            If the file must take the pydicom path (including every kind of error).
        InputError
            If its sequences nest deeper than the limit (pydicom's path could not read it).
        """
        raw = parsed if parsed is not None and parsed.path == path \
            else parse_file(path, max_nesting=self.max_nesting)
        try:
            with quiet_pydicom():
                return self._anonymize(raw)
        except DcmanonError:
            raise NotPlain("an element error: reported by the pydicom path") from None

    def _anonymize(self, raw: RawFile) -> FastOutput:
        if self.record_mappings and raw.implicit:
            # pydicom reads some private elements of implicit VR data as UI (its private
            # dictionary): the mapping files then hold their UIDs too.
            raise NotPlain("mapping files of implicit VR data")
        if len(self._place_list) >= OUTCOME_CACHE_SIZE:  # between files: numbers stay valid
            self._places.clear()
            self._place_list.clear()
            self.entries.clear()  # their keys hold place numbers
        top = [e for e in raw.elements if e.tag not in DROPPED_TAGS]
        if raw.nested_charset:
            raise NotPlain("an item declares its own character set")
        if self.engine.trial is not None:
            check_age(self.engine.trial, raw, top)
        head = _Head(self, raw, top)
        encoding = Encoding(raw.implicit, True, head.charsets)
        identifiers = self._identifiers(raw, top, head) if self.actions is not None else None
        context = self._context(raw, top, head, identifiers)
        walk = Walk(self, raw, context, encoding)
        body = walk.level(top, (), (), top=True)
        output = walk.output
        after = output.get(SPECIFIC_CHARACTER_SET)
        if head.charset != (None if after is None else bytes(after.value or b"")):
            raise NotPlain("the character set changed: every text is re-encoded")
        flags: list[str] = []
        if self.engine.profile is not None:
            body = self._record(body, raw.implicit, output)
            flags = self._flags(output, raw.implicit)
        if self.engine.trial is not None:
            body = stamp(self.engine.trial, body, raw.implicit, output, self._stamps)
        pieces: list[Piece | OnDisk] = [PREAMBLE + self._meta(raw, output)]
        for _, element_pieces in body:
            pieces.extend(element_pieces)
        rows = self._mappings(raw, top, head, walk) if self.record_mappings else ()
        return FastOutput(pieces, walk.actions, flags, output, raw.implicit, raw.size,
                          raw.path, rows, raw)

    def _mappings(self, raw: RawFile, top: list[RawElement], head: _Head,
                  walk: Walk) -> tuple[tuple[str, str, str], ...]:
        """As :func:`dcmanon.header.mapping.mappings`: every UID of the input, at any depth."""
        before: set[str] = set()

        def visit(elements: list[RawElement]) -> None:
            for element in elements:
                if element.vr == "UI":
                    before.update(uid_values(value_of(raw, element)))
                for item in element.items or ():
                    visit(item.elements)

        visit(top)
        patient_before = str(head.dataset.get("PatientID", "") or "")
        patient_after = str(dataset_of(walk.output, (PATIENT_ID,), raw.implicit).get(
            "PatientID", "") or "")
        return mapping_rows(Identities(frozenset(before), patient_before),
                            Identities(frozenset(walk.after_uids or ()), patient_after),
                            self.engine.plan.config)

    def _flags(self, output: dict[int, RawDataElement | None], implicit: bool) -> list[str]:
        """:func:`dcmanon.header.record.burned_in_flags` of the output (once per distinct value)."""
        key = tuple(bytes_of(output.get(tag)) for tag in (
            SPECIFIC_CHARACTER_SET, MODALITY, BURNED_IN_ANNOTATION))
        flags = self._flag_cache.get(key)
        if flags is None:
            if len(self._flag_cache) > 1024:
                self._flag_cache.clear()
            flags = self._flag_cache[key] = burned_in_flags(
                dataset_of(output, (MODALITY, BURNED_IN_ANNOTATION), implicit))
        return list(flags)

    def remember(self, key: tuple[object, ...], outcome: bytes | Action) -> None:
        """Keep an element's outcome for the next file (a bounded cache)."""
        if len(self.outcomes) >= OUTCOME_CACHE_SIZE:
            self.outcomes.clear()
        self.outcomes[key] = outcome

    def where(self, parents: tuple[int, ...], parent_creators: tuple[str | None, ...],
              sop_class: str) -> int:
        """A number for a place in the dataset (sequence path, creators, SOP class): the
        key of each element's step holds it instead of the tuples (cheaper to hash)."""
        place = (parents, parent_creators, sop_class)
        number = self._places.get(place)
        if number is None:
            number = self._places[place] = len(self._place_list)
            self._place_list.append(place)
        return number

    def entry(self, key: tuple[Any, ...]) -> tuple[Step, Kind]:
        """The engine's step for (tag, VR, creator, place) and what it means for the bytes;
        cached under that plain tuple."""
        tag, vr, creator, where = key
        parents, parent_creators, sop_class = self._place_list[where]
        step = self.engine.step(ElementRef(tag, vr, creator, parents, parent_creators),
                                sop_class)
        code = step.code
        if vr == "SQ":
            kind = Kind.SEQUENCE
        elif tag in self.engine.lookup_tags:
            kind = Kind.CHANGE  # the subject table may replace any value, whatever the step
        elif code is ProfileCode.REMOVE or (code is None and step.sequence_method is Method.REMOVE):
            kind = Kind.DROP
        elif (code is not None and self.actions is not None
              and self.actions.keeps_unread(code, vr)) or (
                code is None and step.sequence_method is Method.KEEP and self.actions is None):
            kind = Kind.KEEP
        else:
            kind = Kind.CHANGE
        if len(self.entries) > OUTCOME_CACHE_SIZE:
            self.entries.clear()
        entry = self.entries[key] = (step, kind)
        return entry

    def _context(self, raw: RawFile, top: list[RawElement], head: _Head,
                 identifiers: Identifiers | None) -> FileContext:
        """The engine's file context; values converted once per distinct value."""
        def value(keyword: str) -> object:
            tag = CONTEXT_KEYWORDS[keyword]
            element = head.context.get(tag)
            if element is None:
                return None
            if keyword.endswith("UID") and element.written_vr in (None, "UI"):
                # As pydicom's UI conversion (one value: checked in _Head).
                return value_of(raw, element).decode("latin-1").rstrip("\0 ")
            key = (tag, value_of(raw, element), head.charsets)
            if key not in self._values:
                if len(self._values) > OUTCOME_CACHE_SIZE:
                    self._values.clear()
                self._values[key] = head.dataset.get(keyword)
            return self._values[key]

        return self.engine.context_from(value, lambda: identifiers or Identifiers(()))

    def _identifiers(self, raw: RawFile, top: list[RawElement], head: _Head) -> Identifiers:
        """As :func:`dcmanon.phi.identifiers.collect_identifiers`, from the spans."""
        terms: list[str] = []
        ids: list[str] = []
        charsets = head.charsets  # items declaring their own: NotPlain
        extra = self.engine.lookup_tags

        def visit(elements: list[RawElement]) -> None:
            for element in elements:
                vr = element.written_vr or dictionary_vr(element.tag)
                if vr == "SQ":
                    for item in element.items or ():
                        visit(item.elements)
                elif (vr == "PN" or vr == "DA" or element.tag in IDENTIFYING_TAGS
                      or element.tag in extra):
                    if element.on_disk:
                        raise NotPlain("an identifying value left on disk")
                    value = raw.buffer[element.value_start:element.value_start + element.length]
                    key = (element.tag, element.written_vr, value, charsets)
                    found = self._terms.get(key)
                    if found is None:
                        converted = convert_raw_data_element(
                            element.raw(raw.buffer, raw.implicit, value),
                            encoding=list(charsets), ds=head.dataset)
                        found = self._terms[key] = identifier_terms(vr, converted.value)
                    terms.extend(found)
                    if is_id(vr):
                        ids.extend(found)

        visit(top)
        if len(self._terms) > OUTCOME_CACHE_SIZE:
            self._terms.clear()
        known = (tuple(terms), tuple(ids))
        identifiers = self._identifiers_by_terms.get(known)
        if identifiers is None:
            # Files of one series share their identifiers (and the compiled pattern).
            if len(self._identifiers_by_terms) > 256:
                self._identifiers_by_terms.clear()
                self.outcomes.clear()  # some are keyed by the identifiers' ids
            identifiers = self._identifiers_by_terms[known] = self.engine.identifiers_of(
                Identifiers(*known))
        return identifiers

    def _record(self, body: list[tuple[int, list[Piece | OnDisk]]], implicit: bool,
                output: dict[int, RawDataElement | None]
                ) -> list[tuple[int, list[Piece | OnDisk]]]:
        """Add the de-identification record (the same elements the pydicom path sets)."""
        assert self.engine.profile is not None
        merged = dict(body)
        # pydicom updates an element that is already there: a sequence keeps its length form.
        existing = merged.get(RECORD_TAGS[2])
        undefined = existing is not None and first_bytes(existing)[-4:] == b"\xff\xff\xff\xff"
        for tag, vr in zip(RECORD_TAGS, RECORD_VRS, strict=True):
            if tag in merged and not implicit and first_bytes(merged[tag])[4:6] != vr:
                raise NotPlain("a record element is there with another VR")
        charset = output.get(SPECIFIC_CHARACTER_SET)
        charset_value = bytes(charset.value) if charset is not None and charset.value else None
        composite = output.get(SOP_CLASS_UID) is not None
        key = (implicit, charset_value, composite, undefined)
        records = self._records.get(key)
        if records is None:
            records = self._records[key] = encode_record_elements(
                self.engine.profile, implicit, charset, composite, undefined)
        for tag, encoded in records:
            merged[tag] = [encoded]
        return sorted(merged.items())

    def _meta(self, raw: RawFile, output: dict[int, RawDataElement | None]) -> bytes:
        """The file meta the pydicom path writes: what identifies nothing, following the
        dataset's new SOP Instance UID."""
        sop_instance = uid_text(output.get(SOP_INSTANCE_UID))
        sop_class = uid_text(output.get(SOP_CLASS_UID))
        if not sop_class:
            meta_class = raw.meta.get(0x00020002)
            sop_class = meta_class[1].decode("latin-1").rstrip("\0 ") if meta_class else ""
        if not sop_instance or not sop_class:
            raise NotPlain("an empty SOP UID: the file meta is written by pydicom")
        return encode_file_meta(raw, sop_class, sop_instance)


class _Head:
    """The file's character set, and (only when a value must be converted) a dataset
    holding the elements the engine's file context is made of."""

    def __init__(self, fast: FastPath, raw: RawFile, top: list[RawElement]) -> None:
        self.raw, self.top = raw, top
        self.context = {e.tag: e for e in top if e.tag in CONTEXT_TAG_SET}
        """The top-level elements the file context is made of, by tag."""
        element = self.context.get(SPECIFIC_CHARACTER_SET)
        self.charset = None if element is None else value_of(raw, element)
        charsets = fast.charsets.get(self.charset)
        if charsets is None:
            charsets = fast.charsets[self.charset] = character_sets(self.dataset)
        self.charsets = charsets
        for tag in (SOP_CLASS_UID, SOP_INSTANCE_UID, STUDY_INSTANCE_UID, SERIES_INSTANCE_UID,
                    PATIENT_ID):
            found = self.context.get(tag)
            if found is not None and b"\\" in value_of(raw, found):
                # pydicom gives a list, whose text the context would then hold.
                raise NotPlain("a multi-valued context element")

    @cached_property
    def dataset(self) -> Dataset:
        """The context elements as pydicom reads them (built on first use)."""
        head = Dataset()
        for element in self.top:
            if element.tag in CONTEXT_TAGS:
                head._dict[BaseTag(element.tag)] = element.raw(self.raw.buffer,
                                                               self.raw.implicit)
        head.set_original_encoding(self.raw.implicit, True, head._character_set)
        return head
