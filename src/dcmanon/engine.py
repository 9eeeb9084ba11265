"""Walk a dataset and give every element, at every depth, exactly one action.

The action is that of the first rule (in configuration order) whose selector matches the
element; elements no rule selects follow ``unmatched``. A rule on a sequence with remove or
redact acts on the whole sequence; keep keeps it and still processes its items.
"""

from __future__ import annotations

import datetime as dt
import struct
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from dcmanon.config.loader import Config, Rule
from dcmanon.config.selectors import ElementRef, PathSelector, TagSelector
from dcmanon.config.settings import Method
from dcmanon.elements import Encoding, decode_element, element_vr, encode_element, file_encoding
from dcmanon.errors import UnsupportedVRError, ValueFormatError
from dcmanon.methods import Action, FileContext, MethodError, apply_method
from dcmanon.profile_engine import (
    PROFILE_ACTION_NAMES,
    ProfileActions,
    drop_orphan_creators,
)
from dcmanon.record import burned_in_flags, record_deidentification
from dcmanon.scrub import collect_identifiers
from dcmanon.tags import describe_path

Path = tuple[tuple[int, int], ...]


@dataclass
class DatasetResult:
    """What was done to one dataset: how many elements each action handled (never values)."""

    actions: Counter[str] = field(default_factory=Counter)
    flags: list[str] = field(default_factory=list)
    """Why the file may still need a look (e.g. burned-in text in its pixels)."""

    def count(self, action: str) -> None:
        """Record one element handled by ``action``."""
        self.actions[action] += 1


@dataclass(frozen=True)
class Decision:
    """What happens to one element, and why (for ``explain`` and ``--dry-run``)."""

    path: Path
    tag: int
    vr: str
    action: str
    source: str
    """The rule (``rules[3] {...}``), the profile row, or ``unmatched``."""

    @property
    def element(self) -> str:
        """The element's location: tag and keyword, with its sequence path."""
        return describe_path(self.path, self.tag)


