"""The standard's way back (PS3.15 E.1.1; PS3.3 C.12.1.1.4.1): original values, encrypted.

With ``--encrypt-to CERT.pem`` every top-level attribute the run changed or removed keeps its
original value in the output, readable only by the holder of a recipient's private key:

* the originals form the one item of a Modified Attributes Sequence (0400,0550), in a dataset
  encoded in Explicit VR Little Endian;
* that dataset is the content of a CMS EnvelopedData (RFC 5652): AES-256-CBC for the content,
  RSA key transport (PKCS #1 v1.5) to each recipient's certificate — the algorithms of the
  standard's attribute confidentiality profiles;
* the EnvelopedData (DER) is the Encrypted Content (0400,0520) of the one item of the Encrypted
  Attributes Sequence (0400,0500), beside the Encrypted Content Transfer Syntax UID
  (0400,0510) that names how the content is encoded.

A sequence counts as changed when anything at any depth inside it changed: the whole original
top-level sequence is then kept (the standard keeps top-level attributes only). Elements the
run adds (the de-identification record) have no original and are not listed; when the input
had them, their originals are always kept, so that the way back knows which to remove.

:func:`reidentify_dataset` undoes it for a key holder. Decryption needs only the private key
(each recipient's wrapped key is tried), so the certificate need not travel with it; ``openssl
cms -decrypt`` on the Encrypted Content is an independent check.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_data_element, write_dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dcmanon.dicom.constants import SPECIFIC_CHARACTER_SET
from dcmanon.dicom.elements import element_vr
from dcmanon.errors import InputError, ReidentifyError, UsageError, describe_os_error

__all__ = ["Originals", "Recipients", "capture", "load_private_key", "load_recipients",
           "reidentify_dataset", "reidentify_file", "seal"]

ENCRYPTED_ATTRIBUTES_SEQUENCE = 0x04000500
ENCRYPTED_CONTENT_TRANSFER_SYNTAX_UID = 0x04000510
ENCRYPTED_CONTENT = 0x04000520
MODIFIED_ATTRIBUTES_SEQUENCE = 0x04000550
RECORD_TAGS = (0x00120062, 0x00120063, 0x00120064, 0x00280303)
"""The de-identification record the run writes (PatientIdentityRemoved, DeidentificationMethod
(+ Code Sequence), LongitudinalTemporalInformationModified): gone again on the way back,
unless the original had them."""
_ALWAYS_KEPT = frozenset({*RECORD_TAGS, ENCRYPTED_ATTRIBUTES_SEQUENCE})
"""Kept even when unchanged: the way back removes the record elements the item does not hold
(the run added them), and replaces the input's Encrypted Attributes Sequence by its own."""
_SYNTAXES: dict[str, bytes] = {str(ExplicitVRLittleEndian): b"\x00\x04\x50\x05SQ",
                               str(ImplicitVRLittleEndian): b"\x00\x04\x50\x05"}
"""The content's transfer syntaxes read, and how the content starts in each: (0400,0550)."""


@dataclass(frozen=True)
class Recipients:
    """The certificates whose holders can read the originals (PEM or DER, as given).

    Plain bytes, so that an anonymizer carrying them pickles to worker processes.
    """

    certificates: tuple[bytes, ...]
    names: tuple[str, ...] = field(default=(), compare=False)


def _certificate(data: bytes, name: str) -> object:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data \
            else x509.load_der_x509_certificate(data)
    except ValueError:
        raise UsageError(f"{name}: not an X.509 certificate (PEM or DER)") from None
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise UsageError(f"{name}: the certificate's key is not RSA (CMS key transport to it "
                         "is RSA only)")
    return cert


def load_recipients(paths: Iterable[str | Path]) -> Recipients:
    """Read the recipients' certificates (``--encrypt-to``), each checked.

    Raises
    ------
    UsageError
        If a file cannot be read, is not a certificate, or its key is not RSA.
    """
    certificates, names = [], []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read the certificate "
                             f"({describe_os_error(exc)})") from None
        _certificate(data, str(path))
        certificates.append(data)
        names.append(str(path))
    if not certificates:
        raise UsageError("--encrypt-to needs at least one certificate")
    return Recipients(tuple(certificates), tuple(names))


@dataclass
class Originals:
    """The top-level elements of a dataset before the rules ran (see :func:`capture`)."""

    elements: dict[int, DataElement | RawDataElement]
    sequences: dict[int, tuple[DataElement, bytes]]
    """Each sequence: a deep copy, and its encoding (to see whether anything inside changed)."""
    charset: DataElement | RawDataElement | None
    encodings: list[str]
    """The Python codecs of the original character set."""


def _encoded(element: DataElement, charset: object) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_data_element(fp, element, charset)  # type: ignore[arg-type]
    return fp.getvalue()


