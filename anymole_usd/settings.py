"""User settings: where a setting such as the video model comes from: option > environment variable > config file.

Config files are TOML, read in this order (the first that sets the key wins):
``$ANYMOLE_USD_CONFIG`` if set, ``./anymole-usd.toml``, then
``$XDG_CONFIG_HOME/anymole-usd/config.toml`` (``~/.config/...`` by default).
Keys are dotted: ``video.model`` is ``model = "..."`` under ``[video]``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from anymole_usd.errors import InputError

# Setting key -> environment variable.
ENV_VARS = {
    "video.model": "ANYMOLE_USD_VIDEO_MODEL",
    "video.caption_model": "ANYMOLE_USD_CAPTION_MODEL",
}


@dataclass(frozen=True)
class Setting:
    """A resolved value and where it came from (for messages and provenance)."""

    key: str
    value: str | None
    source: str  # "option", "env NAME", "config PATH" or "unset"


def config_files() -> list[Path]:
    """Candidate config files, strongest first (they need not exist)."""
    files = []
    explicit = os.environ.get("ANYMOLE_USD_CONFIG")
    if explicit:
        files.append(Path(explicit).expanduser())
    files.append(Path.cwd() / "anymole-usd.toml")
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    files.append(Path(base).expanduser() / "anymole-usd" / "config.toml")
    return files


def read_config(path: Path) -> dict:
    """Parse one TOML file; a syntax error is bad input naming the file and line."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise InputError("reading config files on Python 3.10 needs the 'tomli' package", file=str(path)) from None
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"invalid TOML: {exc}", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read config file: {exc.strerror}", file=str(path)) from None


def _lookup(data: dict, key: str):
    node = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def resolve(key: str, option: str | None = None, env: str | None = None) -> Setting:
    """Resolve ``key`` (for example ``"video.model"``): option, then env var, then config files."""
    if option not in (None, ""):
        return Setting(key, str(option), "option")
    env = env or ENV_VARS.get(key)
    if env and os.environ.get(env, "") != "":
        return Setting(key, os.environ[env], f"env {env}")
    for path in config_files():
        if not path.is_file():
            continue
        value = _lookup(read_config(path), key)
        if value is None:
            continue
        if not isinstance(value, (str, int, float)):
            raise InputError(f"{key} must be a string, got {type(value).__name__}", file=str(path))
        return Setting(key, str(value), f"config {path}")
    return Setting(key, None, "unset")


def video_model_setting(option: str | None = None) -> str | None:
    """The configured video model (local folder or hub id), or None."""
    return resolve("video.model", option).value


def video_model_source(option: str | None = None) -> str:
    """Where the video model setting comes from: "option", "env ANYMOLE_USD_VIDEO_MODEL", "config PATH"
    or "unset". A ``./anymole-usd.toml`` that sets ``video.model`` switches the default prior to ``video``;
    commands say so with this (for example "default prior 'video' (video.model from config ./anymole-usd.toml)")."""
    return resolve("video.model", option).source


def describe_source(setting: Setting) -> str:
    """A short phrase for messages: "video.model from config /path/anymole-usd.toml"."""
    return f"{setting.key} from {setting.source}" if setting.source != "unset" else f"{setting.key} unset"
