"""Build a run's :class:`~dcmanon.pixels.clean.PixelCleaner` from the configuration."""

from __future__ import annotations

from pathlib import Path

from dcmanon.config.pixels import PixelSection
from dcmanon.errors import ConfigError, ConfigProblem
from dcmanon.pixels.clean import PixelCleaner, PixelMode
from dcmanon.pixels.ctp import ScriptError, parse_ctp_script
from dcmanon.pixels.deid import RecipeError, parse_deid_recipe
from dcmanon.pixels.library import RuleProblem, default_library, rules_from_json
from dcmanon.pixels.rules import RuleSet


def build_cleaner(section: PixelSection, mode: str | None = None,
                  source: str = "configuration") -> PixelCleaner:
    """The cleaner for a ``pixels`` section; ``mode`` (``--pixels``) overrides its mode.

    Rule sets apply in this order: the section's ``rules``, its CTP scripts, its deid
    recipes, then the default library (unless ``defaultLibrary`` is false).

    Raises
    ------
    ConfigError
        If a rule, a script or a recipe is wrong (with its location), or a mode is unknown.

    Examples
    --------
    >>> from dcmanon.config.pixels import PixelSection
    >>> cleaner = build_cleaner(PixelSection(), "rules")
    >>> str(cleaner.mode), len(cleaner.rule_sets) > 0
    ('rules', True)
    """
    try:
        chosen = PixelMode((mode or section.mode).lower())
    except ValueError:
        raise ConfigError([ConfigProblem("pixels.mode", "must be one of off, rules, flagged, "
                                         "all")], source) from None
    sets: list[RuleSet] = []
    try:
        rules = rules_from_json(section.rules, "configuration")
    except RuleProblem as exc:
        raise ConfigError([ConfigProblem(exc.location, exc.message)], source) from None
    if rules.rules:
        sets.append(rules)
    for index, path in enumerate(section.ctp_scripts):
        text = _read(path, f"pixels.ctpScripts[{index}]", source)
        try:
            sets.append(parse_ctp_script(text, Path(path).name))
        except ScriptError as exc:
            raise ConfigError([ConfigProblem(f"pixels.ctpScripts[{index}]", str(exc))],
                              source) from None
    for index, path in enumerate(section.deid_recipes):
        text = _read(path, f"pixels.deidRecipes[{index}]", source)
        try:
            sets.extend(parse_deid_recipe(text, Path(path).name))
        except RecipeError as exc:
            raise ConfigError([ConfigProblem(f"pixels.deidRecipes[{index}]", str(exc))],
                              source) from None
    if section.default_library:
        sets.extend(default_library())
    return PixelCleaner(chosen, sets, identifiers_only=section.identifiers_only)


def _read(path: str, location: str, source: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError([ConfigProblem(location, f"cannot read {path}: "
                                         f"{exc.strerror or 'unreadable'}")], source) from None
