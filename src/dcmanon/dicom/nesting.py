"""How deep sequences may nest, checked without recursion.

PS3.5 sets no limit; real files rarely nest deeper than about ten levels (structured reports,
the deepest, stay well under twenty). A file nesting thousands of levels deep is hostile: every
recursive walk (pydicom's reader, the rules, the checks) would exhaust Python's stack. Files
nesting deeper than the limit are refused, naming the sequence where the limit was passed.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dcmanon.dicom.constants import MAX_NESTING, MAX_NESTING_ALLOWED
from dcmanon.dicom.elements import element_vr, file_encoding
from dcmanon.dicom.tags import describe_tag
from dcmanon.dicom.walk import quiet_pydicom


def check_nesting_limit(limit: int) -> int:
    """Return ``limit`` if it is a usable nesting limit.

    Raises
    ------
    ValueError
        If it is not between 1 and :data:`MAX_NESTING_ALLOWED`.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not (
            1 <= limit <= MAX_NESTING_ALLOWED):
        raise ValueError(f"max_nesting must be a whole number from 1 to {MAX_NESTING_ALLOWED}")
    return limit


def nesting_problem(tag: int, limit: int) -> str:
    """The message for a sequence ``tag`` nested deeper than ``limit`` levels (no value)."""
    return f"sequences nested more than {limit} levels deep (at {describe_tag(tag)})"


def too_deep(ds: Dataset, limit: int = MAX_NESTING) -> int | None:
    """The tag of a sequence of ``ds`` nested deeper than ``limit`` levels, else None.

    Walks with a stack of its own (no recursion), converting sequences one level at a time.
    """
    implicit = file_encoding(ds).implicit
    stack: list[tuple[Dataset, int]] = [(ds, 1)]
    with quiet_pydicom():
        while stack:
            current, level = stack.pop()
            for tag in list(current.keys()):
                element = current.get_item(tag, keep_deferred=True)
                if element_vr(element, int(tag), implicit) != "SQ":
                    continue
                if level > limit:
                    return int(tag)
                items = current[tag].value
                if isinstance(items, Sequence):  # (anything else holds no items)
                    stack.extend((item, level + 1) for item in items
                                 if isinstance(item, Dataset))
    return None
