"""refreshUID: replace each UID by a keyed, deterministic ``2.25.`` UID."""

from __future__ import annotations

from dcmanon.config.settings import RefreshUIDSettings
from dcmanon.dicom.values import ElementData
from dcmanon.keys import keyed_uid
from dcmanon.methods.base import FileContext, unsupported

_PADDING = "\0 "
"""A UID holds only digits and dots; NUL (UI padding) and spaces around it are not part of it."""


def refresh_uid(data: ElementData, settings: RefreshUIDSettings,
                context: FileContext) -> ElementData:
    """Map every value of a UI element on its own (references keep resolving).

    The same UID gives the same new UID wherever it appears (any element, any file, any run)
    with the same key, whatever padding it was stored with. An empty value identifies nothing
    and stays empty, also inside a multi-valued element.
    """
    if data.vr != "UI" or data.texts is None:
        raise unsupported("refreshUID", data.vr)
    key = settings.key or ""
    uids = (t.strip(_PADDING) for t in data.texts)
    return data.with_texts([keyed_uid(key, uid) if uid else "" for uid in uids])
