"""Find known identifiers in free text, whatever its script.

Text and identifiers are compared in one normal form: Unicode NFKC (full-width Latin letters
and digits, half-width katakana and compatibility forms become their ordinary forms), then
:meth:`str.casefold` (``Straße`` is ``STRASSE``, ``Σ`` is ``ς``), then without the accents of
Latin, Greek and Cyrillic letters (``Müller`` is ``MULLER``, ``Nguyễn`` is ``Nguyen``, ``Yılmaz``
is ``YILMAZ``, ``Παπαδόπουλος`` is ``ΠΑΠΑΔΟΠΟΥΛΟΣ``: systems that cannot write a letter drop its
accent). A match is replaced in the original text, not in its normal form.

Where a match may start and end depends on the script:

* Scripts that separate words with spaces (Latin, Greek, Cyrillic, Arabic, Hebrew...): an
  identifier matches as whole words only (``Ann`` is not found in ``Annex``).
* Scripts written without spaces between words (Han, kana, Hangul, Thai; :data:`NO_SPACE`):
  an identifier of two characters or more matches anywhere, even inside a longer run of such
  characters (``王伟`` in ``王伟的CT``). A single such character (a one-character family name,
  ``王``) matches only where it stands alone as a word: searched for as a substring it would
  remove that character from every word that holds it. Words of a name in such a script also
  match when written together (``山田 太郎`` in ``山田太郎``).
* Identifiers (IDs, numbers) compiled with :func:`compile_identifiers`'s ``ids`` match with or
  without their separators (spaces, hyphens, dots, slashes) in the identifier and in the text:
  ``QZ-71000`` finds ``QZ71000``, ``QZ 71000`` and ``qz.71000``, when at least
  :data:`MIN_FLEXIBLE_ID` letters or digits remain without the separators.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from itertools import pairwise

NO_SPACE = ("\u0e00-\u0e7f"  # Thai
            "\u0e80-\u0eff"  # Lao
            "\u1100-\u11ff"  # Hangul Jamo
            "\u2e80-\u2fdf"  # CJK radicals
            "\u3005-\u3007\u3021-\u3029\u3031-\u3035\u303b\u303c"  # ideographic marks
            "\u3040-\u30ff"  # Hiragana, Katakana
            "\u3100-\u31ff"  # Bopomofo, Hangul compatibility Jamo, Katakana extensions
            "\u3400-\u4dbf\u4e00-\u9fff"  # CJK ideographs
            "\ua960-\ua97f\uac00-\ud7ff"  # Hangul
            "\uf900-\ufaff"  # CJK compatibility ideographs
            "\uff66-\uff9f"  # half-width katakana
            "\U00020000-\U0003ffff")  # CJK ideographs, supplementary planes
"""Characters of scripts written without spaces between words."""
_NO_SPACE_CHAR = re.compile(f"[{NO_SPACE}]")
_NOT_AFTER_WORD = rf"(?<![^\W{NO_SPACE}])"
_NOT_BEFORE_WORD = rf"(?![^\W{NO_SPACE}])"
"""Word boundaries of a word in a spaced script: a letter or digit of such a script may not
touch it, a character of a script without spaces may (``山田Yamada様``)."""
SEPARATORS = r"[\s./\\\-\u2010-\u2015_]"
"""What IDs are matched without: spaces, dots, slashes, hyphens and dashes, underscores."""
MIN_FLEXIBLE_ID = 4
"""IDs shorter than this (without separators) are matched as written: ``1.2.3`` is not the
study ID ``123``."""
MAX_FLEXIBLE_ID = 64
"""Longer values (an address, a hostile value) are matched as written: a pattern with a
separator class between every character grows with the value."""
_MARKS = re.compile("[\u0300-\u036f]")
"""The combining accents of Latin, Greek and Cyrillic letters."""


def _unaccented() -> dict[int, str]:
    """Precomposed Latin, Greek and Cyrillic letters mapped to their letter without accents
    (one character each, so positions hold); dotless ``ı`` to ``i``."""
    table = {ord("ı"): "i"}
    for code in (*range(0xC0, 0x250), *range(0x370, 0x530), *range(0x1E00, 0x2000)):
        decomposed = unicodedata.normalize("NFD", chr(code))
        base = "".join(c for c in decomposed if not unicodedata.combining(c))
        if len(base) == 1 and base != chr(code):
            table[code] = base
    return table


_UNACCENTED = _unaccented()
_JOINING = re.compile("[\u1160-\u11ff\ud7b0-\ud7ff]")
"""Hangul vowels and final consonants, which NFKC composes with what comes before them."""


def fold(text: str) -> str:
    """The normal form text and identifiers are compared in: NFKC, case-folded, without the
    accents of Latin, Greek and Cyrillic letters."""
    if text.isascii():
        return text.lower()
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _MARKS.sub("", folded).translate(_UNACCENTED)


def is_no_space(text: str) -> bool:
    """Whether ``text`` holds a character of a script written without spaces."""
    return _NO_SPACE_CHAR.search(text) is not None


def folded_with_map(text: str) -> tuple[str, tuple[list[int], list[int]] | None]:
    """``text`` in normal form, and for each of its characters where the cluster it comes
    from starts and ends in ``text`` (None when each character maps to one character).

    A cluster is a character with the combining marks that follow it (NFKC composes them, so
    they are folded together).
    """
    if text.isascii():
        return text.lower(), None
    if unicodedata.is_normalized("NFKC", text) and not _MARKS.search(text):
        folded = text.casefold()
        if len(folded) == len(text) and unicodedata.is_normalized("NFKC", folded) and (
                not _MARKS.search(folded)):
            # casefold mapped each character to one: positions hold (as :func:`fold`)
            return folded.translate(_UNACCENTED), None
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    start = 0
    for index in range(1, len(text) + 1):
        if index < len(text) and _joins(text[index]):
            continue
        piece = fold(text[start:index])
        pieces.append(piece)
        starts.extend([start] * len(piece))
        ends.extend([index] * len(piece))
        start = index
    return "".join(pieces), (starts, ends)


def _joins(char: str) -> bool:
    """Whether ``char`` belongs to the cluster of the character before it."""
    decomposed = unicodedata.normalize("NFKD", char)
    return bool(decomposed and unicodedata.combining(decomposed[0])) or bool(
        _JOINING.match(char))


def term_pattern(term: str, flexible: bool = False) -> tuple[str, str, str] | None:
    """The regular expression (over folded text) of one identifier, as the boundary it needs
    before it, its body and the boundary after it; None if there is nothing to search for."""
    folded = " ".join(fold(term).split())
    if not folded:
        return None
    compact = re.sub(SEPARATORS, "", folded)
    if flexible and MIN_FLEXIBLE_ID <= len(compact) <= MAX_FLEXIBLE_ID:
        body = f"{SEPARATORS}*".join(re.escape(c) for c in compact)
    else:
        words = folded.split(" ")
        body = re.escape(words[0])
        for before, word in pairwise(words):
            joined = is_no_space(before[-1]) and is_no_space(word[0])
            body += (r"\s*" if joined else r"\s+") + re.escape(word)
    substring = len(compact) >= 2
    left = _edge(folded[0], substring, r"(?<!\w)", _NOT_AFTER_WORD)
    right = _edge(folded[-1], substring, r"(?!\w)", _NOT_BEFORE_WORD)
    return left, body, right


def _edge(char: str, substring: bool, word: str, spaced_word: str) -> str:
    """The boundary a term needs at an end that is ``char``: none inside text without spaces
    (unless the term is one character), else that of a word."""
    if is_no_space(char):
        return "" if substring else word
    return spaced_word


def compile_identifiers(terms: Iterable[str], ids: Iterable[str] = ()
                        ) -> re.Pattern[str] | None:
    """One pattern for every identifier, over :func:`fold`-ed text.

    ``ids`` are also matched without their separators. Terms that need the same boundaries
    share one group, longest first (as one boundary check per position costs less than one
    per term); the groups come in the order of their longest term.
    """
    flexible = set(ids)
    groups: dict[tuple[str, str], dict[str, int]] = {}
    for term in {*terms, *flexible}:
        found = term_pattern(term, term in flexible) if term else None
        if found is not None:
            left, body, right = found
            bodies = groups.setdefault((left, right), {})
            bodies[body] = max(bodies.get(body, 0), len(term))
    if not groups:
        return None
    alternatives = []
    for (left, right), bodies in groups.items():
        ordered = sorted(bodies, key=lambda b: (-bodies[b], b))
        alternatives.append((-bodies[ordered[0]], left + "(?:" + "|".join(ordered) + ")" + right))
    return re.compile("|".join(pattern for _, pattern in sorted(alternatives)))


def replace_matches(pattern: re.Pattern[str], text: str, placeholder: str) -> str:
    """``text`` with every match of ``pattern`` (over its folded form) replaced."""
    folded, where = folded_with_map(text)
    spans: list[tuple[int, int]] = []
    for match in pattern.finditer(folded):
        start, end = match.span()
        if start == end:
            continue
        if where is not None:
            start, end = where[0][start], where[1][end - 1]
        if spans and start < spans[-1][1]:  # overlapping (a cluster split by a match)
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(placeholder)
        last = end
    out.append(text[last:])
    return "".join(out)


def search(pattern: re.Pattern[str], text: str) -> bool:
    """Whether ``pattern`` matches the folded form of ``text``."""
    folded = text.lower() if text.isascii() else folded_with_map(text)[0]
    return pattern.search(folded) is not None
