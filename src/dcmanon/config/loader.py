"""Read a configuration (JSON, leniently) into a frozen, validated :class:`Config`.

Every problem is collected in one pass and raised together as a :class:`ConfigError`, each with
its JSON location and a hint, before any file is touched.
"""

from __future__ import annotations

import difflib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json5
from pydantic import ValidationError as PydanticError

from dcmanon.config.selectors import Selector, SelectorError, parse_selector
from dcmanon.config.settings import SETTINGS_BY_METHOD, AnySettings, Method
from dcmanon.errors import ConfigError, ConfigProblem

SECTIONS = ("rules", "defaultSettings", "customSettings", "parameters", "profile", "options",
            "unmatched")
RULE_FIELDS = ("tag", "dicomTagPath", "method", "setting", "params")
KEYED_METHODS = {
    Method.DATE_SHIFT: "dateShiftKey",
    Method.CRYPTO_HASH: "cryptoHashKey",
    Method.ENCRYPT: "encryptKey",
    Method.REFRESH_UID: "refreshUIDKey",
}
KEY_ENV = "DCMANON_KEY"
"""Environment variable holding the project secret that keys every derivation."""


@dataclass(frozen=True)
class Rule:
    """One compiled rule: which elements, what to do, with which settings."""

    index: int
    selector: Selector
    method: Method
    settings: AnySettings
    source: str = field(compare=False)
    """The rule as written, for messages (``rules[3] {"tag": ..., "method": ...}``)."""

    def describe(self) -> str:
        """Name the rule in messages and reports."""
        return f"rules[{self.index}] {self.source}"


@dataclass(frozen=True)
class Config:
    """A validated configuration."""

    rules: tuple[Rule, ...]
    unmatched: Method = Method.KEEP
    profile: str | None = None
    options: tuple[str, ...] = ()
    generated_keys: tuple[str, ...] = ()
    """Methods that had no key and got a random one for this run (outputs won't link)."""


