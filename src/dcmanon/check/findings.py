"""What ``check`` and ``scan`` report: findings, their counts, and the helpers both use.

A :class:`Finding` says where an identifier (or a sign of one) was found: the file, the element
(tag and keyword, with its sequence path), the category and the kind of identifier. It holds
the text that was found so that a user who asks (``--show-values``) can see it; every renderer
masks it otherwise (first character and length, :func:`mask`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from dcmanon.dicom.elements import element_vr, file_encoding
from dcmanon.dicom.tags import ElementPath, describe_tag
from dcmanon.dicom.walk import quiet_pydicom

TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                      "TM", "UC", "UI", "UR", "UT"})
"""VRs whose values are text (searched as text; other binary values are left to raw bytes)."""
FREE_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UC", "UT"})
"""VRs that can hold arbitrary words."""
FINDINGS_KEPT = 10_000
"""At most this many findings are kept in full; every one is still counted."""
_TOKEN = re.compile(r"[^\W_]+")
_UID_LIKE = re.compile(r"(?<![\d.])\d+(?:\.\d+){2,}(?![\d.])")


def mask(value: str) -> str:
    """Show a value as its first character and its length.

    Examples
    --------
    >>> mask("Zorbington")
    'Z… (10 chars)'
    """
    return f"{value[:1]}… ({len(value)} chars)" if value else "(empty)"


@dataclass(frozen=True)
class Finding:
    """One place where an identifier, or what looks like one, was found."""

    category: str
    """Where or what: ``element``, ``nested``, ``private``, ``file-meta``, ``file-name``,
    ``raw-bytes``, ``original-date``, ``original-uid``, ``integrity``... (see the checks)."""
    file: str
    """The file (relative to the folder checked); empty for a finding about the whole set."""
    element: str = ""
    """Tag and keyword with the sequence path, ``file name``, or ``byte offset N``."""
    kind: str = ""
    """What was found: ``name``, ``id``, ``date``, ``uid``, ``text``, ``phone``..."""
    value: str = field(default="", repr=False)
    """The text found (shown masked unless asked); empty when there is none."""
    message: str = ""
    """A description without any value."""
    frame: int | None = None
    """For text read in the pixels: the 0-based frame."""
    box: tuple[int, int, int, int] | None = None
    """For text read in the pixels: where, as (x, y, width, height) in the frame's pixels."""

    @property
    def element_group(self) -> str:
        """The element without item indices, to count findings by element."""
        return re.sub(r"\[\d+\]", "", self.element) or "(whole set)"


@dataclass(frozen=True)
class Thumbnail:
    """A small picture of one frame of an output, for the HTML report: PNG bytes with the
    blanked regions and the text read outlined (see :mod:`dcmanon.check.pixeltext`)."""

    file: str
    frame: int
    png: bytes = field(repr=False)
    width: int
    height: int
    blanked: tuple[tuple[int, int, int, int], ...] = ()
    """Regions where the output's pixels differ from the original's, as (x, y, width,
    height) in the frame's pixels."""
    text: tuple[tuple[int, int, int, int], ...] = ()
    """Lines of text OCR read in the output (allow-listed labels excepted)."""
    original_png: bytes | None = field(default=None, repr=False)
    """The same frame of the original, outlined alike: made only when values may be shown."""


