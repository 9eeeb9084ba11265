"""Keyed pseudonyms for patients: short readable IDs and a per-patient date offset.

Both are HMAC derivations of the original PatientID, so every file, process and machine that
holds the same key gives the same patient the same pseudonym and the same offset.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

DEFAULT_PREFIX = "ANON-"
PSEUDONYM_LENGTH = 10
DEFAULT_DATE_RANGE_DAYS = 365


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
