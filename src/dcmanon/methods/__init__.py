"""The nine methods. Each is a pure function of (element data, settings, file context)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dcmanon.config.settings import AnySettings, Method
from dcmanon.dicom.values import ElementData
from dcmanon.methods.base import Action, FileContext, MethodError, Outcome
from dcmanon.methods.cryptohash import crypto_hash
from dcmanon.methods.dateshift import date_shift
from dcmanon.methods.encrypt import encrypt
from dcmanon.methods.perturb import perturb
from dcmanon.methods.redact import redact
from dcmanon.methods.refreshuid import refresh_uid
from dcmanon.methods.substitute import substitute

_FUNCTIONS: dict[Method, Callable[[ElementData, Any, FileContext], ElementData]] = {
    Method.REDACT: redact,
    Method.PERTURB: perturb,
    Method.DATE_SHIFT: date_shift,
    Method.CRYPTO_HASH: crypto_hash,
    Method.ENCRYPT: encrypt,
    Method.SUBSTITUTE: substitute,
    Method.REFRESH_UID: refresh_uid,
}


def apply_method(method: Method, data: ElementData, settings: AnySettings,
                 context: FileContext) -> Outcome:
    """Apply ``method`` to one (non-sequence) element."""
    if method is Method.KEEP:
        return Action.KEEP
    if method is Method.REMOVE:
        return Action.REMOVE
    return _FUNCTIONS[method](data, settings, context)


__all__ = ["Action", "ElementData", "FileContext", "MethodError", "Outcome", "apply_method"]
