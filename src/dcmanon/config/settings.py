"""Typed, frozen settings of the parameterised methods.

Setting objects in a configuration bind case-insensitively, as in the reference: ``span`` and
``Span`` are the same key, and the later occurrence wins. Numbers may be written as strings and
booleans as ``"true"``. Unknown keys are refused, except the few the reference documents but
ignores (``distribution``, ``cryptoHashFunction``, ``encryptFunction``), which are dropped.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from enum import Enum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticError


class Method(str, Enum):
    """The nine anonymization methods (names as the reference writes them)."""

    KEEP = "keep"
    REDACT = "redact"
    REMOVE = "remove"
    PERTURB = "perturb"
    DATE_SHIFT = "dateShift"
    CRYPTO_HASH = "cryptoHash"
    ENCRYPT = "encrypt"
    SUBSTITUTE = "substitute"
    REFRESH_UID = "refreshUID"

    @classmethod
    def parse(cls, name: str) -> Method | None:
        """Return the method named ``name`` (case-insensitive), or None."""
        for method in cls:
            if method.value.lower() == name.lower():
                return method
        return None


IGNORED_SETTING_KEYS = frozenset({"distribution", "cryptohashfunction", "encryptfunction"})
"""Keys the reference's documentation shows but its code never reads."""


class _Settings(BaseModel):
    """Base of every settings model: frozen, strict about unknown keys."""

    # Validators are built on first use: a run with no rules never needs them.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              defer_build=True)
    keys: ClassVar[dict[str, str]] = {}
    """Lower-case JSON key → field name."""

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> _Settings:
        """Bind a JSON setting object, matching keys case-insensitively (later keys win)."""
        data: dict[str, Any] = {}
        for key, value in raw.items():
            lower = key.lower()
            if lower in IGNORED_SETTING_KEYS:
                continue
            data[cls.keys.get(lower, key)] = value
        return cls.model_validate(data)

    @classmethod
    def json_names(cls) -> tuple[str, ...]:
        """The setting keys as the documentation writes them (``dateShiftKey``, ``span``)."""
        names = []
        for name, info in cls.model_fields.items():
            names.append(info.alias or name)
        return tuple(names)

    @classmethod
    def bind(cls, raw: Mapping[str, Any]) -> tuple[_Settings | None, list[tuple[str, str]]]:
        """Bind a JSON setting object and report every problem by the key as written.

        Returns
        -------
        settings : the bound settings, or None if there was any problem
        problems : list of (key as written in the JSON, message); never holds a value
        """
        problems: list[tuple[str, str]] = []
        data: dict[str, Any] = {}
        written: dict[str, str] = {}
        for key, value in raw.items():
            lower = str(key).lower()
            if lower in IGNORED_SETTING_KEYS:
                continue
            field = cls.keys.get(lower)
            if field is None:
                problems.append((str(key), "unknown setting" + cls._hint(str(key))))
                continue
            data[field] = value
            written[field] = str(key)
        try:
            settings = cls.model_validate(data)
        except PydanticError as exc:
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else ""
                problems.append((written.get(field, field), _message(error)))
            return None, problems
        return (None if problems else settings), problems

    @classmethod
    def _hint(cls, key: str) -> str:
        names = cls.json_names()
        if not names:
            return " (this method takes no settings)"
        lowered = {n.lower(): n for n in names}
        match = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.6)
        if match:
            return f' (did you mean "{lowered[match[0]]}"?)'
        return " (known: " + ", ".join(names) + ")"


def _message(error: Any) -> str:
    """A pydantic error message without pydantic's prefixes (and never the input value)."""
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return message


class RedactSettings(_Settings):
    """Settings of ``redact``: partial dates keep the year, partial ages keep ages up to 89."""

    keys: ClassVar[dict[str, str]] = {
        "enablepartialdatesforredact": "partial_dates",
        "enablepartialagesforredact": "partial_ages",
        "enablepartialzipcodesforredact": "partial_zip_codes",
        "restrictedzipcodetabulationareas": "restricted_zip_areas",
    }
    partial_dates: bool = Field(False, alias="enablePartialDatesForRedact")
    partial_ages: bool = Field(False, alias="enablePartialAgesForRedact")
    # Accepted for compatibility; they have no effect on DICOM (as in the reference).
    partial_zip_codes: bool = Field(False, alias="enablePartialZipCodesForRedact")
    restricted_zip_areas: tuple[str, ...] = Field((), alias="restrictedZipCodeTabulationAreas")


class RangeType(str, Enum):
    """How perturb's span is read: a fixed width or a proportion of the value."""

    FIXED = "Fixed"
    PROPORTIONAL = "Proportional"


def _enum_by_name(enum: type[Enum], value: Any) -> Any:
    """Accept an enum member by name (case-insensitive) or by position, like Json.NET."""
    if isinstance(value, str):
        for member in enum:
            if member.name.replace("_", "").lower() == value.replace("_", "").lower():
                return member
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(enum):
        return list(enum)[value]
    return value


