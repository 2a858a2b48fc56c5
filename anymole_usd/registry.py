"""Plugin registry over Python entry points.

Built-in plugins are declared in pyproject.toml exactly as a third-party
package declares its own, and nothing is imported until a plugin is used.
A plugin that fails to import is reported, never fatal to the others.
"""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from importlib import metadata

from .errors import PluginError
from .parameters import Parameters

GROUPS = {
    "priors": "anymole_usd.priors",
    "stages": "anymole_usd.stages",
    "importers": "anymole_usd.importers",
    "exporters": "anymole_usd.exporters",
    "metrics": "anymole_usd.metrics",
    "video_sources": "anymole_usd.video_sources",
    "backbones": "anymole_usd.backbones",
    "captioners": "anymole_usd.captioners",
}


@dataclass
class PluginInfo:
    kind: str
    name: str
    target: str  # "module:attr"
    package: str  # distribution that provides it
    version: str
    error: str | None = None
    description: str | None = None  # filled by check(); None when the plugin was not imported
    parameters: list[dict] | None = None  # Parameters.describe() of its param_spec

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "name": self.name, "target": self.target, "package": self.package,
               "version": self.version, "ok": self.error is None, "error": self.error}
        if self.description is not None:
            out["description"] = self.description
        if self.parameters is not None:
            out["parameters"] = self.parameters
        return out


def _entry_points(group: str):
    return _scan(group, tuple(sys.path))


@functools.lru_cache(maxsize=32)
def _scan(group: str, path: tuple) -> tuple:
    # Reading every installed distribution's metadata costs ~15 ms a call, paid by each shot of a
    # batch; what a process can import changes only with sys.path (the key).
    return tuple(metadata.entry_points(group=group))


def plugins(kind: str | None = None) -> list[PluginInfo]:
    """Declared plugins (not imported), sorted by kind and name."""
    kinds = [kind] if kind else list(GROUPS)
    out = []
    seen = set()
    for k in kinds:
        for ep in _entry_points(_group(k)):
            if (k, ep.name) in seen:  # the same dist visible twice on sys.path
                continue
            seen.add((k, ep.name))
            dist = getattr(ep, "dist", None)
            out.append(PluginInfo(k, ep.name, ep.value, dist.name if dist else "?", dist.version if dist else "?"))
    return sorted(out, key=lambda p: (list(GROUPS).index(p.kind), p.name))


def names(kind: str) -> list[str]:
    return [p.name for p in plugins(kind)]


def load(kind: str, name: str):
    """Import and return the object a plugin entry point names."""
    eps = [ep for ep in _entry_points(_group(kind)) if ep.name == name]
    if not eps:
        available = ", ".join(names(kind)) or "none"
        raise PluginError(f"no {kind[:-1] if kind.endswith('s') else kind} plugin named {name!r} (available: {available})")
    try:
        return eps[0].load()
    except Exception as exc:  # a broken plugin must not take the tool down
        raise PluginError(f"{kind} plugin {name!r} ({eps[0].value}) failed to import: {type(exc).__name__}: {exc}") from exc


def spec_of(obj) -> Parameters:
    """The parameters a loaded plugin object declares in ``param_spec`` (none when it declares nothing)."""
    spec = getattr(obj, "param_spec", None)
    return spec if isinstance(spec, Parameters) else Parameters()


def description_of(obj) -> str:
    """A plugin's one-line description: its ``description`` attribute, else its docstring's first line."""
    text = getattr(obj, "description", None)
    if not isinstance(text, str) or not text:
        doc = (getattr(obj, "__doc__", None) or "").strip()
        text = doc.splitlines()[0] if doc else ""
    return text


def param_spec(kind: str, name: str) -> Parameters:
    """Declared parameters of plugin ``name`` of ``kind`` (imports it)."""
    return spec_of(load(kind, name))


def check(kind: str | None = None) -> list[PluginInfo]:
    """Like :func:`plugins` but imports each one, records failures, descriptions and parameters."""
    infos = plugins(kind)
    for info in infos:
        try:
            obj = load(info.kind, info.name)
        except PluginError as exc:
            info.error = str(exc.__cause__ or exc)
            continue
        info.description = description_of(obj)
        info.parameters = spec_of(obj).describe()
    return infos


def _group(kind: str) -> str:
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r} (known: {', '.join(GROUPS)})")
    return GROUPS[kind]
