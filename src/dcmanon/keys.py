"""Keyed derivations: stateless, so every process and machine derives the same pseudonyms.

Nothing here keeps a table: the same key and the same original value always give the same
result, which is what makes runs consistent without a database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

UID_ROOT = "2.25."
KEY_ENV = "DCMANON_KEY"
"""Environment variable holding the project secret that keys every derivation."""
MIN_KEY_LENGTH = 32
"""Keys shorter than this (the reference anonymizer's length) are weak: keyed pseudonyms,
hashes and offsets of a guessable key can be recomputed from guessed values."""
DEFAULT_PREFIX = "ANON-"
PSEUDONYM_LENGTH = 10
DEFAULT_DATE_RANGE_DAYS = 365


def derive_text_key(secret: str, purpose: str) -> str:
    """Derive a 32-character key for one purpose from the project secret.

    Separate purposes get unrelated keys, so a hash published by one method reveals nothing
    about another method's pseudonyms.
    """
    digest = hmac.new(secret.encode(), f"dcmanon/{purpose}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def keyed_uid(key: str, original: str) -> str:
    """Map a UID to a ``2.25.`` UID keyed by ``key`` (same inputs → same UID, anywhere).

    The 128 bits are shaped as a UUID version 8 (custom), as ``2.25`` requires a UUID.

    Examples
    --------
    >>> keyed_uid("k", "1.2.3") == keyed_uid("k", "1.2.3")
    True
    >>> keyed_uid("k", "1.2.3").startswith("2.25.")
    True
    """
    digest = bytearray(hmac.new(key.encode(), b"uid\x00" + original.encode(),
                                hashlib.sha256).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return UID_ROOT + str(int.from_bytes(digest, "big"))


def reference_date_shift(prefix: str, key: str, day_range: int) -> int:
    """The reference anonymizer's date offset in days, in ``[-day_range, +day_range]``.

    ``off = (off * 131 + byte) mod (2R + 1)`` over the UTF-8 bytes of ``prefix + key``, minus R.
    Kept bit-for-bit so that outputs match the reference for the same key.

    Examples
    --------
    >>> reference_date_shift("", "", 50)
    -50
    """
    modulus = 2 * day_range + 1
    offset = 0
    for byte in (prefix + key).encode():
        offset = (offset * 131 + byte) % modulus
    return offset - day_range


def _digest(key: str, namespace: str, value: str) -> bytes:
    message = f"{namespace}\x00{value}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).digest()


def patient_pseudonym(key: str, patient_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """A short, readable pseudonym: ``prefix`` + 10 base32 characters (50 bits).

    Examples
    --------
    >>> len(patient_pseudonym("k", "MRN1"))
    15
    >>> patient_pseudonym("k", "MRN1") == patient_pseudonym("k", "MRN1")
    True
    """
    code = base64.b32encode(_digest(key, "patient", patient_id)).decode("ascii")
    return prefix + code[:PSEUDONYM_LENGTH]


def patient_date_offset(key: str, patient_id: str,
                        range_days: int = DEFAULT_DATE_RANGE_DAYS) -> int:
    """Days to add to every date of this patient, in ``[-range, +range]``, never 0."""
    value = int.from_bytes(_digest(key, "dates", patient_id)[:8], "big")
    offset = value % (2 * range_days) - range_days
    return offset if offset < 0 else offset + 1