class PerturbSettings(_Settings):
    """Settings of ``perturb``: uniform noise of width ``span``, rounded to ``roundTo`` digits."""

    keys: ClassVar[dict[str, str]] = {"span": "span", "rangetype": "range_type",
                                      "roundto": "round_to"}
    span: float = Field(1.0, ge=0)
    range_type: RangeType = Field(RangeType.PROPORTIONAL, alias="rangeType")
    round_to: int = Field(2, ge=0, le=28, alias="roundTo")

    @field_validator("range_type", mode="before")
    @classmethod
    def _range_type(cls, value: Any) -> Any:
        return _enum_by_name(RangeType, value)


class DateShiftScope(str, Enum):
    """Which original UID seeds the date offset."""

    STUDY_INSTANCE = "StudyInstance"
    SERIES_INSTANCE = "SeriesInstance"
    SOP_INSTANCE = "SopInstance"


class DateShiftSettings(_Settings):
    """Settings of ``dateShift``: a keyed offset of up to ``dateShiftRange`` days."""

    keys: ClassVar[dict[str, str]] = {"dateshiftkey": "key", "dateshiftrange": "range",
                                      "dateshiftscope": "scope", "dateshiftkeyprefix": "prefix"}
    key: str | None = Field(None, alias="dateShiftKey")
    range: int = Field(50, ge=0, alias="dateShiftRange")
    scope: DateShiftScope = Field(DateShiftScope.SOP_INSTANCE, alias="dateShiftScope")
    prefix: str | None = Field(None, alias="dateShiftKeyPrefix")

    @field_validator("scope", mode="before")
    @classmethod
    def _scope(cls, value: Any) -> Any:
        return _enum_by_name(DateShiftScope, value)


class HashType(str, Enum):
    """HMAC digests the reference supports."""

    SHA256 = "Sha256"
    SHA384 = "Sha384"
    SHA512 = "Sha512"


class CryptoHashSettings(_Settings):
    """Settings of ``cryptoHash``: HMAC key, digest, and optional digits-only output."""

    keys: ClassVar[dict[str, str]] = {"cryptohashkey": "key", "cryptohashtype": "hash_type",
                                      "matchinputstringlength": "match_length"}
    key: str | None = Field(None, alias="cryptoHashKey")
    hash_type: HashType = Field(HashType.SHA256, alias="cryptoHashType")
    match_length: bool = Field(False, alias="matchInputStringLength")

    @field_validator("hash_type", mode="before")
    @classmethod
    def _hash_type(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in {"md5", "sha1"}:
            raise ValueError("hash function not supported (use Sha256, Sha384 or Sha512)")
        return _enum_by_name(HashType, value)


class EncryptSettings(_Settings):
    """Settings of ``encrypt``: an AES key of 16, 24 or 32 UTF-8 bytes."""

    keys: ClassVar[dict[str, str]] = {"encryptkey": "key"}
    key: str | None = Field(None, alias="encryptKey")

    @field_validator("key")
    @classmethod
    def _key_size(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) not in (16, 24, 32):
            bits = len(value.encode()) * 8
            raise ValueError(f"encrypt key is {bits} bits; use a key of 128, 192 or 256 bits "
                             "(16, 24 or 32 bytes)")
        return value


class SubstituteSettings(_Settings):
    """Settings of ``substitute``: the replacement text (``Anonymous`` by default)."""

    keys: ClassVar[dict[str, str]] = {"replacewith": "replace_with"}
    replace_with: str = Field("Anonymous", alias="replaceWith")


class RefreshUIDSettings(_Settings):
    """Settings of ``refreshUID`` (an extension): the key of the UID derivation."""

    keys: ClassVar[dict[str, str]] = {"refreshuidkey": "key", "uidkey": "key"}
    key: str | None = Field(None, alias="refreshUIDKey")


class NoSettings(_Settings):
    """keep and remove take no settings."""


SETTINGS_BY_METHOD: dict[Method, type[_Settings]] = {
    Method.KEEP: NoSettings,
    Method.REMOVE: NoSettings,
    Method.REDACT: RedactSettings,
    Method.PERTURB: PerturbSettings,
    Method.DATE_SHIFT: DateShiftSettings,
    Method.CRYPTO_HASH: CryptoHashSettings,
    Method.ENCRYPT: EncryptSettings,
    Method.SUBSTITUTE: SubstituteSettings,
    Method.REFRESH_UID: RefreshUIDSettings,
}

AnySettings = _Settings

SECRET_SETTING_KEYS = frozenset(
    lower for model in SETTINGS_BY_METHOD.values()
    for lower, field in model.keys.items() if field == "key"
)
"""Lower-case setting keys that hold a key: their values never appear in messages."""

ALL_SETTING_KEYS = frozenset(
    lower for model in SETTINGS_BY_METHOD.values() for lower in model.keys
) | IGNORED_SETTING_KEYS
"""Every setting key some method knows (lower case)."""