def _charset_of(ds: Dataset) -> object:
    return ds.get("SpecificCharacterSet", "ISO_IR 6")


def capture(ds: Dataset) -> Originals:
    """Note the top-level elements of ``ds`` before the rules change it (sequences copied)."""
    elements: dict[int, DataElement | RawDataElement] = {}
    sequences: dict[int, tuple[DataElement, bytes]] = {}
    charset = _charset_of(ds)
    implicit = getattr(ds, "is_implicit_VR", False) or False
    for tag in list(ds.keys()):
        raw = ds.get_item(tag, keep_deferred=True)
        if element_vr(raw, int(tag), bool(implicit)) == "SQ":
            element = ds[tag]  # (the rules convert it anyway)
            sequences[int(tag)] = (copy.deepcopy(element), _encoded(element, charset))
        else:
            elements[int(tag)] = raw
    return Originals(elements, sequences, ds.get_item(SPECIFIC_CHARACTER_SET),
                     list(ds._character_set))


def _same(before: DataElement | RawDataElement, after: DataElement | RawDataElement,
          encodings: list[str]) -> bool:
    """Whether an element still has its value (reading an element converts it: compared
    as values then)."""
    if after is before:
        return True
    if isinstance(before, RawDataElement) and isinstance(after, RawDataElement):
        return before.value == after.value and before.VR == after.VR
    try:
        old, new = (convert_raw_data_element(e, encoding=encodings)
                    if isinstance(e, RawDataElement) else e for e in (before, after))
        return bool(old.VR == new.VR and old.value == new.value)
    except Exception:  # noqa: BLE001  (an odd value: counted as changed, its original kept)
        return False


def _changed(originals: Originals, ds: Dataset,
             held: dict[int, RawDataElement]) -> Iterator[DataElement | RawDataElement]:
    """The original of every top-level element the rules changed or removed."""
    charset = _charset_of(ds)
    for tag, before in originals.elements.items():
        after = ds.get_item(tag, keep_deferred=True) if tag in ds else None
        if after is not None and tag not in _ALWAYS_KEPT and _same(before, after,
                                                                     originals.encodings):
            continue
        yield _read_held(held[tag], ds) if tag in held else before
    for tag, (element, encoded) in originals.sequences.items():
        now = ds.get_item(tag) if tag in ds else None
        if now is None or not isinstance(now, DataElement) or tag in _ALWAYS_KEPT \
                or _encoded(now, charset) != encoded:
            yield element


def _read_held(raw: RawDataElement, ds: Dataset) -> RawDataElement:
    """A large value left on disk (see :mod:`dcmanon.io.streaming`), read now."""
    filename = getattr(ds, "filename", None)
    if raw.value is not None or not isinstance(filename, str):
        return raw
    with open(filename, "rb") as source:
        source.seek(raw.value_tell)
        value = source.read(raw.length)
    if len(value) != raw.length:
        raise InputError(f"{filename}: truncated (the file ends inside an element)")
    return raw._replace(value=value)


def modified_item(originals: Originals, ds: Dataset,
                  held: dict[int, RawDataElement] | None = None) -> Dataset:
    """The item of the Modified Attributes Sequence: the originals of what changed, with the
    character set their texts are encoded in."""
    item = Dataset()
    if originals.charset is not None:
        item._dict[BaseTag(SPECIFIC_CHARACTER_SET)] = originals.charset
    for element in _changed(originals, ds, held or {}):
        item._dict[BaseTag(element.tag)] = element
    return item


def _content(item: Dataset) -> bytes:
    content = Dataset()
    content.ModifiedAttributesSequence = Sequence([item])
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, content)
    return fp.getvalue()


