"""Configuration: `load_settings()` returns a validated, frozen `Settings`."""

from shared.config.loader import ConfigLoader, load_settings, normalize_env
from shared.config.models import Settings

__all__ = ["ConfigLoader", "Settings", "load_settings", "normalize_env"]