def load_config(path: str | os.PathLike[str], *, secret: str | None = None) -> Config:
    """Read and validate a configuration file.

    Parameters
    ----------
    path : path-like
        A JSON file in the format of Microsoft's DICOM anonymizer (comments and trailing commas
        allowed), with dcmanon's extensions.
    secret : str, optional
        The project secret (from ``--key-file``); used for every method that has no key of its
        own. Falls back to the ``DCMANON_KEY`` environment variable.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        If the file is missing, unreadable, not JSON, or describes anything invalid.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem("", "file not found")], source) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([ConfigProblem("", f"cannot read: {reason}")], source) from None
    return parse_config(text, source=source, secret=secret)


def parse_config(text: str | Mapping[str, Any], *, source: str = "configuration",
                 secret: str | None = None) -> Config:
    """Validate a configuration given as JSON text or as an already parsed mapping.

    See :func:`load_config`.
    """
    if isinstance(text, str):
        try:
            raw = json5.loads(text.lstrip("\ufeff"))
        except ValueError as exc:
            raise ConfigError([ConfigProblem("", f"not valid JSON: {exc}")], source) from None
    else:
        raw = text
    if not isinstance(raw, Mapping):
        raise ConfigError([ConfigProblem("", "the configuration must be a JSON object")], source)
    builder = _Builder(raw, secret if secret is not None else os.environ.get(KEY_ENV))
    config = builder.build()
    if builder.problems:
        raise ConfigError(builder.problems, source)
    return config


def _closest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f' (did you mean "{lowered[match[0]]}"?)' if match else ""


class _Builder:
    """Collects problems while compiling a raw configuration."""

    def __init__(self, raw: Mapping[str, Any], secret: str | None) -> None:
        self.problems: list[ConfigProblem] = []
        self.secret = secret
        self.generated: dict[str, str] = {}
        self.sections = self._sections(raw)

    def problem(self, location: str, message: str) -> None:
        self.problems.append(ConfigProblem(location, message))

    def _sections(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        # Section names bind case-insensitively, as in the reference.
        by_lower = {s.lower(): s for s in SECTIONS}
        sections: dict[str, Any] = {}
        for key, value in raw.items():
            name = by_lower.get(str(key).lower())
            if name is None:
                self.problem(str(key), "unknown section" + _closest(str(key), SECTIONS))
            else:
                sections[name] = value
        return sections

    def _object(self, name: str) -> dict[str, Any]:
        value = self.sections.get(name, {})
        if not isinstance(value, Mapping):
            self.problem(name, "must be an object of {name: setting object}")
            return {}
        return dict(value)

    def build(self) -> Config:
        defaults = {str(k).lower(): v for k, v in self._object("defaultSettings").items()}
        for name, value in defaults.items():
            if Method.parse(name) is None:
                self.problem(f"defaultSettings.{name}", "unknown method"
                             + _closest(name, [m.value for m in Method]))
            elif not isinstance(value, Mapping):
                self.problem(f"defaultSettings.{name}", "must be an object")
        custom = self._object("customSettings")
        parameters = self._parameters()
        rules_raw = self.sections.get("rules")
        rules: list[Rule] = []
        if rules_raw is None and self.sections.get("profile") is None:
            self.problem("rules", "missing: a configuration needs rules or a profile")
        elif rules_raw is not None and not isinstance(rules_raw, list):
            self.problem("rules", "must be a list of rule objects")
        else:
            for index, rule in enumerate(rules_raw or []):
                compiled = self._rule(index, rule, defaults, custom, parameters)
                if compiled is not None:
                    rules.append(compiled)
        unmatched = self._unmatched()
        profile = self.sections.get("profile")
        if profile is not None:
            self.problem("profile", "built-in profiles are not available yet in this version "
                         "(write the rules explicitly)")
        options = self.sections.get("options", [])
        if options:
            self.problem("options", "PS3.15 options are not available yet in this version")
        return Config(tuple(rules), unmatched, None, (), tuple(sorted(self.generated)))

    def _unmatched(self) -> Method:
        value = self.sections.get("unmatched", "keep")
        method = Method.parse(value) if isinstance(value, str) else None
        if method not in (Method.KEEP, Method.REMOVE):
            self.problem("unmatched", 'must be "keep" or "remove"')
            return Method.KEEP
        return method

    def _parameters(self) -> dict[str, str]:
        """Keys from the ``parameters`` section: literal, ``<name>File`` or ``<name>Env``."""
        raw = self._object("parameters")
        keys: dict[str, str] = {}
        names = {k.lower(): k for k in KEYED_METHODS.values()}
        for key, value in raw.items():
            lower = str(key).lower()
            location = f"parameters.{key}"
            base, how = lower, "literal"
            for suffix in ("file", "env"):
                if lower.endswith(suffix) and lower[: -len(suffix)] in names:
                    base, how = lower[: -len(suffix)], suffix
            if base not in names:
                self.problem(location, "unknown parameter" + _closest(str(key), [
                    *names.values(), *(n + "File" for n in names.values())]))
                continue
            if not isinstance(value, str):
                self.problem(location, "must be a string")
                continue
            resolved = self._resolve_key(location, value, how)
            if resolved is not None:
                keys[names[base]] = resolved
        return keys

    def _resolve_key(self, location: str, value: str, how: str) -> str | None:
        if how == "literal":
            return value
        if how == "env":
            found = os.environ.get(value)
            if found is None:
                self.problem(location, f"environment variable {value} is not set")
            return found
        try:
            return Path(value).read_text(encoding="utf-8").strip()
        except OSError as exc:
            self.problem(location, f"cannot read key file: {exc.strerror}")
            return None

    def _rule(self, index: int, raw: Any, defaults: dict[str, Any], custom: dict[str, Any],
              parameters: dict[str, str]) -> Rule | None:
        where = f"rules[{index}]"
        if not isinstance(raw, Mapping):
            self.problem(where, "must be an object with tag and method")
            return None
        ok = True
        for key in raw:
            if key not in RULE_FIELDS:
                self.problem(f"{where}.{key}", "unknown field" + _closest(str(key), RULE_FIELDS))
                ok = False
        method = self._method(where, raw)
        selector = self._selector(where, raw)
        settings_raw = self._settings_source(where, raw, method, defaults, custom)
        if method is None or selector is None or settings_raw is None or not ok:
            return None
        settings = self._bind(where, method, settings_raw, parameters)
        if settings is None:
            return None
        source = json.dumps({k: raw[k] for k in raw if k in RULE_FIELDS}, ensure_ascii=False)
        return Rule(index, selector, method, settings, source)

    def _method(self, where: str, raw: Mapping[str, Any]) -> Method | None:
        if "method" not in raw:
            self.problem(where, 'missing required field "method"')
            return None
        name = raw["method"]
        method = Method.parse(name) if isinstance(name, str) else None
        if method is None:
            self.problem(f"{where}.method", f'unknown method "{name}"'
                         + _closest(str(name), [m.value for m in Method]))
        return method

    def _selector(self, where: str, raw: Mapping[str, Any]) -> Selector | None:
        fields = [f for f in ("tag", "dicomTagPath") if f in raw]
        if not fields:
            self.problem(where, 'missing required field "tag" (or "dicomTagPath")')
            return None
        if len(fields) == 2:
            self.problem(where, 'give "tag" or "dicomTagPath", not both')
            return None
        text = raw[fields[0]]
        if not isinstance(text, str):
            self.problem(f"{where}.{fields[0]}", "must be a string")
            return None
        try:
            return parse_selector(text)
        except SelectorError as exc:
            self.problem(f"{where}.{fields[0]}", str(exc))
            return None

    def _settings_source(self, where: str, raw: Mapping[str, Any], method: Method | None,
                         defaults: dict[str, Any], custom: dict[str, Any]
                         ) -> dict[str, Any] | None:
        """Custom-or-default setting, then this rule's params on top (params never leak)."""
        base: dict[str, Any] = {}
        if "setting" in raw:
            name = raw["setting"]
            if not isinstance(name, str) or name not in custom:
                hint = _closest(str(name), list(custom)) if custom else ""
                self.problem(f"{where}.setting", f'custom setting "{name}" is not defined '
                             "in customSettings" + hint)
                return None
            if isinstance(custom[name], Mapping):
                base = dict(custom[name])
            else:
                self.problem(f"customSettings.{name}", "must be an object")
                return None
        elif method is not None:
            default = defaults.get(method.value.lower(), {})
            base = dict(default) if isinstance(default, Mapping) else {}
        params = raw.get("params", {})
        if not isinstance(params, Mapping):
            self.problem(f"{where}.params", "must be an object of setting overrides")
            return None
        return {**base, **params}

    def _bind(self, where: str, method: Method, raw: dict[str, Any],
              parameters: dict[str, str]) -> AnySettings | None:
        model = SETTINGS_BY_METHOD[method]
        if model is SETTINGS_BY_METHOD[Method.KEEP] and raw:
            self.problem(where, f"{method.value} takes no settings")
            return None
        try:
            settings = model.from_json(raw)
        except PydanticError as exc:
            for error in exc.errors():
                loc = ".".join(str(part) for part in error["loc"])
                self.problem(f"{where} setting {loc}", _pydantic_message(error))
            return None
        key_name = KEYED_METHODS.get(method)
        if key_name is not None and getattr(settings, "key", None) is None:
            key = parameters.get(key_name) or self._derived_key(method)
            settings = settings.model_copy(update={"key": key})
        return settings

    def _derived_key(self, method: Method) -> str:
        """A key for a method that has none: from the project secret, else random for the run."""
        if self.secret:
            from dcmanon.keys import derive_text_key

            return derive_text_key(self.secret, method.value)
        if method.value not in self.generated:
            self.generated[method.value] = secrets.token_hex(16)
        return self.generated[method.value]


def _pydantic_message(error: Any) -> str:
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if error["type"] == "extra_forbidden":
        return "unknown setting"
    return message
