"""User settings resolution: command-line option > environment variable > config file.

Config files (TOML), first found wins: ``./anymole-usd.toml``, then
``$XDG_CONFIG_HOME/anymole-usd/config.toml`` (default ``~/.config``).
"""
from __future__ import annotations

import os

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None

VIDEO_MODEL_ENV = "ANYMOLE_USD_VIDEO_MODEL"


def config_paths() -> list[str]:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return [os.path.abspath("anymole-usd.toml"), os.path.join(base, "anymole-usd", "config.toml")]


def load_config() -> dict:
    if tomllib is None:
        return {}
    for path in config_paths():
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                try:
                    return tomllib.load(handle)
                except tomllib.TOMLDecodeError as exc:
                    from .errors import InputError

                    raise InputError(f"invalid TOML ({exc})", file=path) from None
    return {}


def video_model_setting(option: str | None = None) -> str | None:
    """The configured video model (local folder or hub id), or None."""
    if option:
        return option
    if os.environ.get(VIDEO_MODEL_ENV):
        return os.environ[VIDEO_MODEL_ENV]
    value = load_config().get("video", {}).get("model")
    return str(value) if value else None