@dataclass
class Report:
    """The findings of one check or scan, their counts, and what was looked at."""

    command: str
    files_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    by_category: Counter[str] = field(default_factory=Counter)
    by_element: Counter[str] = field(default_factory=Counter)
    total: int = 0
    notes: list[str] = field(default_factory=list)
    hidden_names: set[str] = field(default_factory=set)
    """File and folder names that carry identifiers: masked wherever a path is shown."""
    ignored: frozenset[str] = frozenset()
    """Categories the user chose not to count."""
    thumbnails: list[Thumbnail] = field(default_factory=list)
    """Pictures of the images whose pixels were cleaned or hold text (``--ocr``)."""
    thumbnails_left_out: int = 0
    """Images that had a picture due beyond the report's limit."""

    def add(self, finding: Finding) -> None:
        """Count a finding (and keep it, up to :data:`FINDINGS_KEPT`)."""
        if finding.category in self.ignored:
            return
        self.total += 1
        self.by_category[finding.category] += 1
        self.by_element[finding.element_group] += 1
        if len(self.findings) < FINDINGS_KEPT:
            self.findings.append(finding)

    def add_at(self, position: int, finding: Finding) -> bool:
        """Count a finding and keep it as if it had been added when the report held
        ``position`` findings (``total``, the findings kept or not): the findings kept stay
        the first :data:`FINDINGS_KEPT` of that order. Returns whether it was counted (its
        category is not ignored)."""
        if finding.category in self.ignored:
            return False
        self.total += 1
        self.by_category[finding.category] += 1
        self.by_element[finding.element_group] += 1
        if position < FINDINGS_KEPT:
            self.findings.insert(position, finding)
            del self.findings[FINDINGS_KEPT:]
        return True

    @property
    def passed(self) -> bool:
        """True when nothing was found."""
        return self.total == 0

    def shown_path(self, path: str, show_values: bool = False) -> str:
        """``path`` with the names that carry identifiers masked (unless ``show_values``)."""
        if show_values or not self.hidden_names or not path:
            return path
        return "/".join(mask(p) if p in self.hidden_names else p for p in path.split("/"))


# --- text values of a dataset ----------------------------------------------------------------


@dataclass(frozen=True)
class ElementText:
    """The text values of one element, and where it is."""

    path: ElementPath
    tag: int
    vr: str
    texts: tuple[str, ...]
    private: bool
    """The element, or a sequence it is in, is private."""

    @property
    def where(self) -> str:
        """Tag and keyword, with the sequence path."""
        parts = [f"{describe_tag(seq)}[{index}]" for seq, index in self.path]
        parts.append(describe_tag(self.tag))
        return " > ".join(parts)

    @property
    def category(self) -> str:
        """Where the element is: ``file-meta``, ``private``, ``nested`` or ``element``."""
        if self.tag >> 16 == 0x0002:
            return "file-meta"
        if self.private:
            return "private"
        return "nested" if self.path else "element"


