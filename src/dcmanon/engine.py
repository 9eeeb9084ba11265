"""Walk a dataset and give every element, at every depth, exactly one action.

The action is that of the first rule (in configuration order) whose selector matches the
element; elements no rule selects follow ``unmatched``. A rule on a sequence with remove or
redact acts on the whole sequence; keep keeps it and still processes its items.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dcmanon.config.loader import Config, Rule
from dcmanon.config.selectors import ElementRef, PathSelector, TagSelector
from dcmanon.config.settings import Method
from dcmanon.elements import decode_element, element_vr, encode_element
from dcmanon.errors import UnsupportedVRError, ValueFormatError
from dcmanon.methods import Action, FileContext, MethodError, apply_method
from dcmanon.tags import describe_path

Path = tuple[tuple[int, int], ...]


@dataclass
class DatasetResult:
    """What was done to one dataset: how many elements each action handled (never values)."""

    actions: Counter[str] = field(default_factory=Counter)

    def count(self, action: str) -> None:
        """Record one element handled by ``action``."""
        self.actions[action] += 1


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
        if not self._has_paths and ref.parents:
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

    def context_for(self, ds: Dataset) -> FileContext:
        """Capture the original Study/Series/SOP Instance UIDs that scope date shifts."""
        def uid(keyword: str) -> str:
            value = ds.get(keyword)
            return str(value).rstrip("\0 ") if value else ""

        with quiet_pydicom():
            return FileContext(uid("StudyInstanceUID"), uid("SeriesInstanceUID"),
                               uid("SOPInstanceUID"), self.today)

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
            self._walk(ds, (), context, result, ds)
        return result

    def _walk(self, ds: Dataset, path: Path, context: FileContext, result: DatasetResult,
              root: Dataset) -> None:
        parents = tuple(tag for tag, _ in path)
        for tag in list(ds.keys()):
            if tag & 0xFFFF == 0:
                # Group lengths would be stale after any change; they are retired anyway.
                del ds[tag]
                continue
            raw = ds.get_item(tag)
            vr = element_vr(raw, tag)
            ref = ElementRef(int(tag), vr, private_creator(ds, int(tag)), parents)
            rule = self.plan.rule_for(ref)
            method = rule.method if rule else self.plan.config.unmatched
            result.count(method.value)
            if vr == "SQ":
                self._sequence(ds, int(tag), method, rule, path, context, result, root)
            else:
                self._element(ds, raw, int(tag), vr, method, rule, path, context, root)

    def _sequence(self, ds: Dataset, tag: int, method: Method, rule: Rule | None, path: Path,
                  context: FileContext, result: DatasetResult, root: Dataset) -> None:
        if method is Method.REMOVE:
            del ds[tag]
        elif method is Method.REDACT:
            ds[tag] = DataElement(tag, "SQ", Sequence())
        elif method is Method.KEEP:
            for index, item in enumerate(ds[tag].value or ()):
                self._walk(item, (*path, (tag, index)), context, result, root)
        else:
            raise UnsupportedVRError(describe_path(path, tag),
                                     f"{method.value} does not support sequences", "SQ",
                                     rule.describe() if rule else "")

    def _element(self, ds: Dataset, raw: DataElement | RawDataElement, tag: int, vr: str,
                 method: Method, rule: Rule | None, path: Path, context: FileContext,
                 root: Dataset) -> None:
        if method is Method.KEEP:
            return
        if method is Method.REMOVE:
            del ds[tag]
            return
        assert rule is not None  # only keep and remove can come from "unmatched"
        where = describe_path(path, tag)
        try:
            data = decode_element(raw, vr, root)
            outcome = apply_method(method, data, rule.settings, context)
        except MethodError as exc:
            error = UnsupportedVRError if exc.unsupported_vr else ValueFormatError
            raise error(where, exc.reason, vr, rule.describe()) from None
        if outcome is Action.REMOVE:
            del ds[tag]
        elif outcome is not Action.KEEP:
            try:
                ds[tag] = encode_element(outcome, raw, root)
            except ValueError as exc:
                raise ValueFormatError(where, str(exc), vr, rule.describe()) from None


def private_creator(ds: Dataset, tag: int) -> str | None:
    """The private creator of a private data element, read from its block's reservation."""
    group, element = tag >> 16, tag & 0xFFFF
    if not group & 1 or element < 0x1000:
        return None
    reservation = ds.get((group << 16) | (element >> 8))
    if reservation is None or not isinstance(reservation.value, str):
        return None
    return reservation.value.strip()


def iter_refs(ds: Dataset, path: Path = ()) -> Iterator[tuple[Path, int, str]]:
    """Yield (path, tag, VR) of every element at every depth (for reports and tests)."""
    with quiet_pydicom():
        for tag in list(ds.keys()):
            vr = element_vr(ds.get_item(tag), int(tag))
            yield path, int(tag), vr
            if vr == "SQ":
                for index, item in enumerate(ds[tag].value or ()):
                    yield from iter_refs(item, (*path, (int(tag), index)))
