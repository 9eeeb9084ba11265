"""Element selectors: which elements a rule applies to.

A selector string is read, in this order, as a tag ``(gggg,eeee)`` / ``gggg,eeee`` /
``ggggeeee``, a private tag by creator ``(gggg,xxee:CREATOR)``, a masked tag ``(0010,xxxx)``,
a VR code ``PN``, a keyword ``PatientName``, or a dotted path of those into nested sequences
(``RequestAttributesSequence.RequestedProcedureID``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cache

from pydicom.datadict import keyword_dict, tag_for_keyword

from dcmanon.dicom.tags import format_tag

VR_CODES = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    "UN UR US UT UV".split()
)
_TAG = re.compile(r"^\(?\s*([0-9A-Fa-f]{4})\s*,?\s*([0-9A-Fa-f]{4})\s*\)?$")
_MASK = re.compile(r"^\(?\s*([0-9A-Fa-fxX]{4})\s*,?\s*([0-9A-Fa-fxX]{4})\s*\)?$")
_CREATOR = re.compile(
    r"^\(?\s*([0-9A-Fa-f]{4})\s*,\s*(?:[0-9A-Fa-fxX]{2})?([0-9A-Fa-f]{2}|[xX]{2})\s*:(.+?)\)?$"
)


@dataclass(frozen=True)
class ElementRef:
    """What a selector looks at: the element's tag, VR, private creator and sequence path."""

    tag: int
    vr: str
    creator: str | None = None
    parents: tuple[int, ...] = ()
    parent_creators: tuple[str | None, ...] = ()
    """The private creators of the sequences in ``parents`` (empty when unknown)."""


@dataclass(frozen=True)
class TagSelector:
    """One exact tag (private elements match by number too)."""

    tag: int

    def matches(self, ref: ElementRef) -> bool:
        """Whether the element is selected."""
        return ref.tag == self.tag

    def __str__(self) -> str:
        return format_tag(self.tag)


@dataclass(frozen=True)
class MaskedSelector:
    """A tag with wildcard nibbles: ``tag & mask == value``."""

    value: int
    mask: int
    text: str = field(compare=False)
    """The selector as written (for messages); two spellings of one mask are equal."""

    def matches(self, ref: ElementRef) -> bool:
        """Whether the element is selected."""
        return ref.tag & self.mask == self.value

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class VRSelector:
    """Every element of one VR (``NONE`` matches nothing, as in the reference)."""

    vr: str

    def matches(self, ref: ElementRef) -> bool:
        """Whether the element is selected."""
        return ref.vr == self.vr

    def __str__(self) -> str:
        return self.vr


@dataclass(frozen=True)
class CreatorSelector:
    """A private element by group, private creator and element offset (None: whole block)."""

    group: int
    creator: str
    offset: int | None

    def matches(self, ref: ElementRef) -> bool:
        """Whether the element is selected."""
        if ref.tag >> 16 != self.group or ref.creator is None:
            return False
        if ref.creator.strip() != self.creator:
            return False
        return self.offset is None or ref.tag & 0xFF == self.offset

    def __str__(self) -> str:
        element = "xxxx" if self.offset is None else f"xx{self.offset:02X}"
        return f"({self.group:04X},{element}:{self.creator})"


Single = TagSelector | MaskedSelector | VRSelector | CreatorSelector


@dataclass(frozen=True)
class PathSelector:
    """An element inside nested sequences: every step but the last names a sequence."""

    steps: tuple[Single, ...]

    def matches(self, ref: ElementRef) -> bool:
        """Whether the element is selected (the path must end at the element's parents)."""
        *sequences, last = self.steps
        if len(ref.parents) < len(sequences) or not last.matches(ref):
            return False
        start = len(ref.parents) - len(sequences)
        creators = ref.parent_creators or (None,) * len(ref.parents)
        pairs = zip(sequences, ref.parents[start:], creators[start:], strict=True)
        return all(step.matches(ElementRef(tag, "SQ", creator))
                   for step, tag, creator in pairs)

    def __str__(self) -> str:
        return ".".join(str(s) for s in self.steps)


Selector = Single | PathSelector


class SelectorError(ValueError):
    """A selector string does not parse; the message carries a hint."""


def _masked(group: str, element: str, text: str) -> MaskedSelector:
    digits = group + element
    value = int("".join("0" if c in "xX" else c for c in digits), 16)
    mask = int("".join("0" if c in "xX" else "F" for c in digits), 16)
    return MaskedSelector(value, mask, text)


def _parse_single(text: str) -> Single:
    if match := _TAG.match(text):
        return TagSelector(int(match[1] + match[2], 16))
    if match := _CREATOR.match(text):
        offset = None if match[2] in ("xx", "XX", "xX", "Xx") else int(match[2], 16)
        return CreatorSelector(int(match[1], 16), match[3].strip(), offset)
    if match := _MASK.match(text):
        return _masked(match[1], match[2], text)
    if text in VR_CODES or text == "NONE":
        return VRSelector(text)
    tag = tag_for_keyword(text)
    if tag is not None:
        return TagSelector(tag)
    raise SelectorError(_hint(text))


def _hint(text: str) -> str:
    message = f'"{text}" is not a tag, masked tag, VR or keyword'
    if text.upper() in VR_CODES:
        return f'{message} (VR codes are upper case: "{text.upper()}")'
    close = difflib.get_close_matches(text, _keywords(), n=1, cutoff=0.8)
    if not close:
        lowered = {k.lower(): k for k in _keywords()}
        close = [lowered[text.lower()]] if text.lower() in lowered else []
    return f'{message} (did you mean "{close[0]}"?)' if close else message


@cache
def _keywords() -> tuple[str, ...]:
    return tuple(keyword_dict)


@cache
def parse_selector(text: str) -> Selector:
    """Parse a selector string.

    Parameters
    ----------
    text : str
        ``(0010,0010)``, ``0010,0010``, ``00100010``, ``(0010,xxxx)``, ``PN``, ``PatientName``,
        ``(0009,xx10:ACME 1.0)`` or a dotted path such as
        ``RequestAttributesSequence.RequestedProcedureID``.

    Returns
    -------
    Selector

    Raises
    ------
    SelectorError
        If the text is not a selector; the message suggests the closest keyword.

    Examples
    --------
    >>> parse_selector("(0010, 0010)")
    TagSelector(tag=1048592)
    >>> str(parse_selector("RequestAttributesSequence.RequestedProcedureID"))
    '(0040,0275).(0040,1001)'
    """
    stripped = text.strip()
    if not stripped:
        raise SelectorError("empty selector")
    # A creator may contain dots ("SIEMENS MED 1.0"), so a path is only split outside of
    # parentheses, and not at all when a creator is written without them.
    parts = [stripped] if ":" in stripped and "(" not in stripped else _split_path(stripped)
    if len(parts) == 1:
        return _parse_single(stripped)
    if any(not p.strip() for p in parts):
        raise SelectorError(f'"{text}" has an empty step in its path')
    steps = []
    for part in parts:
        try:
            steps.append(_parse_single(part.strip()))
        except SelectorError as exc:
            raise SelectorError(f'in the path "{text}": {exc}') from None
    return PathSelector(tuple(steps))


def _split_path(text: str) -> list[str]:
    """Split a dotted path at the dots that are not inside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        if char == "." and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts
