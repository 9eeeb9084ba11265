"""One file's walk on the fast path: each element's bytes copied, left out or re-encoded.

Split from :mod:`dcmanon.io.fastpath`, which compiles the steps and caches the outcomes this
walk reads per element; the walk itself is the loop every element of every file goes through.
"""

from __future__ import annotations

from collections import Counter
from enum import Enum
from typing import Any, Protocol

from pydicom.dataelem import RawDataElement
from pydicom.tag import BaseTag

from dcmanon.config.settings import Method
from dcmanon.dicom.constants import PIXEL_DATA, SPECIFIC_CHARACTER_SET, UNDEFINED_LENGTH
from dcmanon.dicom.elements import Encoding
from dcmanon.dicom.walk import block_of
from dcmanon.header.engine import Engine, Step
from dcmanon.header.mapping import uid_values
from dcmanon.header.profile import SCRUBBED_VRS, SHORTEST_LIMIT, ProfileActions, swallows_identifier
from dcmanon.io.rawdataset import (
    LONG_VRS,
    NotPlain,
    RawElement,
    RawFile,
    creators_at,
    is_compressed,
)
from dcmanon.io.splice import (
    ITEM_END,
    ITEM_UNDEFINED,
    SEQUENCE_END,
    OnDisk,
    Piece,
    encode_new,
    sequence_header,
    size_of,
    without_orphan_creators,
)
from dcmanon.io.streaming import DROPPED_TAGS
from dcmanon.methods import Action, FileContext

SOP_CLASS_UID, SOP_INSTANCE_UID = 0x00080016, 0x00080018
STUDY_INSTANCE_UID, SERIES_INSTANCE_UID = 0x0020000D, 0x0020000E
MODALITY, BURNED_IN_ANNOTATION = 0x00080060, 0x00280301
PATIENT_NAME, PATIENT_ID = 0x00100010, 0x00100020
CONTEXT_TAGS = (SPECIFIC_CHARACTER_SET, SOP_CLASS_UID, SOP_INSTANCE_UID, STUDY_INSTANCE_UID,
                SERIES_INSTANCE_UID, PATIENT_NAME, PATIENT_ID)
"""What the engine's file context is made of."""
CONTEXT_TAG_SET = frozenset(CONTEXT_TAGS)
CONTEXT_KEYWORDS = {"SOPClassUID": SOP_CLASS_UID, "SOPInstanceUID": SOP_INSTANCE_UID,
                    "StudyInstanceUID": STUDY_INSTANCE_UID,
                    "SeriesInstanceUID": SERIES_INSTANCE_UID, "PatientName": PATIENT_NAME,
                    "PatientID": PATIENT_ID}
OUTPUT_TAGS = frozenset({SPECIFIC_CHARACTER_SET, SOP_CLASS_UID, SOP_INSTANCE_UID,
                         STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, MODALITY,
                         BURNED_IN_ANNOTATION, PATIENT_ID})
"""Output elements read after the rules: for the file meta, the flags, output names and
mapping files."""


class Kind(Enum):
    """What a step means for an element's bytes."""

    KEEP = "copied as they are"
    DROP = "left out"
    SEQUENCE = "a sequence: removed, emptied or walked"
    CHANGE = "decoded, and re-encoded if the value changes"


KEEP, DROP, SEQUENCE = Kind.KEEP, Kind.DROP, Kind.SEQUENCE



class Steps(Protocol):
    """What a walk reads of :class:`dcmanon.io.fastpath.FastPath`: the engine, the steps and
    outcomes it caches across files."""

    engine: Engine
    actions: ProfileActions | None
    record_mappings: bool
    entries: dict[tuple[Any, ...], tuple[Step, Kind]]
    outcomes: dict[tuple[object, ...], bytes | Action]

    def where(self, parents: tuple[int, ...], parent_creators: tuple[str | None, ...],
              sop_class: str) -> int: ...

    def entry(self, key: tuple[Any, ...]) -> tuple[Step, Kind]: ...

    def remember(self, key: tuple[object, ...], outcome: bytes | Action) -> None: ...


