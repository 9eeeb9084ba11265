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

from dcmanon.config.lookup import MissingPolicy, SubjectTable, load_subject_table
from dcmanon.config.pixels import PixelSection, pixel_section
from dcmanon.config.selectors import Selector, SelectorError, parse_selector
from dcmanon.config.settings import (
    ALL_SETTING_KEYS,
    SECRET_SETTING_KEYS,
    SETTINGS_BY_METHOD,
    AnySettings,
    Method,
)
from dcmanon.config.trial import ClinicalTrial, parse_clinical_trial
from dcmanon.errors import ConfigError, ConfigProblem
from dcmanon.keys import DEFAULT_PREFIX, KEY_ENV, MIN_KEY_LENGTH
from dcmanon.profiles import PROFILES, Option, Profile

SECTIONS = ("rules", "defaultSettings", "customSettings", "parameters", "profile", "options",
            "pseudonymPrefix",
            "unmatched", "lookup", "lookupMissing", "clinicalTrial", "ageBrackets", "pixels")
MAX_AGE_BRACKET = 50
RULE_FIELDS = ("tag", "dicomTagPath", "method", "setting", "params")
KEYED_METHODS = {
    Method.DATE_SHIFT: "dateShiftKey",
    Method.CRYPTO_HASH: "cryptoHashKey",
    Method.ENCRYPT: "encryptKey",
    Method.REFRESH_UID: "refreshUIDKey",
}


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
    profile: Profile | None = None
    """The built-in profile applied to elements no rule selects (None: ``unmatched``)."""
    generated_keys: tuple[str, ...] = ()
    """Methods that had no key and got a random one for this run (outputs won't link)."""
    weak_keys: tuple[str, ...] = ()
    """Keys shorter than :data:`MIN_KEY_LENGTH` characters, by where they were given
    (``the project secret``, ``parameters.cryptoHashKey``, ``dateShiftKey of rules[1]``);
    never the keys themselves."""
    uid_key: str = field(default="", repr=False)
    """Key of the profile's UIDs (the same as refreshUID's, so references stay consistent)."""
    patient_key: str = field(default="", repr=False)
    """Key of patient pseudonyms and per-patient date offsets."""
    pseudonym_prefix: str = DEFAULT_PREFIX
    lookup: SubjectTable | None = None
    """The subject table (``lookup``): listed originals get their replacement, at any depth."""
    lookup_missing: MissingPolicy = MissingPolicy.FAIL
    """What happens to a patient the table does not list."""
    clinical_trial: ClinicalTrial | None = None
    """The trial's attributes, written on every output (``clinicalTrial``)."""
    age_brackets: int | None = None
    """Kept ages are grouped into brackets of this many years (``ageBrackets``)."""
    pixels: PixelSection = field(default_factory=PixelSection)
    """The ``pixels`` section: burned-in text (:mod:`dcmanon.config.pixels`)."""


def load_config(path: str | os.PathLike[str], *, secret: str | None = None,
                overrides: Mapping[str, Any] | None = None) -> Config:
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
    return parse_config(text, source=source, secret=secret, overrides=overrides,
                        base=Path(path).parent)


def parse_config(text: str | Mapping[str, Any], *, source: str = "configuration",
                 secret: str | None = None, overrides: Mapping[str, Any] | None = None,
                 base: Path | None = None) -> Config:
    """Validate a configuration given as JSON text or as an already parsed mapping.

    ``overrides`` replace top-level sections (the command line's ``--profile``,
    ``--option``, ``--lookup``...). A relative ``lookup`` path in the file is read from
    ``base`` (the configuration's folder); one from the command line as given. See
    :func:`load_config`.
    """
    if isinstance(text, str):
        try:
            raw = json5.loads(text.lstrip("\ufeff"))
        except ValueError as exc:
            raise ConfigError([ConfigProblem("", f"not valid JSON: {exc}")], source) from None
        except RecursionError:
            raise ConfigError([ConfigProblem("", "not valid JSON: nested too deeply")],
                              source) from None
    else:
        raw = text
    if not isinstance(raw, Mapping):
        raise ConfigError([ConfigProblem("", "the configuration must be a JSON object")], source)
    if overrides:
        raw = {**{k: v for k, v in raw.items() if str(k).lower() not in
                  {o.lower() for o in overrides}}, **overrides}
    lookup_base = base
    if overrides and any(str(k).lower() == "lookup" for k in overrides):
        lookup_base = None
    builder = _Builder(raw, secret if secret is not None else os.environ.get(KEY_ENV))
    builder.lookup_base = lookup_base
    builder.source = source
    config = builder.build()
    if builder.problems:
        raise ConfigError(builder.problems, source)
    return config


