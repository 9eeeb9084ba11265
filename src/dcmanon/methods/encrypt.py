"""encrypt: AES-CBC with a fresh random IV per value; text is stored as Base64(IV ‖ cipher)."""

from __future__ import annotations

import base64
import binascii
import os

from dcmanon.config.settings import EncryptSettings
from dcmanon.dicom.values import STRING_VRS, ElementData
from dcmanon.errors import DecryptError
from dcmanon.methods.base import FileContext, MethodError, unsupported

_BLOCK = 16
KEY_SIZES = (16, 24, 32)
"""AES-128, AES-192, AES-256: the UTF-8 bytes of the key must have one of these lengths."""


def _key_bytes(key: str) -> bytes | None:
    """The AES key, or None if its length is not one AES accepts (the key is never shown)."""
    raw = key.encode()
    return raw if len(raw) in KEY_SIZES else None


def encrypt_bytes(key: str, plain: bytes) -> bytes:
    """Return IV ‖ AES-CBC-PKCS7(plain) under the UTF-8 bytes of ``key``.

    Raises
    ------
    MethodError
        If the key is not 16, 24 or 32 bytes long. Settings refuse such keys, but a key can
        also come from ``parameters`` or a key file, so it is checked again here: a bad key
        must fail the file, not crash the run.
    """
    raw = _key_bytes(key)
    if raw is None:
        raise MethodError("the encrypt key must be 16, 24 or 32 bytes (UTF-8)")
    iv = os.urandom(_BLOCK)
    from cryptography.hazmat.primitives import padding  # only runs that encrypt pay for it
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(raw), modes.CBC(iv)).encryptor()
    return iv + encryptor.update(padded) + encryptor.finalize()


def decrypt_bytes(key: str, blob: bytes) -> bytes:
    """Reverse :func:`encrypt_bytes`.

    Raises
    ------
    DecryptError
        If the key has a size AES does not accept, the blob is too short, or the key is wrong
        (bad padding).
    """
    raw = _key_bytes(key)
    if raw is None:
        raise DecryptError("the encrypt key must be 16, 24 or 32 bytes (UTF-8)")
    if not blob:
        return b""
    if len(blob) < _BLOCK:
        raise DecryptError("encrypted value is shorter than 16 bytes")
    if len(blob) % _BLOCK:
        raise DecryptError("encrypted value is not a whole number of AES blocks")
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    decryptor = Cipher(algorithms.AES(raw), modes.CBC(blob[:_BLOCK])).decryptor()
    padded = decryptor.update(blob[_BLOCK:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise DecryptError("wrong key, or the value was not encrypted by dcmanon") from None


def decrypt_text(key: str, text: str) -> str:
    """Decrypt one Base64 value written by ``encrypt`` back to its text (UTF-8)."""
    # pydicom drops a PN's trailing "=" (an empty group), which is Base64 padding here.
    text = text.strip()
    text += "=" * (-len(text) % 4)
    try:
        blob = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise DecryptError("value is not Base64") from None
    try:
        return decrypt_bytes(key, blob).decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptError("wrong key, or the value was not encrypted by dcmanon") from None


def encrypt(data: ElementData, settings: EncryptSettings, context: FileContext) -> ElementData:
    """Encrypt each non-empty text value (UTF-8), the bytes of OB/UN, or each fragment."""
    key = settings.key or ""
    if data.fragments is not None:
        return ElementData(data.tag, data.vr,
                           fragments=tuple(encrypt_bytes(key, f) for f in data.fragments))
    if data.vr in STRING_VRS and data.texts is not None:
        texts = [t for t in data.texts if t]
        if not texts:
            return data
        return data.with_texts(
            [base64.b64encode(encrypt_bytes(key, t.encode())).decode("ascii") for t in texts])
    if data.vr in ("OB", "UN") and data.data is not None:
        return ElementData(data.tag, data.vr, data=encrypt_bytes(key, data.data))
    raise unsupported("encrypt", data.vr)
