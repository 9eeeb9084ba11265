"""Walk a dataset and give every element, at every depth, exactly one action.

The action is that of the first rule (in configuration order) whose selector matches the
element; elements no rule selects follow ``unmatched``. A rule on a sequence with remove or
redact acts on the whole sequence; keep keeps it and still processes its items.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from dcmanon.config.loader import Config, Rule
from dcmanon.config.selectors import ElementRef, PathSelector, TagSelector
from dcmanon.config.settings import Method
from dcmanon.dicom.constants import MAX_NESTING
from dcmanon.dicom.elements import (
    Encoding,
    decode_element,
    element_vr,
    encode_element,
    file_encoding,
)
from dcmanon.dicom.nesting import nesting_problem
from dcmanon.dicom.tags import ElementPath, describe_path
from dcmanon.dicom.walk import block_of, private_creators, quiet_pydicom
from dcmanon.errors import InputError, UnsupportedVRError, ValueFormatError
from dcmanon.header.profile import (
    ProfileActions,
    drop_orphan_creators,
    swallows_identifier,
)
from dcmanon.header.record import burned_in_flags, record_deidentification
from dcmanon.header.trial import TrialSteps
from dcmanon.methods import Action, FileContext, MethodError, apply_method
from dcmanon.phi.identifiers import Identifiers, collect_identifiers
from dcmanon.profiles import ProfileCode


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
class Step:
    """How one element is handled (the same for every element with the same tag, VR,
    private creator, sequence path and SOP class)."""

    action: str
    """The action's name, as counted in results."""
    sequence_method: Method
    """For a sequence: removed, emptied (redact) or kept with its items processed; other
    methods cannot act on sequences."""
    rule: Rule | None
    code: ProfileCode | None
    """The profile's action code when no rule selects the element."""

    @property
    def method(self) -> Method | None:
        """The rule's (or ``unmatched``'s) method; None when the profile decides."""
        return None if self.code is not None else self.sequence_method


_SEQUENCE_METHODS = {ProfileCode.REMOVE: Method.REMOVE, ProfileCode.EMPTY: Method.REDACT}
_STEP_CACHE_SIZE = 100_000
ElementOutcome = Action | RawDataElement
"""What becomes of an element: kept, removed, or replaced by new raw bytes."""


@dataclass(frozen=True)
class Decision:
    """What happens to one element, and why (for ``explain`` and ``--dry-run``)."""

    path: ElementPath
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


