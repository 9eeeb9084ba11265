"""Reverse ``encrypt`` for a key holder: decrypt the elements a configuration encrypted."""

from __future__ import annotations

from pydicom.dataset import Dataset

from dcmanon.config.loader import Config
from dcmanon.config.selectors import ElementRef
from dcmanon.config.settings import EncryptSettings, Method
from dcmanon.dicom.elements import decode_element, element_vr, encode_element
from dcmanon.dicom.tags import describe_path
from dcmanon.dicom.walk import private_creator, quiet_pydicom
from dcmanon.errors import DecryptError, ElementError
from dcmanon.header.engine import Plan
from dcmanon.methods.encrypt import decrypt_bytes, decrypt_text


def decrypt_dataset(ds: Dataset, config: Config) -> int:
    """Decrypt, in place, every element the configuration's ``encrypt`` rules select.

    Returns
    -------
    int
        How many elements were decrypted.

    Raises
    ------
    ElementError
        If an element does not decrypt with the configured key.
    """
    plan = Plan(config)
    with quiet_pydicom():
        return _walk(ds, plan, (), ds)


def _walk(ds: Dataset, plan: Plan, path: tuple[tuple[int, int], ...], root: Dataset) -> int:
    count = 0
    parents = tuple(tag for tag, _ in path)
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        vr = element_vr(raw, int(tag))
        if vr == "SQ":
            for index, item in enumerate(ds[tag].value or ()):
                count += _walk(item, plan, (*path, (int(tag), index)), root)
            continue
        rule = plan.rule_for(ElementRef(int(tag), vr, private_creator(ds, int(tag)), parents))
        if rule is None or rule.method is not Method.ENCRYPT:
            continue
        assert isinstance(rule.settings, EncryptSettings)
        key = rule.settings.key or ""
        data = decode_element(raw, vr, root)
        try:
            if data.texts is not None:
                new = data.with_texts([decrypt_text(key, t) for t in data.texts])
            elif data.fragments is not None:
                new = type(data)(data.tag, vr, fragments=tuple(
                    decrypt_bytes(key, fragment) for fragment in data.fragments))
            else:
                new = type(data)(data.tag, vr, data=decrypt_bytes(key, data.data or b""))
        except DecryptError as exc:
            raise ElementError(describe_path(path, int(tag)), str(exc), vr,
                               rule.describe()) from None
        try:
            ds[tag] = encode_element(new, raw, root)
        except ValueError as exc:
            raise ElementError(describe_path(path, int(tag)), str(exc), vr,
                               rule.describe()) from None
        count += 1
    return count
