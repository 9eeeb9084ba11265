"""CTP's DicomPixelAnonymizer scripts, read as users have them.

A script is a list of signatures, each a condition in braces followed by the rectangles to blank:

.. code-block:: text

    US Logiq                                   <- any text outside { } and ( ) is comment
      { Manufacturer.containsIgnoreCase("GE") * Rows.equals("480") }
      (0,0,640,30) (-100,0,100,40)

Conditions are ``Keyword.method("value")`` or ``[gggg,eeee].method("value")`` joined by ``*``
(and, binding first), ``+`` (or), ``!`` (not) and parentheses. Rectangles are ``(x,y,w,h)``;
a negative ``x`` or ``y`` counts from the right or bottom edge. CTP applies the rectangles of
the *first* signature that matches, so a script becomes a ``first_match``
:class:`~dcmanon.pixels.rules.RuleSet`.
"""

from __future__ import annotations

import re

from dcmanon.pixels.rules import (
    All,
    Any_,
    Condition,
    Expression,
    Not,
    Rect,
    Region,
    RegionRule,
    RuleSet,
    parse_tag,
)

METHODS = {
    "equals": ("equals", False), "equalsignorecase": ("equals", True),
    "matches": ("matches", False),
    "contains": ("contains", False), "containsignorecase": ("contains", True),
    "startswith": ("startswith", False), "startswithignorecase": ("startswith", True),
    "endswith": ("endswith", False), "endswithignorecase": ("endswith", True),
    "islessthan": ("lessthan", False), "isgreaterthan": ("greaterthan", False),
}
"""CTP's condition methods → (operation, ignore case)."""

_RECT = re.compile(r"\(\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*\)")
_TOKEN = re.compile(r"""\s*(?:
    (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<op>[*+!().])
  | (?P<name>\[[0-9A-Fa-f]{4}\s*,\s*[0-9A-Fa-f]{4}\]|[A-Za-z_][A-Za-z0-9_]*)
)""", re.VERBOSE)


class ScriptError(ValueError):
    """A script cannot be read; the message names the line."""


def parse_ctp_script(text: str, name: str = "CTP script") -> RuleSet:
    """Read a DicomPixelAnonymizer script.

    Parameters
    ----------
    text : str
        The script.
    name : str
        What the rules are called in reports (the file's name).

    Raises
    ------
    ScriptError
        If a signature is unbalanced or a condition cannot be read (the line is named).

    Examples
    --------
    >>> rules = parse_ctp_script('Demo { Modality.equals("US") } (0,0,100,20)')
    >>> rules.first_match, rules.rules[0].rects
    (True, (Rect(x=0, y=0, width=100, height=20),))
    """
    rules: list[RegionRule] = []
    position = 0
    comment_start = 0
    previous = ""
    while True:
        start = text.find("{", position)
        if start < 0:
            break
        end = _closing_brace(text, start)
        line = text.count("\n", 0, start) + 1
        try:
            condition = _Parser(text[start + 1:end]).parse()
        except ScriptError as exc:
            raise ScriptError(f"{name}, line {line}: {exc}") from None
        following = text.find("{", end + 1)
        regions = text[end + 1:following if following >= 0 else len(text)]
        rects = tuple(Region(Rect(*(int(g) for g in m.groups())))
                      for m in _RECT.finditer(regions))
        label = _label(text[comment_start:start]) or previous or f"signature at line {line}"
        previous = label
        rules.append(RegionRule(label, condition, rects, source=name))
        position = end + 1
        comment_start = end + 1 + (regions.rfind(")") + 1 if rects else 0)
    return RuleSet(name, tuple(rules), first_match=True)


def _label(comment: str) -> str:
    """The last line of comment text before a signature: its name in reports."""
    lines = [ln.strip() for ln in _RECT.sub("", comment).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not set(ln) <= set("*")]
    return " ".join(lines[-1].split())[:80] if lines else ""


def _closing_brace(text: str, start: int) -> int:
    quoted = False
    for index in range(start + 1, len(text)):
        char = text[index]
        if char == '"' and text[index - 1] != "\\":
            quoted = not quoted
        elif char == "}" and not quoted:
            return index
    line = text.count("\n", 0, start) + 1
    raise ScriptError(f"line {line}: a signature opened with '{{' is never closed")


class _Parser:
    """Recursive descent over one signature: or := and ('+' and)*; and := not ('*' not)*."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        stripped = text.rstrip()
        while position < len(stripped):
            match = _TOKEN.match(stripped, position)
            if match is None or match.end() == position:
                raise ScriptError(f"cannot read the condition near {stripped[position:][:20]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0

    def parse(self) -> Expression:
        if not self.tokens:
            raise ScriptError("an empty signature")
        expression = self._or()
        if self.index != len(self.tokens):
            raise ScriptError(f"unexpected {self.tokens[self.index][1]!r} in the condition")
        return expression

    def _peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def _take(self, kind: str, value: str | None = None) -> str:
        if self.index >= len(self.tokens):
            raise ScriptError("the condition ends too early")
        found_kind, found = self.tokens[self.index]
        if found_kind != kind or (value is not None and found != value):
            raise ScriptError(f"expected {value or kind}, found {found!r}")
        self.index += 1
        return found

    def _or(self) -> Expression:
        parts = [self._and()]
        while self._peek() == "+":
            self.index += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else Any_(tuple(parts))

    def _and(self) -> Expression:
        parts = [self._not()]
        while self._peek() == "*":
            self.index += 1
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def _not(self) -> Expression:
        if self._peek() == "!":
            self.index += 1
            return Not(self._not())
        if self._peek() == "(":
            self.index += 1
            inner = self._or()
            self._take("op", ")")
            return inner
        return self._condition()

    def _condition(self) -> Expression:
        element = self._take("name")
        self._take("op", ".")
        method = self._take("name")
        self._take("op", "(")
        value = self._take("string")[1:-1].replace('\\"', '"')
        self._take("op", ")")
        try:
            tag = parse_tag(element, lenient=True)  # CTP reads it as absent
        except ValueError as exc:
            raise ScriptError(str(exc)) from None
        known = METHODS.get(method.lower())
        if known is None:
            raise ScriptError(f"unknown method {method!r}")
        operation, ignore_case = known
        try:
            return Condition(tag, operation, value, ignore_case)
        except Exception as exc:  # noqa: BLE001  (a bad regular expression in ``matches``)
            raise ScriptError(f"{method}: {exc}") from None
