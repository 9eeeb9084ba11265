"""Region rules: rectangles to blank, chosen by conditions on header elements.

One model for the three ways rules are written — the configuration's ``pixels`` section, CTP's
DicomPixelAnonymizer scripts (:mod:`dcmanon.pixels.ctp`) and deid's recipe ``%filter`` sections
(:mod:`dcmanon.pixels.deid`). Conditions are evaluated on the *original* header (before
de-identification), which is where the manufacturer, the series description and the
ultrasound regions the rules name still are.

How rules combine is a property of the :class:`RuleSet` they come in: a CTP script stops at its
first matching signature; deid and the configuration apply every rule that matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any, Protocol

from pydicom._dicom_dict import RepeatersDictionary
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.tag import Tag

from dcmanon.pixels.boxes import Box

REGION_SEQUENCES = ("SequenceOfUltrasoundRegions",)
"""Elements whose items give rectangles (RegionLocationMinX0 ... MaxY1, inclusive)."""


class Header(Protocol):
    """What a condition reads: the original values of top-level elements by tag."""

    def text(self, tag: int) -> str | None:
        """The element's value as text (``None`` when absent)."""

    def regions(self, keyword: str) -> list[tuple[int, int, int, int]]:
        """(x0, y0, x1, y1) of the items of a region sequence (inclusive corners)."""


# -- conditions -------------------------------------------------------------------------------

def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text.strip().split("\\")[0])
    except (InvalidOperation, ValueError):
        return None


def _less(value: str, wanted: str) -> bool:
    a, b = _number(value), _number(wanted)
    return a is not None and b is not None and a < b


def _greater(value: str, wanted: str) -> bool:
    a, b = _number(value), _number(wanted)
    return a is not None and b is not None and a > b


OPERATIONS: dict[str, Callable[[str, str], bool]] = {
    "equals": lambda value, wanted: value == wanted,
    "contains": lambda value, wanted: wanted in value,
    "startswith": lambda value, wanted: value.startswith(wanted),
    "endswith": lambda value, wanted: value.endswith(wanted),
    "lessthan": _less,
    "greaterthan": _greater,
}
"""Text operations, by lower-case name; ``matches`` (a regular expression), ``present``,
``missing`` and ``empty`` are handled by :class:`Condition` itself."""
OPERATION_NAMES = (*OPERATIONS, "matches", "search", "present", "missing", "empty")


@dataclass(frozen=True)
class Condition:
    """One test on one element: ``operation`` of its text against ``value``.

    ``matches`` is a full regular-expression match (CTP, Java's ``String.matches``),
    ``search`` a regular-expression search anywhere (deid's ``contains``).
    """

    tag: int
    operation: str
    value: str = ""
    ignore_case: bool = False

    def __post_init__(self) -> None:
        if self.operation not in OPERATION_NAMES:
            raise ValueError(f"unknown operation {self.operation!r}")
        if self.operation in ("matches", "search"):
            re.compile(self.value)  # a bad pattern is refused when the rule is made

    @property
    def tags(self) -> frozenset[int]:
        return frozenset({self.tag})

    def __call__(self, header: Header) -> bool:
        text = header.text(self.tag)
        if self.operation in ("present", "missing", "empty"):
            if self.operation == "present":
                return text is not None
            if self.operation == "missing":
                return text is None
            return text is not None and not text.strip()
        if text is None:
            return False
        wanted = self.value
        if self.ignore_case:
            text, wanted = text.lower(), wanted.lower()
        if self.operation in ("matches", "search"):
            flags = re.IGNORECASE if self.ignore_case else 0
            find = re.fullmatch if self.operation == "matches" else re.search
            return find(self.value, text, flags) is not None
        return OPERATIONS[self.operation](text, wanted)

    def describe(self) -> str:
        """The condition without its value (values may come from a recipe, but rules are shown
        in reports beside files)."""
        return f"{tag_name(self.tag)} {self.operation}"


@dataclass(frozen=True)
class All:
    """Every part holds (an empty ``All`` always holds)."""

    parts: tuple[Expression, ...]

    @property
    def tags(self) -> frozenset[int]:
        return frozenset().union(*(p.tags for p in self.parts))

    def __call__(self, header: Header) -> bool:
        return all(part(header) for part in self.parts)


@dataclass(frozen=True)
class Any_:
    """Some part holds."""

    parts: tuple[Expression, ...]

    @property
    def tags(self) -> frozenset[int]:
        return frozenset().union(*(p.tags for p in self.parts))

    def __call__(self, header: Header) -> bool:
        return any(part(header) for part in self.parts)


