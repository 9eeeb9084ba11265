"""Configuration: JSON → frozen, validated models; selectors; method settings."""

from dcmanon.config.loader import Config, Rule, load_config, parse_config
from dcmanon.config.settings import Method

__all__ = ["Config", "Method", "Rule", "load_config", "parse_config"]
