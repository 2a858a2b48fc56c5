"""Which files of a batch's inputs are shots.

Inputs are shot files, folders (searched recursively) and glob patterns. A file
named on the command line is always a shot (a bad one fails with its one-line
error). A file found in a folder or by a pattern is a shot when its stage binds
a SkelAnimation with gaps (the bindings and context/keys detection of
`inbetween`), or when `inbetween` filled it before (its journal in
`.anymole/`, or a result layer composed over it: the gaps are covered now). A broken USD file found there is a shot too, so
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
_PROBE_ORDER = {".usda": 0, ".usd": 1, ".usdc": 2, ".usdz": 2}
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
    deps: dict[str, set[str]] = {}  # path -> files its root layer composes
    for path in explicit:
        kind, deps[path], _ = _read_head(path)
        (out.result_layers if kind == "result" else out.shots).append(path)
    known = set().union(*deps.values()) if deps else set()
    verdicts: dict[str, str | None] = {}
    # Text layers first: shots are usually .usda and the .usdz/.usdc beside them their assets, which
    # need no probing once a shot is seen to compose them.
    for path in sorted(searched, key=lambda p: _PROBE_ORDER.get(os.path.splitext(p)[1].lower(), 3)):
        kind, deps[path], layer = _read_head(path)
        known |= deps[path]
        if kind == "result":
            verdicts[path] = "an anymole-usd result layer"
        elif kind == "broken" or path in known:
            verdicts[path] = None  # broken: reported by the runner; a layer of another shot: below
        elif any(_is_result(d) for d in deps[path]):
            verdicts[path] = None  # a result is composed over it: filled before, still a shot
        else:
            verdicts[path] = _probe(path, fps)  # ``layer`` still open: the stage reuses it
        del layer
    # Another input's sublayer, reference or payload is part of that shot, not a shot of its own.
    used_by = {d: path for path, ds in deps.items() for d in ds if d != path}
    for path in searched:
        reason = verdicts[path]
        if reason is None and path in used_by:
            reason = f"a layer of {used_by[path]}"
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


def _read_head(path: str):
    """From the root layer alone: ("result" | "broken" | None, absolute paths of the files it composes, layer)."""
    from pxr import Sdf, Tf

    from ..layering import MARKER

    try:
        layer = Sdf.Layer.FindOrOpen(path) if os.path.isfile(path) else None
    except Tf.ErrorException:
        layer = None
    if layer is None:
        return "broken", set(), None
    if MARKER in dict(layer.customLayerData):
        return "result", set(), None
    deps = {os.path.abspath(layer.ComputeAbsolutePath(p)) for p in layer.GetCompositionAssetDependencies()}
    return None, {d for d in deps if "[" not in d}, layer  # package-internal paths are never separate files


def _is_result(path: str) -> bool:
    """An anymole-usd result layer (only files named like one are opened to check)."""
    if ".inbetween." not in os.path.basename(path) or not os.path.isfile(path):
        return False
    return _read_head(path)[0] == "result"


def _probe(path: str, fps: float | None) -> str | None:
    """Why the file is not a shot, or None when it is one.

    The same bindings and timeline detection as `inbetween` (pipeline.timelines, without reading
    the samples themselves); the runner has the last word on each shot.
    """
    from ..errors import InputError
    from ..pipeline import InbetweenOptions, timelines
    from ..reading import find_bindings, open_stage

    if _filled_before(path):
        return None  # its gaps are filled by a result composed over it now: still a shot
    try:
        stage = open_stage(path)
        bindings = find_bindings(stage, path)
    except InputError:
        return None  # bad input: the worker reports it with the runner's own message
    if not bindings:
        return "no UsdSkel Skeleton"
    if not any(b.animation_path for b in bindings):
        return "no Skeleton has a bound SkelAnimation"
    try:
        found = timelines(stage, path, bindings, InbetweenOptions(fps=fps))
    except InputError:
        return None  # no samples, a bad timeline: the runner says which animation and why
    return None if any(timeline.gaps for *_, timeline in found) else "no gaps to fill"


def _filled_before(path: str) -> bool:
    """True when `inbetween` has a record of filling this file (its journal, beside it)."""
    from .. import journal
    from ..errors import InputError

    try:
        found = journal.load(path)
    except InputError:
        return True  # an unreadable record: let the runner say so
    return found is not None and found.command == "inbetween"
