"""Output names of the mirror layout without the identifiers that input names carry.

Hospital media exports name folders (and files) after the patient: ``77654033/CT1/...``,
``DOE_JOHN/...``. In the mirror layout, a path component that holds an identifier of the file
written under it (PatientID, OtherPatientIDs, AccessionNumber, PatientName's family and given
names, PatientBirthDate in its usual spellings) gets that identifier's pseudonym instead: the
value the output carries (found by applying the same anonymizer to the identifying elements
alone, so on every worker), or a keyed token when the output carries none. Nothing is shared
between workers: two files of one patient in one folder give the same folder name anywhere.

Matching ignores case; an identifier counts only where no digit touches its digits and no
letter touches its letters, except that identifiers of :data:`MIN_INSIDE` characters or more
are also found inside longer words (as ``dcmanon check`` looks for them).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydicom.charset import convert_encodings
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.valuerep import PersonName

from dcmanon.anonymizer import Anonymizer
from dcmanon.dicom.constants import MAX_NESTING
from dcmanon.errors import DcmanonError
from dcmanon.io.files import read_dicom
from dcmanon.io.inflate import MAX_INFLATED_SIZE
from dcmanon.io.rawdataset import NotPlain, RawFile, parse_file
from dcmanon.keys import patient_pseudonym
from dcmanon.phi.identifiers import date_spellings

CONTEXT_KEYWORDS = ("SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID",
                    "StudyInstanceUID", "SeriesInstanceUID")
"""What the engine's file context is made of (besides the patient): date shifts and UIDs
depend on them."""
IDENTIFYING_KEYWORDS = ("PatientID", "OtherPatientIDs", "AccessionNumber", "PatientName",
                        "PatientBirthDate")
READ_TAGS = [0x00080005, 0x00080016, 0x00080018, 0x00080050, 0x00100010, 0x00100020,
             0x00100030, 0x00101000, 0x0020000D, 0x0020000E]
"""The tags of :data:`CONTEXT_KEYWORDS` and :data:`IDENTIFYING_KEYWORDS`."""
_READ_TAG_SET = frozenset(READ_TAGS)
_TAG_OF = {keyword: BaseTag(tag) for keyword, tag in zip(
    ("SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "AccessionNumber",
     "PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs", "StudyInstanceUID",
     "SeriesInstanceUID"), READ_TAGS, strict=True)}
MIN_LENGTH = 3
"""Identifiers shorter than this are never looked for (too many false hits)."""
MIN_DIGITS = 4
"""Identifiers made of digits only are looked for from this length."""
MIN_INSIDE = 5
"""Identifiers this long are also found inside longer words (``MRNDOEJOHN``)."""
TOKEN_LENGTH = 10
CACHE_SIZE = 4096
MAX_COMPONENT = 200
"""A renamed component longer than this (in bytes; file systems allow 255) takes keyed tokens
instead of the values the output carries."""
_KEYWORD_OF = {"patient": "PatientID", "name": "PatientName", "accession": "AccessionNumber",
               "date": "PatientBirthDate"}
_WORD = re.compile(r"[0-9A-Za-z]")
_FILE_ID = re.compile(r"[A-Z0-9_]{1,8}")
_NOT_FILE_ID = re.compile(r"[^A-Z0-9_]")
_UNSAFE = re.compile(r"[^0-9A-Za-z_.+=@^-]")


@dataclass(frozen=True)
class Renamed:
    """A relative output path, and how many of its components were renamed."""

    path: str
    components: int = 0


@dataclass(frozen=True)
class _Term:
    kind: str
    """``patient``, ``name``, ``accession`` or ``date``."""
    text: str
    index: int = 0
    """The name component's index (family 0, given 1); the date spelling's index."""


def parse_header(path: str, max_nesting: int = MAX_NESTING) -> RawFile | None:
    """The header of the plain file at ``path`` (None: another kind of file, or unreadable),
    read once by a batch for both naming and anonymizing it."""
    try:
        return parse_file(path, max_nesting=max_nesting)
    except (NotPlain, DcmanonError):  # the file's own run reads it, or says why it cannot
        return None


def read_identity(path: str, *, max_inflated_size: int = MAX_INFLATED_SIZE,
                  max_nesting: int = MAX_NESTING,
                  parsed: RawFile | None = None) -> Dataset | None:
    """The identifying and context elements of the file at ``path`` (None if unreadable).

    Plain files are read by the byte-level parser (:mod:`dcmanon.io.rawdataset`), others by
    :func:`dcmanon.io.files.read_dicom` under the same limits as the anonymizer's own read (a
    deflate bomb or deep nesting is refused here as there); only :data:`READ_TAGS` are kept,
    undecoded until asked for. ``parsed`` is the file's header when the caller has it.
    """
    raw = parsed if parsed is not None and parsed.path == path else None
    if raw is None:
        try:
            raw = parse_file(path, max_nesting=max_nesting)
        except NotPlain:
            pass
        except DcmanonError:  # the file's own run fails it, saying why
            return None
    if raw is not None:
        ds = Dataset()
        for element in raw.elements:
            if element.tag in _READ_TAG_SET:
                ds._dict[BaseTag(element.tag)] = element.raw(raw.buffer, raw.implicit)
        ds.set_original_encoding(raw.implicit, True, ds._character_set)
        return ds
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full = read_dicom(path, max_inflated_size=max_inflated_size,
                              max_nesting=max_nesting)
    except Exception:  # noqa: BLE001  (the file's own run reports why it cannot be read)
        return None
    ds = Dataset()
    for tag in READ_TAGS:
        if tag in full:
            ds._dict[BaseTag(tag)] = full.get_item(tag)
    ds.set_original_encoding(full.is_implicit_VR, full.is_little_endian,
                             full.original_character_set)
    return ds


Identity = dict[str, tuple[str, ...]]
"""The values of :data:`CONTEXT_KEYWORDS` and :data:`IDENTIFYING_KEYWORDS` a file holds."""


def identity_of(ds: Dataset) -> Identity:
    """The identifying and context values of ``ds`` (as text; absent and empty ones left out).
    """
    found: Identity = {}
    codec = _codec(ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for keyword, tag in _TAG_OF.items():
            if tag not in ds._dict:
                continue
            element = ds._dict[tag]
            if codec is not None and isinstance(element, RawDataElement) \
                    and isinstance(element.value, bytes):
                values = [v.strip("\0 ") for v in element.value.decode(codec, "replace")
                          .split("\\")]
                values = [v for v in values if v]
            else:
                values = _text(ds, keyword)
            if values:
                found[keyword] = tuple(values)
    return found


def _codec(ds: Dataset) -> str | None:
    """The one Python codec of the dataset's character set (None: several, or unknown)."""
    element = ds._dict.get(BaseTag(0x00080005))
    if element is None:
        return "latin-1"  # the default repertoire (ASCII), read leniently
    value = element.value
    if isinstance(value, bytes):
        names = [n.strip() for n in value.decode("latin-1").strip("\0 ").split("\\")]
    else:
        names = [str(v) for v in (value if isinstance(value, list) else [value])]
    if len(names) != 1:
        return None
    try:
        codecs = convert_encodings(names)
    except Exception:  # noqa: BLE001  (an unknown character set: pydicom's way instead)
        return None
    return codecs[0] if len(codecs) == 1 else None


def _text(ds: Dataset, keyword: str) -> list[str]:
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001  (a value pydicom cannot convert: not looked for)
        return []
    if value is None or value == "":
        return []
    values = list(value) if isinstance(value, list | tuple) or (
        hasattr(value, "__iter__") and not isinstance(value, str | bytes | PersonName)) \
        else [value]
    return [str(v).strip() for v in values if str(v).strip()]


def _terms(identity: Identity) -> list[_Term]:
    """Every identifier of a file that a path component is searched for."""
    terms: list[_Term] = []
    for keyword in ("PatientID", "OtherPatientIDs"):
        terms.extend(_Term("patient", text) for text in identity.get(keyword, ()))
    terms.extend(_Term("accession", text) for text in identity.get("AccessionNumber", ()))
    for name in identity.get("PatientName", ()):
        for index, part in enumerate(name.split("=")[0].split("^")[:2]):
            terms.extend(_Term("name", word, index) for word in re.split(r"[\s,]+", part)
                         if word)
    for date in identity.get("PatientBirthDate", ()):
        terms.extend(_Term("date", spelling, index)
                     for index, spelling in enumerate(date_spellings(date)))
    return [t for t in terms if _searchable(t.text)]


def _searchable(text: str) -> bool:
    return len(text) >= (MIN_DIGITS if text.isdigit() else MIN_LENGTH)


def _spans(term: str, component: str) -> list[tuple[int, int]]:
    """Where ``term`` lies in ``component`` (case ignored), as :mod:`dcmanon.batch.names`
    matches: never where a digit touches a digit; letters touching letters only for long
    terms."""
    spans: list[tuple[int, int]] = []
    low, needle = component.lower(), term.lower()
    start = low.find(needle)
    while start >= 0:
        end = start + len(needle)
        if _free(low, start - 1, needle[0], len(needle)) and _free(low, end, needle[-1],
                                                                   len(needle)):
            spans.append((start, end))
            start = low.find(needle, end)
        else:
            start = low.find(needle, start + 1)
    return spans


def _free(text: str, at: int, edge: str, length: int) -> bool:
    """Whether the character at ``at`` (beside a match whose edge is ``edge``) lets it count."""
    if at < 0 or at >= len(text):
        return True
    beside = text[at]
    if edge.isdigit():
        return not beside.isdigit()
    if edge.isalpha() and beside.isalpha():
        return length >= MIN_INSIDE
    return True


class PathRenamer:
    """Names the mirror layout's outputs without the identifiers of the files under them.

    Parameters
    ----------
    anonymizer : Anonymizer
        The run's anonymizer: a component gets what it writes for the identifier.
    key : str
        Keys the tokens of identifiers the output does not carry (removed or emptied).
    """

    def __init__(self, anonymizer: Anonymizer, key: str) -> None:
        self.anonymizer = anonymizer
        self.key = key
        self._cache: dict[tuple[tuple[str, tuple[str, ...]], ...], Identity | None] = {}

    def rename(self, relative: str, source: str, file_ids: bool = False,
               parsed: RawFile | None = None) -> Renamed:
        """The output path of the input at ``relative`` (its file at ``source``).

        With ``file_ids`` (a file of a file-set, listed by a DICOMDIR), a component that was
        a conformant File ID component stays one: its new name is cut to the last 8 of its
        characters ``A-Z``, ``0-9`` and ``_`` (of ``ANON-7KX3M9QD2P``: ``X3M9QD2P``). A file
        that cannot be read keeps its path: it fails, and nothing is written. ``parsed`` is
        the file's header when the caller has it.
        """
        if not relative:
            return Renamed(relative)
        original = self._read(source, parsed)
        if original is None:
            return Renamed(relative)
        return self.rename_with(relative, identity_of(original), file_ids)

    def _read(self, source: str, parsed: RawFile | None) -> Dataset | None:
        return read_identity(source, max_inflated_size=self.anonymizer.max_inflated_size,
                             max_nesting=self.anonymizer.max_nesting, parsed=parsed)

    def patient(self, source: str, parsed: RawFile | None = None) -> str:
        """The patient as the output of the file at ``source`` names it: its new PatientID
        (or PatientName), else a keyed token; empty if the file cannot be read."""
        original = self._read(source, parsed)
        if original is None:
            return ""
        identity = identity_of(original)
        after = self._anonymized(identity, False)
        return _first(after, "PatientID", identity) or _first(after, "PatientName", identity) \
            or self.token("patient", _patient_of(identity))

    def rename_with(self, relative: str, original: Identity | Dataset,
                    file_ids: bool = False) -> Renamed:
        """As :meth:`rename`, with the original's identifying elements already read."""
        if isinstance(original, Dataset):
            original = identity_of(original)
        terms = sorted(_terms(original), key=lambda t: len(t.text), reverse=True)
        parts = list(PurePosixPath(relative).parts)
        if not terms:
            return Renamed(relative)
        replacements: dict[_Term, str] | None = None
        renamed = 0
        for index, part in enumerate(parts):
            found: list[tuple[int, int, _Term]] = []
            for term in terms:
                for start, end in _spans(term.text, part):
                    if not any(a < end and start < b for a, b, _ in found):
                        found.append((start, end, term))
            if not found:
                continue
            if replacements is None:
                replacements = self._replacements(original, [t for _, _, t in found])
            elif any(term not in replacements for _, _, term in found):
                replacements.update(self._replacements(original, [t for _, _, t in found]))
            new = _replaced(part, found, replacements)
            if len(new.encode()) > MAX_COMPONENT:  # long values (hashes): keyed tokens
                new = _replaced(part, found, {t: self.token(t.kind, t.text)
                                              for _, _, t in found})
            if file_ids and _FILE_ID.fullmatch(part):
                new = _file_id(new) or _file_id(self.token(found[0][2].kind, found[0][2].text))
            if new != part:
                parts[index] = new
                renamed += 1
        return Renamed("/".join(parts), renamed) if renamed else Renamed(relative)

    def _replacements(self, original: Identity, terms: list[_Term]) -> dict[_Term, str]:
        """What each identifier becomes in a path: what the output carries, else a token."""
        after = self._anonymized(original, any(t.kind == "date" for t in terms))
        patient = _first(after, "PatientID", original) or _first(after, "PatientName", original)
        patient_token = patient or self.token("patient", _patient_of(original))
        names: list[str] = []
        for name in (after or {}).get("PatientName", ()):
            if name not in original.get("PatientName", ()):
                names = [p.strip() for p in name.split("=")[0].split("^")]
                break
        accession = _first(after, "AccessionNumber", original)
        birth = _first(after, "PatientBirthDate", original)
        kept = {kind for kind, keyword in _KEYWORD_OF.items()
                if after is not None and original.get(keyword)
                and after.get(keyword) == original.get(keyword)}
        result: dict[_Term, str] = {}
        for term in terms:
            if term.kind in kept:
                value = term.text  # the configuration keeps it: so does the name
            elif term.kind == "patient":
                value = patient_token
            elif term.kind == "name":
                value = names[term.index] if term.index < len(names) and names[term.index] \
                    else (names[0] if names and names[0] else patient_token)
            elif term.kind == "accession":
                value = accession or self.token("accession", term.text)
            else:
                spellings = date_spellings(birth) if birth else []
                value = spellings[term.index] if term.index < len(spellings) \
                    else self.token("date", term.text)
            result[term] = _safe(value) or self.token(term.kind, term.text)
        return result

    def _anonymized(self, original: Identity, dated: bool) -> Identity | None:
        """The identifying values as the output carries them, or None when the anonymizer does
        not give the same twice (a random method: tokens are used instead).

        Cached: files of one series share them. The SOP Instance UID and the birth date are
        left out unless a birth date is to be renamed (a date shift may be scoped to the
        instance; nothing else depends on them).
        """
        values = {k: v for k, v in original.items()
                  if dated or k not in ("SOPInstanceUID", "PatientBirthDate")}
        key = tuple(sorted(values.items()))
        if key in self._cache:
            return self._cache[key]
        results: list[Identity] = []
        for _ in range(2):
            ds = Dataset()
            for keyword, texts in values.items():
                setattr(ds, keyword, list(texts) if len(texts) > 1 else texts[0])
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.anonymizer.anonymize_dataset(ds)
                    results.append(identity_of(ds))
            except DcmanonError:
                results = [{}, {"failed": ()}]
                break
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        found = self._cache[key] = results[0] if results[0] == results[1] else None
        return found

    def token(self, kind: str, value: str) -> str:
        """A keyed token for an identifier the output does not carry: ``ANON-…`` for the
        patient (as the default profile's pseudonym), ``ACC-…`` and ``DOB-…`` otherwise."""
        if kind in ("patient", "name"):
            return patient_pseudonym(self.key, value, self.anonymizer.config.pseudonym_prefix)
        digest = hmac.new(self.key.encode(), f"path/{kind}\x00{value}".encode(),
                          hashlib.sha256).digest()
        code = base64.b32encode(digest).decode("ascii")[:TOKEN_LENGTH]
        return {"accession": "ACC-", "date": "DOB-"}.get(kind, "ID-") + code


def _file_id(text: str) -> str:
    """A File ID component from ``text``: its last 8 characters of ``A-Z``, ``0-9``, ``_``."""
    return _NOT_FILE_ID.sub("", text.upper())[-8:]


def _replaced(part: str, found: list[tuple[int, int, _Term]],
              replacements: dict[_Term, str]) -> str:
    for start, end, term in sorted(found, key=lambda f: f[0], reverse=True):
        part = part[:start] + replacements[term] + part[end:]
    return part


_local = threading.local()


def renamer_for(anonymizer: Anonymizer, key: str) -> PathRenamer:
    """This thread's renamer for ``anonymizer`` and ``key`` (kept from file to file: its cache
    serves every file of a series)."""
    kept: PathRenamer | None = getattr(_local, "renamer", None)
    if kept is None or kept.anonymizer is not anonymizer or kept.key != key:
        kept = _local.renamer = PathRenamer(anonymizer, key)
    return kept


def _patient_of(identity: Identity) -> str:
    found = identity.get("PatientID") or identity.get("PatientName") or ("",)
    return found[0]


def _first(after: Identity | None, keyword: str, original: Identity) -> str:
    """The output's value of ``keyword`` when it carries one that is not the original."""
    if after is None:
        return ""
    values = after.get(keyword)
    if not values or values == original.get(keyword) or not _WORD.search(values[0]):
        return ""  # removed, emptied, kept, or a placeholder (***)
    return values[0]


def _safe(text: str) -> str:
    """A value fit for a path component (no separators, no leading dot)."""
    return _UNSAFE.sub("_", text).lstrip(".")


def renamed_prefixes(source: str, target: str) -> list[str]:
    """The renamed components of a mirrored output, each as its path from the output folder
    (``ANON-7KX3M9QD2P``, ``ANON-7KX3M9QD2P/ANON-7KX3M9QD2P_CT``): ``source`` and ``target``
    are the relative input and output paths."""
    old, new = source.split("/"), target.split("/")
    if len(old) != len(new):
        return []
    return ["/".join(new[:i + 1]) for i in range(len(new)) if old[i] != new[i]]


class FolderNames:
    """The output names each input folder of a mirrored run got, to find folders renamed for
    some of their files only.

    A folder that holds an identifier of some of its files (a patient's folder that also holds
    a file of someone else) is renamed for those files, and keeps its name for the others,
    which would then carry it. At the end of the run, :meth:`merge` moves those others into
    the renamed folder: the output tree is the input tree, with no such name left.
    """

    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {}

    def add(self, source: str, target: str) -> None:
        """Note the folders of an output (``source``, ``target``: relative paths)."""
        old, new = source.split("/")[:-1], target.split("/")[:-1]
        if len(old) != len(new):
            return
        for depth in range(len(old)):
            self.names.setdefault("/".join(old[:depth + 1]), set()).add(
                "/".join(new[:depth + 1]))

    def merge(self, root: Path) -> dict[str, str]:
        """Move the outputs left in a folder's input name into its renamed name (shallowest
        folders first); return the moves, as ``{old relative folder: new}``."""
        moved: dict[str, str] = {}
        for folder in sorted(self.names, key=lambda f: (f.count("/"), f)):
            outputs = self.names[folder]
            last = folder.rsplit("/", 1)[-1]
            renamed = sorted(o for o in outputs if o.rsplit("/", 1)[-1] != last)
            if len(outputs) < 2 or not renamed:
                continue
            into = _moved(renamed[0], moved)
            for other in sorted(outputs - set(renamed)):
                current = _moved(other, moved)
                if current != into and (root / current).is_dir():
                    _merge_tree(root / current, root / into)
                    moved[current] = into
        return moved


def _moved(path: str, moves: dict[str, str]) -> str:
    """``path`` after ``moves`` (folder → folder, applied longest first)."""
    for old in sorted(moves, key=len, reverse=True):
        if path == old or path.startswith(old + "/"):
            return _moved(moves[old] + path[len(old):], {k: v for k, v in moves.items()
                                                         if k != old})
    return path


def moved_path(path: str, moves: dict[str, str]) -> str:
    """A relative output path after :meth:`FolderNames.merge`'s moves."""
    return _moved(path, moves)


def _merge_tree(source: Path, target: Path) -> None:
    """Move every file under ``source`` to the same place under ``target``; remove the
    folders of ``source`` that are then empty."""
    for folder, _, files in os.walk(source, topdown=False):
        here = Path(folder)
        for name in files:
            destination = target / here.relative_to(source) / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(here / name, destination)
        with contextlib.suppress(OSError):
            here.rmdir()
