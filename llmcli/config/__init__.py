"""Settings: defaults < YAML file (profiles) < env vars < flags."""

from .files import config_dir, config_path
from .settings import Settings, load_settings

__all__ = ["Settings", "config_dir", "config_path", "load_settings"]