@dataclass(frozen=True)
class Not:
    """The part does not hold."""

    part: Expression

    @property
    def tags(self) -> frozenset[int]:
        return self.part.tags

    def __call__(self, header: Header) -> bool:
        return not self.part(header)


@dataclass(frozen=True)
class Chain:
    """Parts joined left to right by and/or with no precedence (how deid combines them)."""

    first: Expression
    rest: tuple[tuple[bool, Expression], ...]
    """(is_or, part) pairs."""

    @property
    def tags(self) -> frozenset[int]:
        return frozenset().union(self.first.tags, *(part.tags for _, part in self.rest))

    def __call__(self, header: Header) -> bool:
        value = self.first(header)
        for is_or, part in self.rest:
            value = (value or part(header)) if is_or else (value and part(header))
        return value


Expression = Condition | All | Any_ | Not | Chain
ALWAYS = All(())


NO_SUCH_ELEMENT = 0xFFFFFFFF
"""The tag of a name no dictionary knows (``Manfacturer``): CTP and deid read such an element
as absent, so its conditions never hold (and ``missing`` always does)."""


def parse_tag(text: str, *, lenient: bool = False) -> int:
    """A tag from a keyword, ``(gggg,eeee)``, ``[gggg,eeee]``, ``gggg,eeee`` or ``ggggeeee``;
    with ``lenient``, an unknown keyword gives :data:`NO_SUCH_ELEMENT`.

    Raises
    ------
    ValueError
        If ``text`` names no tag.
    """
    name = text.strip()
    tag = tag_for_keyword(name)
    if tag is not None:
        return int(tag)
    for mask, entry in RepeatersDictionary.items():  # OverlayDescription: the 6000 group
        if entry[4] == name:
            return int(mask.replace("x", "0"), 16)
    digits = re.fullmatch(r"[(\[]?\s*([0-9A-Fa-f]{4})\s*,?\s*([0-9A-Fa-f]{4})\s*[)\]]?", name)
    if digits is None and lenient and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        return NO_SUCH_ELEMENT
    if digits is None:
        raise ValueError(f"not a DICOM keyword or tag: {name!r}")
    return int(Tag(int(digits.group(1), 16), int(digits.group(2), 16)))


def tag_name(tag: int) -> str:
    """``(gggg,eeee) Keyword`` for messages."""
    keyword = keyword_for_tag(tag)
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})" + (f" {keyword}" if keyword else "")


# -- regions ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rect:
    """A rectangle as rules write it: ``x, y, width, height``; a negative ``x`` (``y``) counts
    from the right (bottom) edge, as in CTP scripts. ``width``/``height`` of ``None`` reach the
    edge."""

    x: int
    y: int
    width: int | None
    height: int | None

    def box(self, columns: int, rows: int, frames: frozenset[int] | None) -> Box:
        left = self.x + columns if self.x < 0 else self.x
        top = self.y + rows if self.y < 0 else self.y
        right = columns if self.width is None else left + self.width
        bottom = rows if self.height is None else top + self.height
        return Box(left, top, right, bottom, frames).clipped(columns, rows)


WHOLE = Rect(0, 0, None, None)


@dataclass(frozen=True)
class Region:
    """One step of a rule's regions: blank (or, with ``keep``, keep unblanked) an area.

    ``area`` is a rectangle or the keyword of a region sequence whose items give rectangles
    (``SequenceOfUltrasoundRegions``). Steps apply in order, across every rule that matches, as
    deid does: ``blank`` everything then ``keep`` the ultrasound regions blanks all but them.
    """

    area: Rect | str
    keep: bool = False

    def boxes(self, header: Header, columns: int, rows: int,
              frames: frozenset[int] | None) -> list[Box]:
        if isinstance(self.area, Rect):
            return [self.area.box(columns, rows, frames)]
        return [Box(x0, y0, x1 + 1, y1 + 1, frames).clipped(columns, rows)
                for x0, y0, x1, y1 in header.regions(self.area)]


@dataclass(frozen=True)
class RegionRule:
    """Apply ``regions`` (blank or keep, in order) when ``when`` holds."""

    name: str
    when: Expression
    regions: tuple[Region, ...] = ()
    frames: frozenset[int] | None = None
    """0-based frames the blanked boxes apply to (None: every frame)."""
    source: str = field(default="", compare=False)
    """Where the rule comes from (a script's name, ``configuration``, ``default library``)."""

    @property
    def rects(self) -> tuple[Rect, ...]:
        """The rectangles it blanks (not those it keeps, nor region sequences)."""
        return tuple(r.area for r in self.regions if isinstance(r.area, Rect) and not r.keep)


