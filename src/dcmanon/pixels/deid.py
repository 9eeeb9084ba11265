"""deid recipes' ``%filter`` sections, read as users have them and combined as deid does.

.. code-block:: text

    %filter graylist
    LABEL GE Logiq # (contributor)
      contains Manufacturer GE
      + contains ManufacturerModelName LOGIQ9 || equals Rows 480
      ctpcoordinates 0,0,640,30

How deid really combines conditions (read from its code; its documentation says otherwise):
the criteria lines under one ``LABEL`` are joined by *and* (a line's leading ``+`` or ``||``
changes nothing); inside a line ``+`` (and) and ``||`` (or) apply left to right, with no
precedence. ``contains`` is a regular-expression search, ``equals`` an exact match, both on
lower-cased text. Every matching ``LABEL`` of every group applies, in file order; a ``LABEL``
with no criteria always matches. ``coordinates`` are ``x0,y0,x1,y1``, ``ctpcoordinates``
``x,y,w,h``; ``all`` is the whole image, ``from:Keyword`` the regions of a region sequence;
``keepcoordinates`` keeps an area from blanking by earlier steps.

One departure: a ``+`` that is part of a value (``SOMATOM Definition AS+``) stays in the value
(deid splits on it); operators must stand between spaces.
"""

from __future__ import annotations

import re

from dcmanon.pixels.rules import (
    ALWAYS,
    WHOLE,
    All,
    Chain,
    Condition,
    Expression,
    Not,
    Rect,
    Region,
    RegionRule,
    RuleSet,
    parse_tag,
)

ACTIONS = ("contains", "notcontains", "equals", "notequals", "missing", "present", "empty")
_OPERATOR = re.compile(r"(?:^|\s+)(\+|\|\|)(?:\s+|$)")


class RecipeError(ValueError):
    """A recipe cannot be read; the message names the line."""


def parse_deid_recipe(text: str, name: str = "deid recipe") -> list[RuleSet]:
    """Read the ``%filter`` sections of a deid recipe: one rule set per group.

    Parameters
    ----------
    text : str
        The recipe (``%header`` and other sections are skipped).
    name : str
        What the rules are called in reports (the file's name).

    Raises
    ------
    RecipeError
        If a line under a ``LABEL`` cannot be read (the line is named).

    Examples
    --------
    >>> sets = parse_deid_recipe('''%filter graylist
    ... LABEL Demo
    ...   contains Modality US
    ...   ctpcoordinates 0,0,100,20''')
    >>> [(s.name, s.rules[0].rects) for s in sets]
    [('deid recipe graylist', (Rect(x=0, y=0, width=100, height=20),))]
    """
    sets: list[RuleSet] = []
    group: str | None = None
    rules: list[RegionRule] = []
    label: str | None = None
    criteria: list[tuple[bool, Expression]] = []
    regions: list[Region] = []

    def close_label() -> None:
        nonlocal label
        if label is not None:
            rules.append(RegionRule(label, _chain(criteria), tuple(regions), source=name))
        label = None
        criteria.clear()
        regions.clear()

    def close_group() -> None:
        close_label()
        if group is not None:
            sets.append(RuleSet(f"{name} {group}", tuple(rules)))
        rules.clear()

    for number, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.split("#", 1)[0].strip() if raw_line.lstrip().startswith(
            "#") else raw_line.strip()
        if not line:
            continue
        if line.startswith("%"):
            close_group()
            words = line[1:].split()
            group = words[1] if words[:1] == ["filter"] and len(words) > 1 else None
            continue
        if group is None:
            continue
        try:
            if line.upper().startswith("LABEL"):
                close_label()
                label = line[5:].split("#", 1)[0].strip() or f"LABEL at line {number}"
                continue
            if label is None:
                raise RecipeError("a criterion before any LABEL")
            keyword = line.split(None, 1)[0].lower()
            if keyword in ("coordinates", "ctpcoordinates", "keepcoordinates"):
                regions.append(_region(keyword, line.split(None, 1)[1:]))
            else:
                criteria.extend(_line(line))
        except (RecipeError, ValueError, IndexError) as exc:
            raise RecipeError(f"{name}, line {number}: {exc}") from None
    close_group()
    return sets


def _chain(criteria: list[tuple[bool, Expression]]) -> Expression:
    if not criteria:
        return ALWAYS
    return Chain(criteria[0][1], tuple(criteria[1:]))


def _line(line: str) -> list[tuple[bool, Expression]]:
    """One criteria line: (is_or, condition) pairs; the line's own leading operator is and."""
    parts = _OPERATOR.split(" " + line if line[:1] in "+|" else line)
    # split gives [text, op, text, op, text...]; a leading operator leaves an empty first text
    if parts and not parts[0].strip():
        parts = parts[2:]
    found: list[tuple[bool, Expression]] = [(False, _criterion(parts[0]))]
    for operator, text in zip(parts[1::2], parts[2::2], strict=True):
        found.append((operator == "||", _criterion(text)))
    return found


def _criterion(text: str) -> Expression:
    words = text.split(None, 2)
    if len(words) < 2:
        raise RecipeError(f"a criterion needs an action and a field: {text.strip()!r}")
    action, field_name = words[0].lower(), words[1]
    if action not in ACTIONS:
        raise RecipeError(f"unknown action {words[0]!r} (known: {', '.join(ACTIONS)})")
    tag = parse_tag(field_name, lenient=True)  # deid reads an unknown field as absent
    value = words[2].strip() if len(words) > 2 else ""
    if action in ("missing", "present", "empty"):
        return Condition(tag, action)
    if action.endswith("contains"):
        condition = Condition(tag, "search", value.lower(), ignore_case=True)
    else:
        condition = Condition(tag, "equals", value, ignore_case=True)
    return Not(condition) if action.startswith("not") else condition


def _region(keyword: str, rest: list[str]) -> Region:
    if not rest:
        raise RecipeError(f"{keyword} without a value")
    value = "".join(rest[0].split())
    keep = keyword == "keepcoordinates"
    if value.lower() == "all":
        return Region(WHOLE, keep)
    if value.lower().startswith("from:"):
        return Region(value[5:], keep)
    numbers = [int(n) for n in value.split(",")]
    if len(numbers) != 4:
        raise RecipeError(f"{keyword} needs four numbers")
    if keyword == "ctpcoordinates":
        return Region(Rect(*numbers), keep)
    x0, y0, x1, y1 = numbers
    return Region(Rect(x0, y0, x1 - x0, y1 - y0), keep)


__all__ = ["All", "RecipeError", "parse_deid_recipe"]