def _texts(value: object, vr: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("latin-1").strip("\0 ")
        return (text,) if vr == "UN" else tuple(t for t in text.split("\\") if t)
    if isinstance(value, MultiValue | list | tuple):
        return tuple(str(v) for v in value if str(v))
    return (str(value),)


def iter_texts(ds: Dataset, *, meta: bool = True) -> Iterator[ElementText]:
    """Yield the text values of every element at every depth (file meta first, if ``meta``).

    Text VRs are read as text; ``UN`` values (private elements of implicit VR files) as
    Latin-1 text. Other binary values (pixel data, ``OB``...) are not read: the raw byte scan
    covers them. A value pydicom cannot convert is read from its bytes.
    """
    with quiet_pydicom():
        encoding = file_encoding(ds)
        file_meta = getattr(ds, "file_meta", None)
        if meta and file_meta is not None:
            yield from _walk(file_meta, (), False, False)
        yield from _walk(ds, (), encoding.implicit, False)


def _walk(ds: Dataset, path: ElementPath, implicit: bool, private: bool) -> Iterator[ElementText]:
    for tag in list(ds.keys()):
        raw: DataElement | RawDataElement = ds.get_item(tag, keep_deferred=True)
        vr = element_vr(raw, int(tag), implicit)
        is_private = private or bool(tag >> 16 & 1)
        if vr != "SQ" and vr not in TEXT_VRS and vr != "UN":
            continue
        try:
            element = ds[tag]
            value: object = element.value
        except Exception:  # noqa: BLE001  (a value pydicom cannot convert: its bytes instead)
            value = raw.value
        if vr == "SQ":
            items: list[object] = list(value) if isinstance(value, Sequence | list | tuple) \
                else []
            for index, item in enumerate(items):
                if isinstance(item, Dataset):
                    yield from _walk(item, (*path, (int(tag), index)), implicit, is_private)
            continue
        texts = _texts(value, vr)
        if texts:
            yield ElementText(path, int(tag), vr, texts, is_private)


# --- finding known identifiers in text ------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """A known identifier found in a text."""

    term: str
    """The identifier, normalized (lower case, words separated by one space)."""
    kind: str
    found: str
    """The text as it was found (for ``--show-values``)."""
    start: int = 0
    """Where in the text it starts."""


def tokens(text: str) -> tuple[str, ...]:
    """The words of ``text`` (letters and digits), lower case."""
    return tuple(t.lower() for t in _TOKEN.findall(text))


def uid_like(text: str) -> list[str]:
    """Substrings that look like UIDs (three or more dot-separated numbers)."""
    return _UID_LIKE.findall(text)


KIND_PRIORITY = ("name", "id", "date", "uid", "text")
MIN_COMPACT = 5
"""File names are also searched without word boundaries, for identifiers this long or longer."""


class TermIndex:
    """Known identifiers, searched word by word (so that millions of them stay fast).

    An identifier matches when its words appear in a text in order, with only separators
    between them, as whole words (case ignored): ``Doe^John`` is found in ``"for John Doe"``
    only if ``John Doe`` itself was added.
    """

    def __init__(self) -> None:
        self._by_first: dict[str, dict[tuple[str, ...], str]] = {}
        self._compact: dict[str, tuple[str, str]] = {}
        self.size = 0

    def add(self, text: str, kind: str) -> None:
        """Add an identifier (ignored when too short to search for on its own)."""
        words = tokens(text)
        if not _searchable(words):
            return
        slot = self._by_first.setdefault(words[0], {})
        old = slot.get(words)
        if old is None:
            self.size += 1
        if old is None or KIND_PRIORITY.index(kind) < KIND_PRIORITY.index(old):
            slot[words] = kind
            compact = "".join(words)
            if len(compact) >= MIN_COMPACT and kind != "text":
                self._compact[compact] = (" ".join(words), kind)

    def discard(self, text: str) -> None:
        """Forget an identifier (a value the profile keeps is not one)."""
        words = tokens(text)
        slot = self._by_first.get(words[0]) if words else None
        if slot is not None and slot.pop(words, None) is not None:
            self.size -= 1
            self._compact.pop("".join(words), None)

    def __contains__(self, text: str) -> bool:
        words = tokens(text)
        return bool(words) and words in self._by_first.get(words[0], {})

    def find(self, text: str) -> list[Match]:
        """The identifiers in ``text``: the longest at each place, not overlapping.

        Identifiers of kind ``text`` (the values of removed elements that are not names,
        IDs, dates or UIDs: often ordinary words) match only a whole value.
        """
        spans = [(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
        words = tuple(w for w, _, _ in spans)
        found: list[Match] = []
        i = 0
        while i < len(words):
            slot = self._by_first.get(words[i], {})
            best: tuple[str, ...] | None = None
            for term, kind in slot.items():
                if (best is None or len(term) > len(best)) and words[i:i + len(term)] == term \
                        and (kind != "text" or len(term) == len(words)):
                    best = term
            if best is None:
                i += 1
                continue
            end = i + len(best) - 1
            found.append(Match(" ".join(best), slot[best], text[spans[i][1]:spans[end][2]],
                               spans[i][1]))
            i = end + 1
        return found

    def find_in_name(self, name: str) -> list[Match]:
        """The identifiers in a file or folder name, also inside longer words
        (``ZorbingtonFennick.dcm``); numbers only where no digit touches them."""
        stem = name.rsplit(".", 1)[0] if "." in name else name
        found = {m.term: m for m in self.find(stem) + self.find(name)}
        covered = [(m.start, m.start + len(m.found)) for m in found.values()]
        for token in _TOKEN.finditer(name):
            if any(a < token.end() and token.start() < b for a, b in covered):
                continue  # already found as whole words
            word, low = token.group(), token.group().lower()
            for start in range(len(low)):
                for end in range(start + MIN_COMPACT, len(low) + 1):
                    hit = self._compact.get(low[start:end])
                    if hit is None or hit[0] in found:
                        continue
                    piece = low[start:end]
                    if (piece[0].isdigit() and start and low[start - 1].isdigit()) or (
                            piece[-1].isdigit() and end < len(low) and low[end].isdigit()):
                        continue
                    found[hit[0]] = Match(hit[0], hit[1], word[start:end],
                                          token.start() + start)
        return list(found.values())


def _searchable(words: tuple[str, ...]) -> bool:
    """Long enough to be worth a search: three letters, or four digits."""
    text = "".join(words)
    if not text:
        return False
    return len(text) >= 4 if text.isdigit() else len(text) >= 3