class Plan:
    """A configuration compiled for fast per-element lookups.

    Exact-tag rules are a dictionary; the others are scanned in order, and only those that
    come before the best exact match. Decisions are cached per (tag, VR, creator, parents).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._exact: dict[int, Rule] = {}
        self._scanned: list[Rule] = []
        for rule in config.rules:
            if isinstance(rule.selector, TagSelector):
                self._exact.setdefault(rule.selector.tag, rule)
            else:
                self._scanned.append(rule)
        self._has_paths = any(isinstance(r.selector, PathSelector) for r in config.rules)
        self._cache: dict[ElementRef, Rule | None] = {}

    def rule_for(self, ref: ElementRef) -> Rule | None:
        """The first rule that selects the element, or None."""
        if not self._has_paths and (ref.parents or ref.parent_creators):
            ref = ElementRef(ref.tag, ref.vr, ref.creator)
        try:
            return self._cache[ref]
        except KeyError:
            pass
        best = self._exact.get(ref.tag)
        for rule in self._scanned:
            if best is not None and rule.index > best.index:
                break
            if rule.selector.matches(ref):
                best = rule
                break
        self._cache[ref] = best
        return best


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings about values it finds odd: we report problems ourselves."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class Engine:
    """Applies a compiled plan to datasets.

    Parameters
    ----------
    config : Config
        The validated configuration.
    today : datetime.date, optional
        The date the 89-year rule is measured against (default: today).
    """

    def __init__(self, config: Config, today: dt.date | None = None) -> None:
        self.plan = Plan(config)
        self.today = today or dt.date.today()
        self.profile = config.profile
        self.profile_actions = ProfileActions(config) if config.profile else None

    def context_for(self, ds: Dataset) -> FileContext:
        """Capture the original Study/Series/SOP Instance UIDs that scope date shifts."""
        def uid(keyword: str) -> str:
            value = ds.get(keyword)
            return str(value).rstrip("\0 ") if value else ""

        with quiet_pydicom():
            if self.profile is None:
                return FileContext(uid("StudyInstanceUID"), uid("SeriesInstanceUID"),
                                   uid("SOPInstanceUID"), self.today)
            patient = str(ds.get("PatientID", "") or "").strip() or str(
                ds.get("PatientName", "") or "").strip()
            return FileContext(uid("StudyInstanceUID"), uid("SeriesInstanceUID"),
                               uid("SOPInstanceUID"), self.today, uid("SOPClassUID"),
                               patient, collect_identifiers(ds))

    def apply(self, ds: Dataset) -> DatasetResult:
        """Anonymize ``ds`` in place.

        Raises
        ------
        ElementError
            If a method cannot process an element (the dataset must then be discarded).
        """
        result = DatasetResult()
        context = self.context_for(ds)
        with quiet_pydicom():
            # Captured before any change: a rule may rewrite SpecificCharacterSet itself.
            encoding = file_encoding(ds)
            self._walk(ds, (), (), context, result, encoding)
            if self.profile is not None:
                record_deidentification(ds, self.profile)
                result.flags.extend(burned_in_flags(ds))
        return result

    def explain(self, ds: Dataset) -> list[Decision]:
        """What :meth:`apply` would do to each element, without changing anything.

        Elements inside sequences that would be removed or emptied are not listed (they go
        with their sequence).
        """
        context = self.context_for(ds)
        decisions: list[Decision] = []
        with quiet_pydicom():
            self._explain(ds, (), (), context, file_encoding(ds), decisions)
        return decisions

    def _explain(self, ds: Dataset, path: Path, parent_creators: tuple[str | None, ...],
                 context: FileContext, encoding: Encoding, out: list[Decision]) -> None:
        parents = tuple(tag for tag, _ in path)
        creators = private_creators(ds)
        for tag in sorted(ds.keys()):
            raw = ds.get_item(tag)
            vr = element_vr(raw, int(tag), encoding.implicit)
            creator = creators.get(_block_of(int(tag)))
            ref = ElementRef(int(tag), vr, creator, parents, parent_creators)
            rule = self.plan.rule_for(ref)
            if rule is not None:
                action, source, recurse = rule.method.value, rule.describe(), \
                    rule.method is Method.KEEP
            elif self.profile_actions is not None:
                code = self.profile_actions.code(ref, context)
                action = PROFILE_ACTION_NAMES[code]
                source = self.profile_actions.describe() + (
                    ": not in Table E.1-1" if code == "N" else f": Table E.1-1 action {code}")
                recurse = vr == "SQ" and self.profile_actions.sequence_code(code) == "K"
            else:
                action = self.plan.config.unmatched.value
                source, recurse = "unmatched", action == Method.KEEP.value
            out.append(Decision(path, int(tag), vr, action, source))
            if vr == "SQ" and recurse:
                for index, item in enumerate(ds[tag].value or ()):
                    self._explain(item, (*path, (int(tag), index)), (*parent_creators, creator),
                                  context, encoding.for_item(item), out)

    def _walk(self, ds: Dataset, path: Path, parent_creators: tuple[str | None, ...],
              context: FileContext, result: DatasetResult, encoding: Encoding) -> None:
        parents = tuple(tag for tag, _ in path)
        # Read before any change, so that removing a private creator (it comes first in tag
        # order) does not hide the creator of the block's elements from later rules.
        creators = private_creators(ds)
        for tag in list(ds.keys()):
            if tag & 0xFFFF == 0:
                # Group lengths would be stale after any change; they are retired anyway.
                del ds[tag]
                continue
            raw = ds.get_item(tag)
            vr = element_vr(raw, int(tag), encoding.implicit)
            creator = creators.get(_block_of(int(tag)))
            ref = ElementRef(int(tag), vr, creator, parents, parent_creators)
            rule = self.plan.rule_for(ref)
            if rule is None and self.profile_actions is not None:
                code = self.profile_actions.code(ref, context)
                result.count(PROFILE_ACTION_NAMES[code])
                if vr == "SQ":
                    code = self.profile_actions.sequence_code(code)
                    method = {"X": Method.REMOVE, "Z": Method.REDACT}.get(code, Method.KEEP)
                    self._sequence(ds, int(tag), method, None, path,
                                   (*parent_creators, creator), context, result, encoding)
                else:
                    self._profile_element(ds, raw, int(tag), vr, code, path, context,
                                          encoding)
                continue
            method = rule.method if rule else self.plan.config.unmatched
            result.count(method.value)
            if vr == "SQ":
                self._sequence(ds, int(tag), method, rule, path, (*parent_creators, creator),
                               context, result, encoding)
            else:
                self._element(ds, raw, int(tag), vr, method, rule, path, context, encoding)
                if method is Method.KEEP and self.profile_actions is not None:
                    # The second line of defence: kept text loses identifiers anyway.
                    self._profile_element(ds, raw, int(tag), vr, "T", path, context, encoding)
        if self.profile_actions is not None:
            drop_orphan_creators(ds)

    def _profile_element(self, ds: Dataset, raw: DataElement | RawDataElement, tag: int,
                         vr: str, code: str, path: Path, context: FileContext,
                         encoding: Encoding) -> None:
        assert self.profile_actions is not None
        if code == "X":
            del ds[tag]
            return
        where = describe_path(path, tag)
        try:
            data = decode_element(raw, vr, ds, encoding)
            outcome = self.profile_actions.apply(code, data, context)
        except MethodError as exc:
            raise ValueFormatError(where, exc.reason, vr,
                                   f"{self.profile_actions.describe()} action {code}") from None
        if outcome is Action.REMOVE:
            del ds[tag]
        elif outcome is not Action.KEEP:
            try:
                ds[tag] = encode_element(outcome, raw, ds, encoding)
            except (ValueError, OverflowError, struct.error) as exc:
                raise ValueFormatError(where, str(exc), vr, "profile") from None

    def _sequence(self, ds: Dataset, tag: int, method: Method, rule: Rule | None, path: Path,
                  parent_creators: tuple[str | None, ...], context: FileContext,
                  result: DatasetResult, encoding: Encoding) -> None:
        if method is Method.REMOVE:
            del ds[tag]
        elif method is Method.REDACT:
            ds[tag] = DataElement(tag, "SQ", Sequence())
        elif method is Method.KEEP:
            for index, item in enumerate(ds[tag].value or ()):
                self._walk(item, (*path, (tag, index)), parent_creators, context, result,
                           encoding.for_item(item))
        else:
            raise UnsupportedVRError(describe_path(path, tag),
                                     f"{method.value} does not support sequences", "SQ",
                                     rule.describe() if rule else "")

    def _element(self, ds: Dataset, raw: DataElement | RawDataElement, tag: int, vr: str,
                 method: Method, rule: Rule | None, path: Path, context: FileContext,
                 encoding: Encoding) -> None:
        if method is Method.KEEP:
            return
        if method is Method.REMOVE:
            del ds[tag]
            return
        assert rule is not None  # only keep and remove can come from "unmatched"
        where = describe_path(path, tag)
        try:
            data = decode_element(raw, vr, ds, encoding)
            outcome = apply_method(method, data, rule.settings, context)
        except MethodError as exc:
            error = UnsupportedVRError if exc.unsupported_vr else ValueFormatError
            raise error(where, exc.reason, vr, rule.describe()) from None
        if outcome is Action.REMOVE:
            del ds[tag]
        elif outcome is not Action.KEEP:
            try:
                ds[tag] = encode_element(outcome, raw, ds, encoding)
            except (ValueError, OverflowError, struct.error):
                raise ValueFormatError(where, "the new value does not fit the VR", vr,
                                       rule.describe()) from None


def _block_of(tag: int) -> int:
    """The tag of the private creator that reserves a private data element's block (or -1)."""
    group, element = tag >> 16, tag & 0xFFFF
    if not group & 1 or element < 0x1000:
        return -1
    return (group << 16) | (element >> 8)


