"""Config files: YAML + ``dotted.key=value`` overrides, validated by pydantic into one clear error."""
from ray_icma.config._errors import ConfigError
from ray_icma.config._parse import apply_overrides, load_config, parse_override
from ray_icma.config._section import Section
from ray_icma.config._validate import unknown_key_hint, validate_config

__all__ = ["ConfigError", "Section", "load_config", "apply_overrides", "parse_override", "validate_config", "unknown_key_hint"]