class Walk:
    """One file's walk: the output of every level, and the actions counted."""

    def __init__(self, fast: Steps, raw: RawFile, context: FileContext,
                 encoding: Encoding) -> None:
        self.fast = fast
        self.engine = fast.engine
        self.raw = raw
        self.view = memoryview(raw.buffer)
        self.context = context
        self.encoding = encoding
        self.encoding_key = (encoding.implicit, encoding.charsets)
        """The encoding as a plain tuple, for cache keys (cheaper to hash)."""
        self.sop_class = context.sop_class_uid
        self.actions: Counter[str] = Counter()
        self.output: dict[int, RawDataElement | None] = {}
        """Top-level elements of :data:`OUTPUT_TAGS` as written (None: removed)."""
        self.after_uids: set[str] | None = set() if fast.record_mappings else None
        """The output's UIDs, at any depth (for mapping files)."""

    def level(self, elements: list[RawElement], path: tuple[tuple[int, int], ...],
              parent_creators: tuple[str | None, ...], *, top: bool = False
              ) -> list[tuple[int, list[Piece | OnDisk]]]:
        """The output of one dataset level, element by element (tag, pieces)."""
        where = self.fast.where(tuple(tag for tag, _ in path), parent_creators,
                                self.sop_class)
        creators = creators_at(self.raw.buffer, elements)
        entries, entry_for = self.fast.entries, self.fast.entry
        actions, view = self.actions, self.view
        keep, drop, sequence = KEEP, DROP, SEQUENCE  # locals: read once per element
        out: list[tuple[int, list[Piece | OnDisk]]] = []
        for element in elements:
            tag = element.tag
            if not tag & 0xFFFF:
                continue  # group lengths: retired, and stale after any change
            creator = creators.get(block_of(tag)) if tag >> 16 & 1 else None
            key = (tag, element.vr, creator, where)
            entry = entries.get(key) or entry_for(key)
            step, kind = entry
            actions[step.action] += 1
            pieces: list[Piece | OnDisk] | None
            if kind is keep and tag != PIXEL_DATA and not element.on_disk:
                pieces = [view[element.start:element.end]]
                if (element.length > SHORTEST_LIMIT and step.code is not None
                        and self._swallows(element)):
                    pieces = None
            elif kind is drop:
                pieces = None
            elif kind is keep:
                pieces = [self._kept(element)]
            elif kind is sequence:
                pieces = self._sequence(element, step, path, (*parent_creators, creator))
            else:
                pieces = self._changed(element, step, path)
            if top and tag in OUTPUT_TAGS:
                self.output[tag] = self._written(element, pieces)
            if pieces is not None and (top or tag not in DROPPED_TAGS):
                out.append((tag, pieces))
                if self.after_uids is not None and element.vr == "UI":
                    written = self._written(element, pieces)
                    if written is not None:
                        self.after_uids.update(uid_values(bytes(written.value or b"")))
        if self.fast.actions is not None:
            out = without_orphan_creators(out)
        return out

    def _changed(self, element: RawElement, step: Step, path: tuple[tuple[int, int], ...]
                 ) -> list[Piece | OnDisk] | None:
        """An element whose outcome depends on its value: decoded by the engine."""
        code = step.code
        if element.on_disk or element.tag == PIXEL_DATA:
            # pydicom writes new pixel data by its own rules (encapsulated or not).
            raise NotPlain("a large value or the pixel data may change")
        key = self._cache_key(element, code)
        encoded = self.fast.outcomes.get(key) if key is not None else None
        if encoded is None:
            original = element.raw(self.raw.buffer, self.raw.implicit)
            outcome = self.engine.outcome(original, element.tag, element.vr, step, path,
                                          self.context, self.encoding)
            if isinstance(outcome, RawDataElement):
                encoded = encode_new(outcome, self.raw.implicit)
            else:
                encoded = outcome
            if key is not None:
                self.fast.remember(key, encoded)
        if encoded is Action.REMOVE:
            return None
        if encoded is Action.KEEP:
            return [self._kept(element)]
        assert isinstance(encoded, bytes)
        return [encoded]

    def _cache_key(self, element: RawElement, code: str | None) -> tuple[object, ...] | None:
        """The key under which an element's outcome can be reused: the profile's outcomes
        depend on the value and at most the patient or the file's identifiers (shared by the
        files of a series). Not for rules: their methods may use the file's UIDs or
        randomness."""
        if code is None or element.tag in self.engine.lookup_tags:
            return None
        depends: object = None
        if code in ("P", "S"):
            depends = self.context.patient_id
        elif code == "C" or (code in ("K", "N") and element.vr in SCRUBBED_VRS):
            # The identifiers object is kept alive by the cache it comes from, so its id
            # is not reused while the outcomes it keys are (both caches clear together).
            depends = id(self.context.identifiers)
        elif code not in ("U", "D", "Z", "K", "N", "Y"):
            return None
        value = self.raw.buffer[element.value_start:element.value_start + element.length]
        return (element.tag, element.vr, element.written_vr, code, value, depends,
                self.encoding_key)

    def _swallows(self, element: RawElement) -> bool:
        """A kept value longer than its VR allows that may carry an identifier (as the
        engine's profile outcome judges it)."""
        stop = element.value_start + element.length
        return swallows_identifier(element.vr, self.raw.buffer[element.value_start:stop],
                                   element.length, self.context.identifiers,
                                   self.encoding.charsets)

    def _kept(self, element: RawElement) -> Piece | OnDisk:
        if element.tag == PIXEL_DATA and (element.length == UNDEFINED_LENGTH) != is_compressed(
                self.raw.transfer_syntax):
            raise NotPlain("pixel data encoded against its transfer syntax")
        if element.on_disk:
            return OnDisk(element.start, element.end - element.start)
        return self.view[element.start:element.end]

    def _sequence(self, element: RawElement, step: Step, path: tuple[tuple[int, int], ...],
                  creators: tuple[str | None, ...]) -> list[Piece | OnDisk] | None:
        method = step.sequence_method
        if method is Method.REMOVE:
            return None
        if method is Method.REDACT:
            return [sequence_header(element.tag, 0, self.raw.implicit, undefined=False)]
        if method is not Method.KEEP:
            raise self.engine.sequence_error(step, path, element.tag)
        content: list[Piece | OnDisk] = []
        for index, item in enumerate(element.items or ()):
            children = self.level(item.elements, (*path, (element.tag, index)), creators)
            pieces = [p for _, ps in children for p in ps]
            if item.undefined:
                content.append(ITEM_UNDEFINED)
                content.extend(pieces)
                content.append(ITEM_END)
            else:
                content.append(b"\xfe\xff\x00\xe0" + size_of(pieces).to_bytes(4, "little"))
                content.extend(pieces)
        undefined = element.length == UNDEFINED_LENGTH
        if undefined:
            content.append(SEQUENCE_END)
            return [sequence_header(element.tag, UNDEFINED_LENGTH, self.raw.implicit,
                                    undefined=True), *content]
        return [sequence_header(element.tag, size_of(content), self.raw.implicit,
                                 undefined=False), *content]

    def _written(self, element: RawElement,
                 pieces: list[Piece | OnDisk] | None) -> RawDataElement | None:
        """The element as written (for the file meta, flags, names and mapping files)."""
        if pieces is None:
            return None
        if len(pieces) == 1 and not isinstance(pieces[0], OnDisk):
            encoded = bytes(pieces[0])
            header = 8 if self.raw.implicit or encoded[4:6] not in LONG_VRS else 12
            vr = None if self.raw.implicit else encoded[4:6].decode()
            return RawDataElement(BaseTag(element.tag), vr, len(encoded) - header,
                                  encoded[header:], 0, self.raw.implicit, True)
        raise NotPlain("an output element read after the rules is not plain")
