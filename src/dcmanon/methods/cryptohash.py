"""cryptoHash: HMAC of each value with the configured key (lowercase hex for text)."""

from __future__ import annotations

import hashlib
import hmac
import math
import struct

from dcmanon.config.settings import CryptoHashSettings, HashType
from dcmanon.dicom.values import STRING_VRS, ElementData
from dcmanon.methods.base import FileContext, MethodError, unsupported

_DIGESTS = {HashType.SHA256: hashlib.sha256, HashType.SHA384: hashlib.sha384,
            HashType.SHA512: hashlib.sha512}


def hmac_digest(settings: CryptoHashSettings, message: bytes) -> bytes:
    """HMAC(UTF-8 key, message) with the configured digest."""
    return hmac.new((settings.key or "").encode(), message, _DIGESTS[settings.hash_type]).digest()


def _float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def same_length_digits(digest: bytes, length: int) -> str:
    """The reference's ``matchInputStringLength`` output: digits, as long as the input.

    Computed in single precision exactly as the reference does.
    """
    if length < 1:
        raise MethodError("matchInputStringLength needs a non-empty value")
    if length >= 19:
        raise MethodError("matchInputStringLength supports values of at most 18 characters")
    fraction = _float32(int.from_bytes(digest[:4], "little") / 4294967296)
    low = 10 ** (length - 1) if length > 1 else 0
    high = 10**length - 1
    return str(math.trunc(_float32(fraction * _float32(high - low))) + low)


def utf16_length(text: str) -> int:
    """The length the reference measures: .NET string length, in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def hash_text(settings: CryptoHashSettings, text: str) -> str:
    """Hash one text value (UTF-8); digits of the same length with ``matchInputStringLength``."""
    digest = hmac_digest(settings, text.encode())
    if settings.match_length:
        return same_length_digits(digest, utf16_length(text))
    return digest.hex()


def crypto_hash(data: ElementData, settings: CryptoHashSettings,
                context: FileContext) -> ElementData:
    """Hash every value of a text element, the bytes of OB/UN, or each fragment."""
    if data.fragments is not None:
        return ElementData(data.tag, data.vr,
                           fragments=tuple(hmac_digest(settings, f) for f in data.fragments))
    if data.vr in STRING_VRS and data.texts is not None:
        return data.with_texts([hash_text(settings, t) for t in data.texts])
    if data.vr in ("OB", "UN") and data.data is not None:
        return ElementData(data.tag, data.vr, data=hmac_digest(settings, data.data))
    raise unsupported("cryptoHash", data.vr)