@dataclass(frozen=True)
class RuleSet:
    """Rules read from one place; ``first_match``: only the first rule that holds applies."""

    name: str
    rules: tuple[RegionRule, ...]
    first_match: bool = False

    @property
    def tags(self) -> frozenset[int]:
        """Every element a condition reads."""
        return frozenset().union(*(r.when.tags for r in self.rules))

    def matching(self, header: Header) -> list[RegionRule]:
        """The rules that apply to an image with this header."""
        found: list[RegionRule] = []
        for rule in self.rules:
            if rule.when(header):
                found.append(rule)
                if self.first_match:
                    break
        return found


# -- a header from a dataset ------------------------------------------------------------------

class DatasetHeader:
    """:class:`Header` over a pydicom dataset (values read on demand, each once)."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds
        self._texts: dict[int, str | None] = {}

    def text(self, tag: int) -> str | None:
        if tag not in self._texts:
            self._texts[tag] = _element_text(self.ds, tag)
        return self._texts[tag]

    def regions(self, keyword: str) -> list[tuple[int, int, int, int]]:
        found: list[tuple[int, int, int, int]] = []
        for item in self.ds.get(keyword) or ():
            corners = [item.get(k) for k in ("RegionLocationMinX0", "RegionLocationMinY0",
                                             "RegionLocationMaxX1", "RegionLocationMaxY1")]
            if all(isinstance(c, int) for c in corners):
                found.append((corners[0], corners[1], corners[2], corners[3]))
        return found


def _element_text(ds: Any, tag: int) -> str | None:
    element = ds.get(tag)
    if element is None:
        return None
    value = element.value
    if value is None:
        return ""
    if element.VR == "SQ":
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip("\0 ")
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def matched_boxes(sets: Iterable[RuleSet], header: Header, columns: int,
                  rows: int) -> tuple[list[Box], list[str]]:
    """The boxes to blank by every rule that applies, and the names of those rules."""
    steps: list[tuple[bool, Box]] = []
    names: list[str] = []
    for rule_set in sets:
        for rule in rule_set.matching(header):
            found = [(region.keep, box) for region in rule.regions
                     for box in region.boxes(header, columns, rows, rule.frames)]
            if any(not keep and box.area for keep, box in found):
                names.append(f"{rule_set.name}: {rule.name}")
            steps.extend(found)
    return resolve(steps, columns, rows), names


def resolve(steps: Iterable[tuple[bool, Box]], columns: int, rows: int) -> list[Box]:
    """The boxes left blanked after ``(keep, box)`` steps applied in order.

    The image is cut along every edge of every box; each cell of that grid is blanked or not
    by the last step covering it; blanked cells are merged along rows. Boxes limited to some
    frames are resolved per set of frames (a keep step applies to every frame).
    """
    steps = [(keep, box) for keep, box in steps if box.area]
    result: list[Box] = []
    frame_sets = list(dict.fromkeys(box.frames for keep, box in steps if not keep))
    for frames in frame_sets:
        chosen = [(keep, box) for keep, box in steps if keep or box.frames == frames]
        xs = sorted({0, columns, *(b.left for _, b in chosen), *(b.right for _, b in chosen)})
        ys = sorted({0, rows, *(b.top for _, b in chosen), *(b.bottom for _, b in chosen)})
        for top, bottom in pairwise(ys):
            start: int | None = None
            for left, right in pairwise(xs):
                blank = False
                for keep, b in chosen:
                    if b.left <= left and right <= b.right and b.top <= top and bottom <= b.bottom:
                        blank = not keep
                if blank and start is None:
                    start = left
                if not blank and start is not None:
                    result.append(Box(start, top, left, bottom, frames))
                    start = None
            if start is not None:
                result.append(Box(start, top, xs[-1], bottom, frames))
    return result


def mapping_header(values: Mapping[str, str]) -> Header:
    """A header from ``{keyword: text}`` (for tests and documentation examples).

    Examples
    --------
    >>> header = mapping_header({"Modality": "US"})
    >>> Condition(parse_tag("Modality"), "equals", "US")(header)
    True
    """
    texts = {parse_tag(k): v for k, v in values.items()}

    class _Mapped:
        def text(self, tag: int) -> str | None:
            return texts.get(tag)

        def regions(self, keyword: str) -> list[tuple[int, int, int, int]]:
            return []

    return _Mapped()