class Engine:
    """Applies a compiled plan to datasets.

    Parameters
    ----------
    config : Config
        The validated configuration.
    today : datetime.date, optional
        The date the 89-year rule is measured against (default: today).
    max_nesting : int
        Refuse sequences nested deeper than this (:mod:`dcmanon.dicom.nesting`); the readers
        refuse such files first, this guards datasets built in memory.
    """

    def __init__(self, config: Config, today: dt.date | None = None, *,
                 max_nesting: int = MAX_NESTING) -> None:
        self.max_nesting = max_nesting
        self.plan = Plan(config)
        self.today = today or dt.date.today()
        self.profile = config.profile
        self.profile_actions = ProfileActions(config) if config.profile else None
        self.trial = TrialSteps.of(config)
        """The subject table, computed ages and trial attributes (None: none of them)."""
        self.lookup_tags = self.trial.lookup_tags if self.trial is not None else frozenset()
        """Elements the subject table maps: their outcome depends on their value."""
        self._steps: dict[tuple[ElementRef, str], Step] = {}

    def context_for(self, ds: Dataset) -> FileContext:
        """Capture the original Study/Series/SOP Instance UIDs that scope date shifts, the
        patient, and the identifiers that cleaning removes from text."""
        with quiet_pydicom():
            return self.context_from(lambda keyword: ds.get(keyword),
                                     lambda: self.identifiers_of(
                                         collect_identifiers(ds, self.lookup_tags)))

    def identifiers_of(self, identifiers: Identifiers) -> Identifiers:
        """A dataset's identifiers, with the subject table's replacements of those it lists."""
        return identifiers if self.trial is None else self.trial.with_replacements(identifiers)

    def context_from(self, value: Callable[[str], object],
                     identifiers: Callable[[], Identifiers]) -> FileContext:
        """The file context from element values (as pydicom converts them, by keyword)."""
        def uid(keyword: str) -> str:
            found = value(keyword)
            return str(found).rstrip("\0 ") if found else ""

        if self.trial is not None:
            self.trial.check_patient(str(value("PatientID") or ""))
        if self.profile is None:
            return FileContext(uid("StudyInstanceUID"), uid("SeriesInstanceUID"),
                               uid("SOPInstanceUID"), self.today)
        patient = str(value("PatientID") or "").strip() or str(
            value("PatientName") or "").strip()
        return FileContext(uid("StudyInstanceUID"), uid("SeriesInstanceUID"),
                           uid("SOPInstanceUID"), self.today, uid("SOPClassUID"),
                           patient, identifiers())

    def apply(self, ds: Dataset) -> DatasetResult:
        """Anonymize ``ds`` in place.

        Raises
        ------
        ElementError
            If a method cannot process an element (the dataset must then be discarded).
        InputError
            If sequences nest deeper than ``max_nesting`` (the dataset must be discarded).
        LookupMissing
            If the subject table does not list the patient (nothing was changed).
        """
        result = DatasetResult()
        context = self.context_for(ds)
        with quiet_pydicom():
            # Captured before any change: a rule may rewrite SpecificCharacterSet itself.
            encoding = file_encoding(ds)
            if self.trial is not None:
                self.trial.add_age(ds)
            self._walk(ds, (), (), context, result, encoding)
            if self.profile is not None:
                record_deidentification(ds, self.profile)
                result.flags.extend(burned_in_flags(ds))
            if self.trial is not None:
                self.trial.stamp(ds)
        return result

    def step(self, ref: ElementRef, sop_class_uid: str) -> Step:
        """How an element is handled: the first rule that selects it, else the profile, else
        ``unmatched``. Decisions are cached: they depend on nothing else."""
        key = (ref, sop_class_uid)
        cached = self._steps.get(key)
        if cached is not None:
            return cached
        rule = self.plan.rule_for(ref)
        if rule is None and self.profile_actions is not None:
            code = self.profile_actions.code(ref, sop_class_uid)
            step = Step(code.action_name, _SEQUENCE_METHODS.get(code, Method.KEEP),
                        None, code)
        else:
            method = rule.method if rule else self.plan.config.unmatched
            step = Step(method.value, method, rule, None)
        if len(self._steps) > _STEP_CACHE_SIZE:
            self._steps.clear()
        self._steps[key] = step
        return step

    def describe_step(self, step: Step) -> str:
        """Why an element gets its action (for ``explain``): a rule, a profile row or
        ``unmatched``."""
        if step.rule is not None:
            return step.rule.describe()
        if step.code is not None and self.profile_actions is not None:
            return self.profile_actions.describe() + (
                ": not in Table E.1-1" if step.code is ProfileCode.UNLISTED
                else f": Table E.1-1 action {step.code}")
        return "unmatched"

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

    def _explain(self, ds: Dataset, path: ElementPath, parent_creators: tuple[str | None, ...],
                 context: FileContext, encoding: Encoding, out: list[Decision]) -> None:
        parents = tuple(tag for tag, _ in path)
        creators = private_creators(ds)
        for tag in sorted(ds.keys()):
            raw = ds.get_item(tag)
            vr = element_vr(raw, int(tag), encoding.implicit)
            creator = creators.get(block_of(int(tag)))
            step = self.step(ElementRef(int(tag), vr, creator, parents, parent_creators),
                             context.sop_class_uid)
            out.append(Decision(path, int(tag), vr, step.action, self.describe_step(step)))
            if vr == "SQ" and step.sequence_method is Method.KEEP:
                self._guard_depth(path, int(tag))
                for index, item in enumerate(ds[tag].value or ()):
                    self._explain(item, (*path, (int(tag), index)), (*parent_creators, creator),
                                  context, encoding.for_item(item), out)

    def _walk(self, ds: Dataset, path: ElementPath, parent_creators: tuple[str | None, ...],
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
            creator = creators.get(block_of(int(tag)))
            step = self.step(ElementRef(int(tag), vr, creator, parents, parent_creators),
                             context.sop_class_uid)
            result.count(step.action)
            if vr == "SQ":
                self._sequence(ds, int(tag), step, path, (*parent_creators, creator), context,
                               result, encoding)
                continue
            outcome = self.outcome(raw, int(tag), vr, step, path, context, encoding)
            if outcome is Action.REMOVE:
                del ds[tag]
            elif outcome is not Action.KEEP:
                ds[tag] = outcome
        if self.profile_actions is not None:
            drop_orphan_creators(ds)

    def _sequence(self, ds: Dataset, tag: int, step: Step, path: ElementPath,
                  parent_creators: tuple[str | None, ...], context: FileContext,
                  result: DatasetResult, encoding: Encoding) -> None:
        method = step.sequence_method
        if method is Method.REMOVE:
            del ds[tag]
        elif method is Method.REDACT:
            ds[tag] = DataElement(tag, "SQ", Sequence())
        elif method is Method.KEEP:
            self._guard_depth(path, tag)
            for index, item in enumerate(ds[tag].value or ()):
                self._walk(item, (*path, (tag, index)), parent_creators, context, result,
                           encoding.for_item(item))
        else:
            raise self.sequence_error(step, path, tag)

    def _guard_depth(self, path: ElementPath, tag: int) -> None:
        """Refuse to walk into a sequence nested deeper than the limit."""
        if len(path) >= self.max_nesting:
            raise InputError(nesting_problem(tag, self.max_nesting))

    def sequence_error(self, step: Step, path: ElementPath, tag: int) -> UnsupportedVRError:
        """The error for a rule whose method cannot act on a sequence."""
        return UnsupportedVRError(describe_path(path, tag),
                                  f"{step.action} does not support sequences", "SQ",
                                  step.rule.describe() if step.rule else "")

    def outcome(self, raw: DataElement | RawDataElement, tag: int, vr: str, step: Step,
                path: ElementPath, context: FileContext, encoding: Encoding) -> ElementOutcome:
        """What becomes of one element that is not a sequence: kept as it is, removed, or a
        new raw element in the dataset's encoding.

        Raises
        ------
        ElementError
            If the method cannot process the element.
        """
        if tag in self.lookup_tags:
            assert self.trial is not None
            try:
                replaced = self.trial.replace(raw, tag, vr, encoding)
            except (ValueError, OverflowError, struct.error, MethodError):
                raise ValueFormatError(describe_path(path, tag), "cannot be read as text", vr,
                                       "lookup") from None
            if replaced is not None:
                return replaced
        if step.code is not None:
            return self._profile_outcome(raw, tag, vr, step.code, path, context, encoding)
        assert step.method is not None
        if step.method is Method.KEEP:
            if self.profile_actions is None:
                return Action.KEEP
            # The second line of defence: kept text loses identifiers anyway.
            return self._profile_outcome(raw, tag, vr, ProfileCode.SCRUB, path, context,
                                         encoding)
        if step.method is Method.REMOVE:
            return Action.REMOVE
        rule = step.rule
        assert rule is not None  # only keep and remove can come from "unmatched"
        try:
            data = decode_element(raw, vr, None, encoding)
            outcome = apply_method(step.method, data, rule.settings, context)
        except MethodError as exc:
            error = UnsupportedVRError if exc.unsupported_vr else ValueFormatError
            raise error(describe_path(path, tag), exc.reason, vr, rule.describe()) from None
        if isinstance(outcome, Action):
            return outcome
        try:
            return encode_element(outcome, raw, None, encoding)
        except (ValueError, OverflowError, struct.error):
            raise ValueFormatError(describe_path(path, tag), "the new value does not fit the VR",
                                   vr, rule.describe()) from None

    def _profile_outcome(self, raw: DataElement | RawDataElement, tag: int, vr: str,
                         code: ProfileCode, path: ElementPath, context: FileContext,
                         encoding: Encoding) -> ElementOutcome:
        actions = self.profile_actions
        assert actions is not None
        if code is ProfileCode.REMOVE:
            return Action.REMOVE
        if actions.keeps_unread(code, vr):
            value, length = _stored(raw)
            if swallows_identifier(vr, value, length, context.identifiers, encoding.charsets):
                return Action.REMOVE
            return Action.KEEP
        try:
            data = decode_element(raw, vr, None, encoding)
            outcome = actions.apply(code, data, context)
        except MethodError as exc:
            raise ValueFormatError(describe_path(path, tag), exc.reason, vr,
                                   f"{actions.describe()} action {code}") from None
        if isinstance(outcome, Action):
            return outcome
        try:
            return encode_element(outcome, raw, None, encoding)
        except (ValueError, OverflowError, struct.error) as exc:
            raise ValueFormatError(describe_path(path, tag), str(exc), vr, "profile") from None


def _stored(raw: DataElement | RawDataElement) -> tuple[bytes | None, int]:
    """An element's value bytes (None if not read yet) and length, without decoding it."""
    if isinstance(raw, RawDataElement):
        return raw.value, raw.length
    value = raw.value
    parts = value if isinstance(value, list | tuple | MultiValue) else [value]
    data = "\\".join("" if v is None else str(v) for v in parts).encode("utf-8", "replace")
    return data, len(data)
