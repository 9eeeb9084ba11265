"""Open a CMS EnvelopedData (RFC 5652) with a private key alone.

cryptography's ``pkcs7_decrypt_der`` needs the recipient's certificate as well, to find its
RecipientInfo; a key holder may keep only the key. Here each key-transport RecipientInfo's
wrapped key is tried with the private key (RSA PKCS #1 v1.5), and the content (AES-CBC) is
decrypted with the first that gives a key of the right size, a valid padding and content that
starts as expected. Only the DER that :func:`dcmanon.trials.encrypted.envelope` writes (and
any DER EnvelopedData with key transport and AES-CBC) is read.
"""

from __future__ import annotations

from collections.abc import Iterator

_ENVELOPED_DATA = bytes.fromhex("2a864886f70d010703")  # 1.2.840.113549.1.7.3
_RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1
_AES_CBC = bytes.fromhex("608648016503040102"), bytes.fromhex("608648016503040116"), \
    bytes.fromhex("60864801650304012a")  # aes128-CBC, aes192-CBC, aes256-CBC
_AES_KEY_SIZES = dict(zip(_AES_CBC, (16, 24, 32), strict=True))

SEQUENCE, SET, OID, OCTETS, INTEGER = 0x30, 0x31, 0x06, 0x04, 0x02


class _Malformed(Exception):
    """Not the DER this module reads."""


def _element(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, value start, value end) of the DER element at ``pos``."""
    if pos + 2 > end:
        raise _Malformed
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > end:
            raise _Malformed  # indefinite (BER) or absurd lengths
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > end:
        raise _Malformed
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    pos = start
    while pos < end:
        tag, value_start, value_end = _element(data, pos, end)
        yield tag, value_start, value_end
        pos = value_end


def _parts(der: bytes) -> tuple[list[bytes], bytes, bytes, bytes]:
    """The wrapped keys (RSA key transport), the content algorithm OID, its IV, and the
    encrypted content."""
    tag, start, end = _element(der, 0, len(der))
    info = list(_children(der, start, end)) if tag == SEQUENCE else []
    if len(info) != 2 or info[0][0] != OID or der[info[0][1]:info[0][2]] != _ENVELOPED_DATA \
            or info[1][0] != 0xA0:
        raise _Malformed
    tag, start, end = _element(der, info[1][1], info[1][2])
    if tag != SEQUENCE:
        raise _Malformed
    fields = [f for f in _children(der, start, end) if f[0] in (SET, SEQUENCE)]
    if len(fields) < 2 or fields[0][0] != SET or fields[1][0] != SEQUENCE:
        raise _Malformed
    wrapped = []
    for tag, start, end in _children(der, fields[0][1], fields[0][2]):
        parts = list(_children(der, start, end)) if tag == SEQUENCE else []
        if len(parts) != 4 or parts[2][0] != SEQUENCE or parts[3][0] != OCTETS:
            continue  # not key transport (key agreement, KEK, password)
        key_oid = next(_children(der, parts[2][1], parts[2][2]))
        if der[key_oid[1]:key_oid[2]] == _RSA_ENCRYPTION:
            wrapped.append(der[parts[3][1]:parts[3][2]])
    content = list(_children(der, fields[1][1], fields[1][2]))
    if len(content) != 3 or content[1][0] != SEQUENCE:
        raise _Malformed
    algorithm = list(_children(der, content[1][1], content[1][2]))
    if len(algorithm) != 2 or algorithm[1][0] != OCTETS:
        raise _Malformed
    oid = der[algorithm[0][1]:algorithm[0][2]]
    iv = der[algorithm[1][1]:algorithm[1][2]]
    tag, start, end = content[2]
    if tag == 0x80:  # [0] IMPLICIT OCTET STRING, primitive
        encrypted = der[start:end]
    elif tag == 0xA0:  # constructed: the octets in pieces
        encrypted = b"".join(der[s:e] for t, s, e in _children(der, start, end) if t == OCTETS)
    else:
        raise _Malformed
    return wrapped, oid, iv, encrypted


def decrypt_enveloped(der: bytes, key: object, starts_with: bytes = b"") -> bytes | None:
    """The content of EnvelopedData ``der`` that ``key`` (an RSA private key) opens, or None
    when it opens none of its recipients' wrapped keys (or ``der`` is not EnvelopedData that
    this module reads)."""
    from cryptography.hazmat.primitives import padding as symmetric_padding
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if not isinstance(key, rsa.RSAPrivateKey):
        return None
    try:
        wrapped, oid, iv, encrypted = _parts(der)
    except (_Malformed, StopIteration):
        return None
    size = _AES_KEY_SIZES.get(oid)
    if size is None or len(iv) != 16 or not encrypted or len(encrypted) % 16:
        return None
    for candidate in wrapped:
        try:
            # A wrong key gives an error, or (implicit rejection) random bytes: the checks
            # below refuse those.
            content_key = key.decrypt(candidate, padding.PKCS1v15())
        except ValueError:
            continue
        if len(content_key) != size:
            continue
        decryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(encrypted) + decryptor.finalize()
        unpadder = symmetric_padding.PKCS7(128).unpadder()
        try:
            content = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            continue
        if content.startswith(starts_with):
            return content
    return None
