"""Source files of a motion library: finding them, hashing them, reading their clips.

Every clip is read through the project's own readers: USD with
:mod:`anymole_usd.reading` (every Skeleton with a bound SkelAnimation), BVH
and glTF/GLB with the registered importers (``anymole_usd.importers``, every
animation of the file). Clips come out Y-up (a Z-up USD skeleton is turned
the way ``anymole-usd import`` turns files), at their own frame rate, in the
file's units (``meters_per_unit`` kept beside them).

A USD animation whose samples are not evenly spaced contributes each dense
run of samples as a clip (``prim[a:b]``); runs shorter than ``MIN_FRAMES``
samples (a rest pose, two keys) are skipped with a note.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from anymole_usd.errors import InputError
from anymole_usd.motion import Motion
from anymole_usd.skeleton import Skeleton
from anymole_usd.timeline import TIME_TOLERANCE

USD_SUFFIXES = (".usd", ".usda", ".usdc", ".usdz")
MIN_FRAMES = 4  # a clip shorter than this has no usable velocity or continuation


@dataclass
class SourceClip:
    """One animation read from a source file, in the library's conventions (Y-up, frames 0..n-1)."""

    label: str  # USD: the SkelAnimation prim path; glTF: the animation name; BVH: the file stem
    skeleton: Skeleton
    motion: Motion  # times 0..n-1, fps = samples per second
    up_axis: str = "Y"  # up in skeleton space after conversion ("Y" unless the rig is unusual)
    meters_per_unit: float = 0.01
    start: float = 0.0  # time of the first sample in the file, seconds
    tags: list[str] = field(default_factory=list)  # from customData on a USD SkelAnimation
    has_mesh: bool = False
    skeleton_prim: str | None = None  # USD: the Skeleton prim
    meshes: list = field(default_factory=list)  # skinned meshes an importer read with the clip (glTF)


def importer_suffixes() -> tuple[str, ...]:
    """Extensions the installed importer plugins read (lower case, with the dot)."""
    from anymole_usd import registry

    out: list[str] = []
    for info in registry.plugins("importers"):
        try:
            out.extend(e.lower() for e in getattr(registry.load("importers", info.name), "extensions", ()))
        except Exception:  # a broken importer is reported by `anymole-usd plugins`, not here
            continue
    return tuple(sorted(set(out)))


def find_inputs(paths: list[str]) -> tuple[list[str], list[str]]:
    """Files named by ``paths`` (folders searched recursively), and notes on what was skipped.

    A file named explicitly with an extension no reader knows is an error; in
    folders such files are skipped silently (licence files, READMEs).
    """
    known = USD_SUFFIXES + importer_suffixes()
    files: list[str] = []
    notes: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = []
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(os.path.join(root, n) for n in sorted(names)
                             if os.path.splitext(n)[1].lower() in known and not n.startswith("."))
            if not found:
                notes.append(f"{p}: no motion file found (known: {', '.join(known)})")
            files.extend(found)
        elif os.path.isfile(p):
            if os.path.splitext(p)[1].lower() not in known:
                raise InputError(f"not a motion file this tool reads (known: {', '.join(known)})", file=p)
            files.append(p)
        else:
            raise InputError("no such file or folder", file=p)
    unique = list(dict.fromkeys(os.path.abspath(f) for f in files))
    return unique, notes


