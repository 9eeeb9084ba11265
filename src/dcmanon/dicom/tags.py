"""Naming of tags and element locations for messages (never values)."""

from __future__ import annotations

from pydicom.datadict import keyword_for_tag
from pydicom.tag import BaseTag, Tag

ElementPath = tuple[tuple[int, int], ...]
"""Where an element sits: the (sequence tag, item index) pairs that lead to it, outermost first."""


def format_tag(tag: int) -> str:
    """Return ``(gggg,eeee)`` in upper-case hex."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def keyword_of(tag: int) -> str:
    """Return the dictionary keyword of ``tag`` or a description of what it is."""
    t: BaseTag = Tag(tag)
    if t.is_private:
        if t.is_private_creator:
            return "PrivateCreator"
        return "Private"
    keyword = keyword_for_tag(t)
    if keyword:
        return keyword
    if t.element == 0:
        return "GroupLength"
    return "Unknown"


def describe_tag(tag: int) -> str:
    """Return ``(gggg,eeee) Keyword``, the way every message names an element."""
    return f"{format_tag(tag)} {keyword_of(tag)}"


def describe_path(path: ElementPath, tag: int) -> str:
    """Name an element inside nested sequences.

    Parameters
    ----------
    path : tuple of (sequence tag, item index)
        The sequences and items that lead to the element, outermost first.
    tag : int
        The element's own tag.
    """
    parts = [f"{describe_tag(seq)}[{index}]" for seq, index in path]
    parts.append(describe_tag(tag))
    return " > ".join(parts)
