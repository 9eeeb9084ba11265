"""refreshUID: replace each UID by a keyed, deterministic ``2.25.`` UID."""

from __future__ import annotations

from dcmanon.config.settings import RefreshUIDSettings
from dcmanon.keys import keyed_uid
from dcmanon.methods.base import ElementData, FileContext, MethodError, unsupported


def refresh_uid(data: ElementData, settings: RefreshUIDSettings,
                context: FileContext) -> ElementData:
    """Map every value of a UI element on its own (references keep resolving)."""
    if data.vr != "UI" or data.texts is None:
        raise unsupported("refreshUID", data.vr)
    if not data.texts:
        # An empty UID identifies nothing; there is nothing to refresh.
        return data
    if any(not t for t in data.texts):
        raise MethodError("a value of this multi-valued UID is empty")
    return data.with_texts([keyed_uid(settings.key or "", t) for t in data.texts])