def content_hash(paths: list[str]) -> str:
    """SHA-256 over the bytes of ``paths`` (a file and the layers it uses), in order."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def read_clips(path: str) -> tuple[list[SourceClip], list[str], list[str]]:
    """Every clip of one file, notes for the user, and the other local files it depends on."""
    if os.path.splitext(path)[1].lower() in USD_SUFFIXES:
        return _read_usd(path)
    clips, notes = _read_imported(path)
    return clips, notes, []


_IMPORTERS: dict[str, object] = {}


def _read_imported(path: str) -> tuple[list[SourceClip], list[str]]:
    from anymole_usd.plugins.io.axes import convert_scene
    from anymole_usd.plugins.io.base import ImportOptions
    from anymole_usd.plugins.io.convert import find_plugin

    # What convert.read_file does, with the importer looked up once per extension
    # (an entry-point scan per file costs more than reading a short BVH).
    ext = os.path.splitext(path)[1].lower()
    if ext not in _IMPORTERS:
        _IMPORTERS[ext] = find_plugin("importers", path)
    scene = convert_scene(_IMPORTERS[ext].read(path, ImportOptions(up_axis="Y")), "Y")
    notes = list(scene.notes)
    clips = []
    for label, motion in scene.animations.items():
        if motion.num_frames < MIN_FRAMES:
            notes.append(f"{label}: {motion.num_frames} samples, too short for a library clip: skipped")
            continue
        clips.append(SourceClip(label=label, skeleton=scene.skeleton, motion=_reindexed(motion, motion.fps),
                                up_axis="Y", meters_per_unit=float(scene.meters_per_unit),
                                start=float(motion.times[0] / motion.fps), has_mesh=bool(scene.meshes),
                                meshes=scene.meshes))
    return clips, notes


def _reindexed(motion: Motion, fps: float) -> Motion:
    m = motion.normalized()
    m.times = np.arange(m.num_frames, dtype=np.float64)
    m.fps = float(fps)
    return m


def _read_usd(path: str) -> tuple[list[SourceClip], list[str], list[str]]:
    from pxr import UsdGeom

    from anymole_usd.reading import authored_times, find_bindings, open_stage, read_motion, skel_space_up

    stage = open_stage(path)
    deps = _local_layers(stage, path)
    tcps = float(stage.GetTimeCodesPerSecond())
    mpu = float(UsdGeom.GetStageMetersPerUnit(stage))
    clips, notes = [], []
    for b in find_bindings(stage, path):
        if not b.animation_path:
            continue
        anim = stage.GetPrimAtPath(b.animation_path)
        times = authored_times(anim)
        up = skel_space_up(stage, b.skeleton_path)
        tags = animation_tags(anim)
        has_mesh = _has_skinned_mesh(stage, b)
        runs = dense_runs(times)
        if not runs:
            notes.append(f"{b.animation_path}: {len(times)} samples, no run of {MIN_FRAMES} evenly spaced "
                         f"samples: skipped")
            continue
        motion = read_motion(stage, b, times=times, file=path)
        for a, e, step in runs:
            label = b.animation_path if len(runs) == 1 else f"{b.animation_path}[{times[a]:g}:{times[e]:g}]"
            part = _reindexed(motion.select(np.arange(a, e + 1)), tcps / step)
            skeleton, part, up_out = to_y_up(b.skeleton, part, up)
            clips.append(SourceClip(label=label, skeleton=skeleton, motion=part, up_axis=up_out,
                                    meters_per_unit=mpu, start=float(times[a] / tcps), tags=tags,
                                    has_mesh=has_mesh, skeleton_prim=b.skeleton_path))
    if not clips and not notes:
        notes.append("no Skeleton with a bound SkelAnimation")
    return clips, notes, deps


def dense_runs(times: np.ndarray) -> list[tuple[int, int, float]]:
    """(first, last, step) of each run of at least MIN_FRAMES samples with one spacing (timecodes)."""
    t = np.asarray(times, dtype=np.float64)
    if len(t) < MIN_FRAMES:
        return []
    d = np.diff(t)
    change = np.abs(np.diff(d)) > TIME_TOLERANCE * np.maximum(1.0, d[:-1])
    bounds = np.concatenate([[0], np.flatnonzero(change) + 1, [len(d)]])  # runs of equal steps in d
    return [(int(a), int(b), float(np.mean(d[a:b]))) for a, b in zip(bounds[:-1], bounds[1:])
            if b - a + 1 >= MIN_FRAMES]


def to_y_up(skeleton: Skeleton, motion: Motion, up: str) -> tuple[Skeleton, Motion, str]:
    """A skeleton and motion in the library's axes: a Z-up rig turned Y-up as the importers turn it
    (roots rotated); other ups are kept (recorded per skeleton). Use it on a shot before
    :meth:`Library.features` (``up`` from ``reading.skel_space_up``)."""
    if up == "Y" or up not in ("Z",):
        return skeleton, motion, up
    from anymole_usd.plugins.io.axes import up_axis_rotation, transform_scene
    from anymole_usd.plugins.io.base import Scene

    scene = Scene(skeleton=skeleton, animations={"a": motion}, bound="a", up_axis="Z")
    out = transform_scene(scene, up_axis_rotation("Z", "Y"))
    return out.skeleton, out.animations["a"], "Y"


def animation_tags(prim) -> list[str]:
    """Tags from a SkelAnimation's customData: ``tags`` or ``anymole:tags``, a string list or 'a, b'."""
    data = prim.GetCustomData() or {}
    values = []
    for key in ("tags",):
        if key in data:
            values.append(data[key])
    nested = data.get("anymole")
    if isinstance(nested, dict) and "tags" in nested:
        values.append(nested["tags"])
    out: list[str] = []
    for v in values:
        items = v.split(",") if isinstance(v, str) else [str(x) for x in v]
        out.extend(s.strip() for s in items if s and s.strip())
    return list(dict.fromkeys(out))


def _has_skinned_mesh(stage, binding) -> bool:
    from pxr import Usd, UsdGeom, UsdSkel

    if not binding.skel_root_path:
        return False
    root = stage.GetPrimAtPath(binding.skel_root_path)
    for prim in Usd.PrimRange(root):
        if prim.IsA(UsdGeom.Mesh) and prim.HasAPI(UsdSkel.BindingAPI):
            return True
    return False


def _local_layers(stage, path: str) -> list[str]:
    """Other files on disk that the stage's composition reads (sublayers, references), for the hash."""
    root = os.path.abspath(path)
    out = []
    for layer in stage.GetUsedLayers():
        real = layer.realPath
        if real and os.path.isfile(real) and os.path.abspath(real) != root and not layer.anonymous:
            out.append(os.path.abspath(real))
    return sorted(set(out))