def default_config(*, secret: str | None = None, profile: str = "basic",
                   options: tuple[str, ...] = ()) -> Config:
    """The configuration used when none is given: a built-in PS3.15 profile, nothing else.

    Examples
    --------
    >>> default_config(secret="k").profile.describe()
    'PS3.15 2026d basic profile'
    """
    return parse_config({"profile": profile, "options": list(options)}, source="default profile",
                        secret=secret)


def _closest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f' (did you mean "{lowered[match[0]]}"?)' if match else ""


def _shown(raw: Mapping[str, Any]) -> str:
    """A rule as written, for messages, with the value of every key setting hidden."""
    shown: dict[str, Any] = {}
    for name in raw:
        if name not in RULE_FIELDS:
            continue
        value = raw[name]
        if name == "params" and isinstance(value, Mapping):
            value = {k: "***" if str(k).lower() in SECRET_SETTING_KEYS else v
                     for k, v in value.items()}
        shown[name] = value
    return json.dumps(shown, ensure_ascii=False, default=str)


class _Builder:
    """Collects problems while compiling a raw configuration."""

    def __init__(self, raw: Mapping[str, Any], secret: str | None) -> None:
        self.problems: list[ConfigProblem] = []
        self.source: str | None = None
        """The configuration file (relative script paths of ``pixels`` start from it)."""
        self.secret = secret
        self.generated: dict[str, str] = {}
        self.weak: set[str] = set()
        if secret and len(secret) < MIN_KEY_LENGTH:
            self.weak.add("the project secret")
        self.sections = self._sections(raw)
        self.defaults: dict[Method, tuple[str, dict[str, Any]]] = {}
        """Method → (JSON location, setting object) of ``defaultSettings``."""
        self.custom: dict[str, Any] = {}
        self.custom_checked: dict[tuple[str, Method], bool] = {}
        """(custom setting, method) → whether it binds; each is reported once."""
        self.custom_used: set[str] = set()
        self.lookup_base: Path | None = None
        """Where a relative ``lookup`` path is read from (None: as given)."""

    def problem(self, location: str, message: str) -> None:
        found = ConfigProblem(location, message)
        if found not in self.problems:
            self.problems.append(found)

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
        value = self.sections.get(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            what = "{name: value}" if name == "parameters" else "{name: setting object}"
            self.problem(name, f"must be an object of {what}")
            return {}
        return dict(value)

    def build(self) -> Config:
        self._defaults()
        self.custom = self._object("customSettings")
        parameters = self._parameters()
        rules_raw = self.sections.get("rules")
        rules: list[Rule] = []
        if rules_raw is None and self.sections.get("profile") is None:
            self.problem("rules", "missing: a configuration needs rules or a profile")
        elif rules_raw is not None and not isinstance(rules_raw, list):
            self.problem("rules", "must be a list of rule objects")
        else:
            for index, rule in enumerate(rules_raw or []):
                compiled = self._rule(index, rule, parameters)
                if compiled is not None:
                    rules.append(compiled)
        self._unused_custom_settings()
        unmatched = self._unmatched()
        profile = self._profile()
        prefix = self.sections.get("pseudonymPrefix", DEFAULT_PREFIX)
        if not isinstance(prefix, str) or len(prefix) > 16 or "\\" in prefix:
            self.problem("pseudonymPrefix", "must be a text of at most 16 characters")
            prefix = DEFAULT_PREFIX
        uid_key = patient_key = ""
        if profile is not None:
            uid_key = parameters.get("refreshUIDKey") or self._derived_key(Method.REFRESH_UID)
            patient_key = self._derived_key_named("patient")
        lookup, missing = self._lookup()
        trial = None
        if self.sections.get("clinicalTrial") is not None:
            trial = parse_clinical_trial(self.sections["clinicalTrial"], self.problem)
        pixels = pixel_section(self.sections.get("pixels"), self.problem,
                               self.source)
        return Config(tuple(rules), unmatched, profile, tuple(sorted(self.generated)),
                      tuple(sorted(self.weak)), uid_key, patient_key, prefix, lookup, missing,
                      trial, self._age_brackets(), pixels)

    def _lookup(self) -> tuple[SubjectTable | None, MissingPolicy]:
        """The subject table (read once, here) and what happens to unlisted patients."""
        missing_raw = self.sections.get("lookupMissing", MissingPolicy.FAIL.value)
        try:
            missing = MissingPolicy(str(missing_raw).lower())
        except ValueError:
            self.problem("lookupMissing", 'must be "fail" or "pseudonym"')
            missing = MissingPolicy.FAIL
        path = self.sections.get("lookup")
        if path is None:
            return None, missing
        if not isinstance(path, str) or not path:
            self.problem("lookup", "must be the path of a CSV file "
                         "(keyword,original,replacement)")
            return None, missing
        full = Path(path) if self.lookup_base is None else self.lookup_base / path
        try:
            return load_subject_table(full), missing
        except ConfigError as exc:
            for found in exc.problems:
                where = f"lookup ({full})" + (f", {found.location}" if found.location else "")
                self.problem(where, found.message)
            return None, missing

    def _age_brackets(self) -> int | None:
        value = self.sections.get("ageBrackets")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not (
                2 <= value <= MAX_AGE_BRACKET):
            self.problem("ageBrackets", f"must be a whole number of years from 2 to "
                         f"{MAX_AGE_BRACKET}")
            return None
        return value

    def _profile(self) -> Profile | None:
        """The ``profile`` (a built-in name) and its ``options`` (PS3.15 option names)."""
        name = self.sections.get("profile")
        options = self.sections.get("options", [])
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            self.problem("options", "must be a list of PS3.15 option names")
            return None
        if name is None:
            if options:
                self.problem("options", 'options need a profile (e.g. "profile": "basic")')
            return None
        if not isinstance(name, str):
            self.problem("profile", "must be the name of a built-in profile")
            return None
        chosen: set[Option] = set()
        for index, text in enumerate(options):
            option = Option.parse(text)
            if option is None:
                self.problem(f"options[{index}]", f'unknown option "{text}"'
                             + _closest(text, [o.value for o in Option]))
            else:
                chosen.add(option)
        try:
            return Profile.build(name, frozenset(chosen))
        except ValueError as exc:
            self.problem("profile" if name not in PROFILES else "options", str(exc))
            return None

    def _defaults(self) -> None:
        """Bind every ``defaultSettings`` entry once, where it is written."""
        for name, value in self._object("defaultSettings").items():
            location = f"defaultSettings.{name}"
            method = Method.parse(str(name))
            if method is None:
                self.problem(location, "unknown method" + _closest(str(name),
                                                                   [m.value for m in Method]))
                continue
            if not isinstance(value, Mapping):
                self.problem(location, "must be an object")
                continue
            self.defaults[method] = (location, dict(value))
            self._check(location, method, value)

    def _check(self, location: str, method: Method, raw: Mapping[str, Any]) -> bool:
        """Report what is wrong with a setting object for ``method``; whether it binds."""
        model = SETTINGS_BY_METHOD[method]
        if not model.json_names():
            if raw:
                self.problem(location, f"{method.value} takes no settings")
            return not raw
        _, problems = model.bind(raw)
        for key, message in problems:
            self.problem(f"{location}.{key}", message)
        return not problems

    def _unused_custom_settings(self) -> None:
        for name, value in self.custom.items():
            if name in self.custom_used:
                continue
            location = f"customSettings.{name}"
            if not isinstance(value, Mapping):
                self.problem(location, "must be an object")
                continue
            for key in value:
                if str(key).lower() not in ALL_SETTING_KEYS:
                    self.problem(f"{location}.{key}", "unknown setting")

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
                    *names.values(), *(n + "File" for n in names.values()),
                    *(n + "Env" for n in names.values())]))
                continue
            if not isinstance(value, str):
                self.problem(location, "must be a string")
                continue
            resolved = self._resolve_key(location, value, how)
            if resolved is None:
                continue
            name = names[base]
            if name in keys:
                self.problem(location, f"{name} is given more than once in parameters")
                continue
            method = next(m for m, n in KEYED_METHODS.items() if n == name)
            _, problems = SETTINGS_BY_METHOD[method].bind({name: resolved})
            for _key, message in problems:
                self.problem(location, message)
            if not problems:
                keys[name] = resolved
                if len(resolved) < MIN_KEY_LENGTH:
                    self.weak.add(f"parameters.{name}")
        return keys

    def _resolve_key(self, location: str, value: str, how: str) -> str | None:
        if how == "literal":
            found: str | None = value
        elif how == "env":
            found = os.environ.get(value)
            if found is None:
                self.problem(location, f"environment variable {value} is not set")
                return None
        else:
            try:
                found = Path(value).read_text(encoding="utf-8").strip()
            except OSError as exc:
                self.problem(location, f"cannot read key file: {exc.strerror}")
                return None
            except UnicodeDecodeError:
                self.problem(location, "cannot read key file: not UTF-8 text")
                return None
        if not found:
            self.problem(location, "the key is empty")
            return None
        return found

    def _rule(self, index: int, raw: Any, parameters: dict[str, str]) -> Rule | None:
        where = f"rules[{index}]"
        if not isinstance(raw, Mapping):
            self.problem(where, "must be an object with tag and method")
            return None
        ok = True
        suggested: set[str] = set()
        for key in raw:
            if key not in RULE_FIELDS:
                hint = _closest(str(key), RULE_FIELDS)
                self.problem(f"{where}.{key}", "unknown field" + hint)
                suggested.update(f for f in RULE_FIELDS if f'"{f}"' in hint)
                ok = False
        method = self._method(where, raw, suggested)
        selector = self._selector(where, raw, suggested)
        settings = self._settings(where, raw, method, parameters)
        if method is None or selector is None or settings is None or not ok:
            return None
        return Rule(index, selector, method, settings, _shown(raw))

    def _method(self, where: str, raw: Mapping[str, Any], suggested: set[str]) -> Method | None:
        if "method" not in raw:
            if "method" not in suggested:  # else already reported as a misspelt field
                self.problem(where, 'missing required field "method"')
            return None
        name = raw["method"]
        method = Method.parse(name) if isinstance(name, str) else None
        if method is None:
            names = [m.value for m in Method]
            hint = _closest(str(name), names) or " (methods: " + ", ".join(names) + ")"
            self.problem(f"{where}.method", f'unknown method "{name}"' + hint)
        return method

    def _selector(self, where: str, raw: Mapping[str, Any], suggested: set[str]
                  ) -> Selector | None:
        fields = [f for f in ("tag", "dicomTagPath") if f in raw]
        if not fields:
            if not suggested & {"tag", "dicomTagPath"}:  # else reported as a misspelt field
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

    def _settings(self, where: str, raw: Mapping[str, Any], method: Method | None,
                  parameters: dict[str, str]) -> AnySettings | None:
        """Custom-or-default setting, then this rule's params on top (params never leak).

        A problem is reported where it is written: in ``defaultSettings``, in
        ``customSettings`` (once per method that uses it) or in the rule's ``params``.
        """
        base: dict[str, Any] = {}
        base_ok = True
        if "setting" in raw:
            name = raw["setting"]
            if not isinstance(name, str) or name not in self.custom:
                hint = _closest(str(name), list(self.custom)) if self.custom else ""
                self.problem(f"{where}.setting", f'custom setting "{name}" is not defined '
                             "in customSettings" + hint)
                return None
            self.custom_used.add(name)
            value = self.custom[name]
            if not isinstance(value, Mapping):
                self.problem(f"customSettings.{name}", "must be an object")
                return None
            base = dict(value)
            if method is not None:
                if not SETTINGS_BY_METHOD[method].json_names() and base:
                    self.problem(f"{where}.setting", f"{method.value} takes no settings")
                    return None
                checked = self.custom_checked.get((name, method))
                if checked is None:
                    checked = self._check(f"customSettings.{name}", method, base)
                    self.custom_checked[(name, method)] = checked
                base_ok = checked
        elif method is not None and method in self.defaults:
            location, base = self.defaults[method]
            base_ok = not any(p.location == location or p.location.startswith(location + ".")
                              for p in self.problems)
        params = raw.get("params", {})
        if not isinstance(params, Mapping):
            self.problem(f"{where}.params", "must be an object of setting overrides")
            return None
        if method is None:
            return None
        model = SETTINGS_BY_METHOD[method]
        if not model.json_names():
            if params:
                self.problem(f"{where}.params", f"{method.value} takes no settings")
                return None
            return model()
        params_ok = self._check(f"{where}.params", method, params)
        if not (base_ok and params_ok):
            return None
        settings, _ = model.bind({**base, **params})
        if settings is None:  # each part binds alone, so this cannot happen; be safe
            self.problem(where, "the settings do not bind")
            return None
        return self._with_key(method, settings, parameters, where)

    def _with_key(self, method: Method, settings: AnySettings,
                  parameters: dict[str, str], where: str) -> AnySettings:
        """Fill a missing key: ``parameters`` first, then the project secret, else random.
        A key of the settings themselves is noted if it is weak."""
        key_name = KEYED_METHODS.get(method)
        given = getattr(settings, "key", None)
        if key_name is not None and isinstance(given, str) and len(given) < MIN_KEY_LENGTH:
            self.weak.add(f"{key_name} of {where}")
        if key_name is None or given is not None:
            return settings
        key = parameters.get(key_name) or self._derived_key(method)
        return settings.model_copy(update={"key": key})

    def _derived_key_named(self, purpose: str) -> str:
        """A key for ``purpose``: from the project secret, else random for the run."""
        if self.secret:
            from dcmanon.keys import derive_text_key

            return derive_text_key(self.secret, purpose)
        if purpose not in self.generated:
            self.generated[purpose] = secrets.token_hex(16)
        return self.generated[purpose]

    def _derived_key(self, method: Method) -> str:
        """A key for a method that has none (its purpose is the method's name)."""
        return self._derived_key_named(method.value)