def _creator_text(element: DataElement | RawDataElement) -> str | None:
    value = element.value
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("latin-1")
    if isinstance(value, MultiValue | list):
        value = "\\".join(str(v) for v in value)
    if not isinstance(value, str):
        return None
    text = value.strip(" \0")
    return text or None


def private_creators(ds: Dataset) -> dict[int, str]:
    """The private creators reserved in ``ds``, by the tag of their reservation.

    Values are read without converting the elements (so nothing about them changes).
    """
    creators: dict[int, str] = {}
    for tag in list(ds.keys()):  # iterating a Dataset would convert every element
        group, element = tag >> 16, tag & 0xFFFF
        if group & 1 and 0x10 <= element <= 0xFF:
            text = _creator_text(ds.get_item(tag))
            if text is not None:
                creators[int(tag)] = text
    return creators


def private_creator(ds: Dataset, tag: int) -> str | None:
    """The private creator of a private data element, read from its block's reservation."""
    block = _block_of(tag)
    if block < 0 or block not in ds:
        return None
    return _creator_text(ds.get_item(block))


def iter_refs(ds: Dataset, path: Path = (), implicit: bool | None = None
              ) -> Iterator[tuple[Path, int, str]]:
    """Yield (path, tag, VR) of every element at every depth (for reports and tests)."""
    with quiet_pydicom():
        if implicit is None:
            implicit = file_encoding(ds).implicit
        for tag in list(ds.keys()):
            vr = element_vr(ds.get_item(tag), int(tag), implicit)
            yield path, int(tag), vr
            if vr == "SQ":
                for index, item in enumerate(ds[tag].value or ()):
                    yield from iter_refs(item, (*path, (int(tag), index)), implicit)