def envelope(data: bytes, recipients: Recipients) -> bytes:
    """``data`` as CMS EnvelopedData (DER): AES-256-CBC, RSA key transport to each recipient."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.serialization import pkcs7

    builder = pkcs7.PKCS7EnvelopeBuilder().set_data(data) \
        .set_content_encryption_algorithm(algorithms.AES256)
    for pem, name in zip(recipients.certificates, recipients.names or
                         ("certificate",) * len(recipients.certificates), strict=True):
        builder = builder.add_recipient(_certificate(pem, name))  # type: ignore[arg-type]
    return builder.encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])


def seal(ds: Dataset, originals: Originals, recipients: Recipients,
         held: dict[int, RawDataElement] | None = None) -> int:
    """Add the Encrypted Attributes Sequence to ``ds`` (anonymized in place since
    :func:`capture`): the originals of what changed, encrypted to ``recipients``.

    Returns
    -------
    int
        How many original elements were encrypted (the character set not counted).
    """
    item = modified_item(originals, ds, held)
    count = sum(1 for tag in list(item.keys()) if tag != SPECIFIC_CHARACTER_SET)
    encrypted = Dataset()
    encrypted.EncryptedContentTransferSyntaxUID = ExplicitVRLittleEndian
    encrypted.EncryptedContent = envelope(_content(item), recipients)
    ds.EncryptedAttributesSequence = Sequence([encrypted])
    return count


def load_private_key(path: str | Path, password: bytes | None = None) -> object:
    """The RSA private key (PEM or DER) of a recipient.

    Raises
    ------
    UsageError
        If it cannot be read, needs a password that was not given (or a wrong one), or is
        not an RSA private key.
    """
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import (
        load_der_private_key,
        load_pem_private_key,
    )

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the key ({describe_os_error(exc)})") from None
    try:
        key = load_pem_private_key(data, password) if b"-----BEGIN" in data \
            else load_der_private_key(data, password)
    except TypeError:
        raise UsageError(f"{path}: the key is protected by a password: give it with "
                         "--key-password-file") from None
    except ValueError:
        raise UsageError(f"{path}: not a private key (PEM or DER), or a wrong password") \
            from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UsageError(f"{path}: not an RSA private key")
    return key


def reidentify_dataset(ds: Dataset, key: object) -> int:
    """Put back, in place, the original values that ``ds``'s Encrypted Attributes Sequence
    holds for ``key`` (from :func:`load_private_key`); the sequence and the
    de-identification record the run added go.

    Returns
    -------
    int
        How many elements were restored.

    Raises
    ------
    ReidentifyError
        If ``ds`` has no encrypted attributes, ``key`` opens none of them, or the content is
        not a Modified Attributes Sequence.
    """
    from dcmanon.trials._cms import decrypt_enveloped

    items = ds.get("EncryptedAttributesSequence")
    if not items:
        raise ReidentifyError("no Encrypted Attributes Sequence (0400,0500): the file was "
                              "not anonymized with --encrypt-to")
    content: bytes | None = None
    syntax = ""
    for item in items:
        data = item.get("EncryptedContent")
        syntax = str(item.get("EncryptedContentTransferSyntaxUID", "")).rstrip("\0 ")
        if not data or syntax not in _SYNTAXES:
            continue  # (an item for another reader: the next may be ours)
        content = decrypt_enveloped(bytes(data), key, _SYNTAXES[syntax])
        if content is not None:
            break
    if content is None:
        if syntax and syntax not in _SYNTAXES:
            raise ReidentifyError(f"encrypted content in transfer syntax {syntax}; only "
                                  "Explicit and Implicit VR Little Endian are read")
        raise ReidentifyError("the key does not open its Encrypted Attributes Sequence "
                              "(it is not the private key of a recipient)")
    try:
        decoded = read_dataset(io.BytesIO(content),
                               is_implicit_VR=syntax == ImplicitVRLittleEndian,
                               is_little_endian=True)
        modified = decoded.ModifiedAttributesSequence[0]
        if SPECIFIC_CHARACTER_SET not in modified and SPECIFIC_CHARACTER_SET in ds:
            # Written without its character set (gdcmanon does): the file's is the best guess.
            modified._dict[BaseTag(SPECIFIC_CHARACTER_SET)] = ds.get_item(
                SPECIFIC_CHARACTER_SET)
    except Exception:  # noqa: BLE001  (pydicom's messages may quote values)
        raise ReidentifyError("the decrypted content is not a Modified Attributes "
                              "Sequence") from None
    del ds[ENCRYPTED_ATTRIBUTES_SEQUENCE]
    for tag in RECORD_TAGS:
        if tag in ds and tag not in modified:
            del ds[tag]
    count = 0
    # Decoded in the item's own character set (pydicom would use the one it was read with).
    encodings = list(modified._character_set)
    for tag in list(modified.keys()):
        element = modified.get_item(tag)
        ds[tag] = convert_raw_data_element(element, encoding=encodings, ds=modified) \
            if isinstance(element, RawDataElement) else element
        count += tag != SPECIFIC_CHARACTER_SET
    return count


def reidentify_file(source: str | Path, target: str | Path, key: object) -> int:
    """Restore the originals of one file anonymized with ``--encrypt-to`` into ``target``
    (written only when complete; the file meta follows the restored SOP Instance UID).

    Returns
    -------
    int
        How many elements were restored.

    Raises
    ------
    InputError
        If ``source`` cannot be read as DICOM.
    ReidentifyError
        As :func:`reidentify_dataset`.
    OSError
        If ``target`` cannot be written.
    """
    from dcmanon.dicom.walk import quiet_pydicom
    from dcmanon.io.files import prepare_file_meta, read_dicom, write_dicom_atomic

    with quiet_pydicom():
        ds = read_dicom(source)
        count = reidentify_dataset(ds, key)
        prepare_file_meta(ds)
        write_dicom_atomic(ds, target)
    return count
