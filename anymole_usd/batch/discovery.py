"""Which files of a batch's inputs are shots.

Inputs are shot files, folders (searched recursively) and glob patterns. A file
named on the command line is always a shot (a bad one fails with its one-line
error). A file found in a folder or by a pattern is a shot when its stage binds
a SkelAnimation with gaps, checked exactly as `inbetween` plans it, or when
`inbetween` filled it before (its journal in `.anymole/`; the gaps are covered
by the composed result now). A broken USD file found there is a shot too, so
the batch reports it. Never shots: anymole-usd's own result layers, hidden
files and folders (`.anymole` keeps journals and backups), and files that
another input's root layer composes (an animation sublayer, a referenced
character, the usdz under an example shot).
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

USD_EXTENSIONS = (".usd", ".usda", ".usdc", ".usdz")
_GLOB_CHARS = set("*?[")


@dataclass
class Discovered:
    shots: list[str] = field(default_factory=list)  # absolute paths, in input order (folders sorted)
    result_layers: list[str] = field(default_factory=list)  # named explicitly, but a result, not a shot
    ignored: list[dict] = field(default_factory=list)  # {"path", "reason"} for searched files left out


def discover(inputs: list[str], fps: float | None = None) -> Discovered:
    """Expand ``inputs`` into shot files (see the module docstring for the rules)."""
    explicit, searched = _expand(inputs)
    out = Discovered()
    heads: dict[str, tuple[str | None, set[str]]] = {}  # path -> (kind of root layer, files it composes)
    for path in explicit:
        heads[path] = _read_head(path)
        (out.result_layers if heads[path][0] == "result" else out.shots).append(path)
    for path in searched:
        heads[path] = _read_head(path)
    # Another shot's sublayer, reference or payload is part of that shot, not a shot of its own.
    used_by = {dep: path for path, (kind, deps) in heads.items() if kind != "result" for dep in deps if dep != path}
    for path in searched:
        kind = heads[path][0]
        if kind == "result":
            reason = "an anymole-usd result layer"
        elif path in used_by:
            reason = f"a layer of {used_by[path]}"
        else:
            reason = None if kind == "broken" else _probe(path, fps)  # a broken file is reported, not passed over
        if reason:
            out.ignored.append({"path": path, "reason": reason})
        else:
            out.shots.append(path)
    return out


def _expand(inputs: list[str]) -> tuple[list[str], list[str]]:
    """(files named as such, files found in folders or by patterns), absolute, each once."""
    explicit: list[str] = []
    searched: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            searched += _walk(item)
        elif _GLOB_CHARS & set(item) and not os.path.exists(item):
            for match in sorted(glob.glob(item, recursive=True)):
                if os.path.isdir(match):
                    searched += _walk(match)
                elif match.lower().endswith(USD_EXTENSIONS):  # glob itself passes over hidden names
                    searched.append(match)
        else:
            explicit.append(item)  # missing or unreadable: the runner says so, as `inbetween` would
    seen: set[str] = set()  # real paths: a shot reached through a symlink too is still one shot

    def once(paths: list[str]) -> list[str]:
        out = []
        for path in map(os.path.abspath, paths):
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                out.append(path)
        return out

    return once(explicit), once(searched)


def _walk(folder: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in sorted(files)
                  if f.lower().endswith(USD_EXTENSIONS) and not f.startswith(".")]
    return found


def _read_head(path: str) -> tuple[str | None, set[str]]:
    """From the root layer alone: ("result" | "broken" | None, absolute paths of the files it composes)."""
    from pxr import Sdf, Tf

    from ..layering import MARKER

    try:
        layer = Sdf.Layer.FindOrOpen(path) if os.path.isfile(path) else None
    except Tf.ErrorException:
        layer = None
    if layer is None:
        return "broken", set()
    if MARKER in dict(layer.customLayerData):
        return "result", set()
    deps = {os.path.abspath(layer.ComputeAbsolutePath(p)) for p in layer.GetCompositionAssetDependencies()}
    return None, {d for d in deps if "[" not in d}  # package-internal paths are never separate files


def _probe(path: str, fps: float | None) -> str | None:
    """Why the file is not a shot, or None when it is one (checked as `inbetween` plans it)."""
    from ..errors import InputError
    from ..pipeline import InbetweenOptions, plan
    from ..reading import find_bindings, open_stage

    if _filled_before(path):
        return None  # its gaps are filled by a result composed over it now: still a shot
    try:
        stage = open_stage(path)
        bindings = find_bindings(stage, path)
        if not bindings:
            return "no UsdSkel Skeleton"
        if not any(b.animation_path for b in bindings):
            return "no Skeleton has a bound SkelAnimation"
        _, jobs = plan(path, InbetweenOptions(fps=fps), stage)
    except InputError:
        return None  # bad input: the worker reports it with the runner's own message
    return None if any(j.timeline.gaps for j in jobs) else "no gaps to fill"


def _filled_before(path: str) -> bool:
    """True when `inbetween` has a record of filling this file (its journal, beside it)."""
    from .. import journal
    from ..errors import InputError

    try:
        found = journal.load(path)
    except InputError:
        return True  # an unreadable record: let the runner say so
    return found is not None and found.command == "inbetween"
