"""What a configuration will do to a file, element by element (``dcmanon explain``, ``--dry-run``).

Each row names the element (tag and keyword, with its sequence path), its VR, the action, the
value (masked: first character and length, unless asked), and why: the rule that matched (its
index and selector), the profile's row, or ``unmatched``. Nothing is changed or written.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dcmanon.check.findings import mask
from dcmanon.dicom.constants import UNDEFINED_LENGTH
from dcmanon.dicom.tags import describe_tag
from dcmanon.dicom.walk import quiet_pydicom
from dcmanon.header.engine import Decision, Engine
from dcmanon.io.files import META_ELEMENTS_KEPT

BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_META_ACTIONS = {
    0x00020000: ("replace", "file meta: group length recomputed"),
    0x00020002: ("replace", "file meta: follows SOPClassUID"),
    0x00020003: ("replace", "file meta: follows SOPInstanceUID"),
    0x00020012: ("replace", "file meta: dcmanon's implementation UID"),
    0x00020013: ("replace", "file meta: dcmanon's implementation name"),
}


@dataclass(frozen=True)
class ExplainRow:
    """One element and what will happen to it."""

    element: str
    """Tag and keyword with the sequence path (as rules' ``dicomTagPath`` see it)."""
    vr: str
    action: str
    value: str
    """Masked unless asked; ``N bytes`` for binary values, ``N item(s)`` for sequences."""
    source: str
    label: str = ""
    """The element as the table shows it: indented by depth, with its item number."""


def explain_dataset(engine: Engine, ds: Dataset, show_values: bool = False
                    ) -> list[ExplainRow]:
    """The rows for every element of ``ds``: file meta first, then the dataset at every depth.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> from dcmanon import parse_config
    >>> from dcmanon.header.engine import Engine
    >>> ds = Dataset()
    >>> ds.PatientName = "Doe^Jane"
    >>> config = parse_config('{"rules": [{"tag": "PatientName", "method": "redact"}]}')
    >>> row = explain_dataset(Engine(config), ds)[0]
    >>> row.element, row.action, row.value
    ('(0010,0010) PatientName', 'redact', 'D… (8 chars)')
    """
    rows: list[ExplainRow] = []
    with quiet_pydicom():
        meta: Dataset = getattr(ds, "file_meta", None) or Dataset()
        for tag in sorted(meta.keys()):
            action, source = _META_ACTIONS.get(int(tag), (
                ("keep", "file meta") if int(tag) in META_ELEMENTS_KEPT else
                ("remove", "file meta: only what identifies nothing is written")))
            element = meta[tag]
            rows.append(ExplainRow(describe_tag(int(tag)), str(element.VR), action,
                                   _value(meta, int(tag), str(element.VR), show_values), source,
                                   describe_tag(int(tag))))
        for decision in engine.explain(ds):
            rows.append(_row(ds, decision, show_values))
    return rows


def _row(ds: Dataset, decision: Decision, show_values: bool) -> ExplainRow:
    item = ds
    for seq, index in decision.path:
        item = item[seq].value[index]
    depth = len(decision.path)
    label = describe_tag(decision.tag) if not depth else \
        f"{'  ' * depth}[{decision.path[-1][1]}] {describe_tag(decision.tag)}"
    return ExplainRow(decision.element, decision.vr, decision.action,
                      _value(item, decision.tag, decision.vr, show_values), decision.source,
                      label)


def _value(item: Dataset, tag: int, vr: str, show_values: bool) -> str:
    raw = item.get_item(tag, keep_deferred=True)
    if vr == "SQ":
        try:
            return f"{len(item[tag].value or ())} item(s)"
        except Exception:  # noqa: BLE001  (explain shows what it can; pydicom may not parse it)
            return "sequence (unreadable)"
    if vr in BINARY_VRS or tag >> 16 == 0x7FE0:
        length = getattr(raw, "length", None)
        if not isinstance(length, int) or length == UNDEFINED_LENGTH:
            value = raw.value if raw is not None else None
            length = len(value) if isinstance(value, bytes | bytearray) else None
        return f"{length} bytes" if length is not None else "encapsulated"
    try:
        value = item[tag].value
    except Exception:  # noqa: BLE001  (a value pydicom cannot convert: its bytes instead)
        value = raw.value if raw is not None else None
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("latin-1")
    elif isinstance(value, MultiValue | list | tuple):
        text = "\\".join(str(v) for v in value)
    else:
        text = "" if value is None else str(value)
    text = text.rstrip("\0 ")
    if not text:
        return ""
    return text if show_values else mask(text)


def render_explain(rows: list[ExplainRow]) -> str:
    """The rows as an aligned text table (nested elements indented under their sequence)."""
    header = ExplainRow("ELEMENT", "VR", "ACTION", "VALUE", "WHY (rule, profile row)",
                        "ELEMENT")
    table = [header, *rows]
    label_width = min(max(len(r.label or r.element) for r in table), 60)
    action_width = max(len(r.action) for r in table)
    value_width = min(max(len(r.value) for r in table), 40)
    lines = [f"{r.label or r.element:<{label_width}}  {r.vr:<2}  {r.action:<{action_width}}  "
             f"{r.value:<{value_width}}  {r.source}".rstrip() for r in table]
    return "\n".join(lines)
