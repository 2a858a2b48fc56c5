"""File <-> UsdSkel conversion: pick the plugin by extension, convert axes/units/rate, write.

Plugins are found through the registry (entry points), exactly as a third
party's importer or exporter would be.
"""
from __future__ import annotations

import contextlib
import math
import os
import tempfile
from dataclasses import replace

from anymole_usd import registry
from anymole_usd.authoring import USD_EXTENSIONS, write_skel_stage
from anymole_usd.errors import InputError
from anymole_usd.timeline import MAX_FPS

from .axes import convert_scene, up_axis_rotation, transform_scene
from .base import Exporter, Importer, ImportOptions, Scene
from .resample import resample
from .units import size_warning


def find_plugin(kind: str, path: str):
    """An instance of the importer/exporter whose ``extensions`` match ``path``."""
    ext = os.path.splitext(path)[1].lower()
    known = []
    for info in registry.plugins(kind):
        cls = registry.load(kind, info.name)
        exts = tuple(e.lower() for e in getattr(cls, "extensions", ()))
        known.extend(exts)
        if ext in exts:
            return cls()
    what = "importer" if kind == "importers" else "exporter"
    raise InputError(f"no {what} for {ext or 'files without an extension'} "
                     f"(known: {', '.join(sorted(set(known))) or 'none'})", file=path)


def read_file(src: str | os.PathLike, options: ImportOptions | None = None) -> tuple[Scene, Importer]:
    """Read ``src`` with its importer and convert to the requested axes and rate."""
    options = options or ImportOptions()
    src = os.fspath(src)
    if not os.path.isfile(src):
        raise InputError("no such file", file=src)
    if options.up_axis.upper() not in ("Y", "Z"):
        raise InputError(f"--up-axis must be Y or Z, got {options.up_axis!r}", file=src)
    _check_range("--scale", options.scale, src, *SCALE_RANGE)
    _check_range("--fps", options.fps, src, *FPS_RANGE)
    _check_range("--meters-per-unit", options.meters_per_unit, src, *METERS_PER_UNIT_RANGE)
    if options.start is not None and not (math.isfinite(options.start) and abs(options.start) <= MAX_START):
        # far out, consecutive time codes round to the same double: 1e300 + 1 == 1e300 folded a clip into one sample
        raise InputError(f"--start must be a finite time code within +-{MAX_START:g}, got {options.start:g}", file=src)
    importer: Importer = find_plugin("importers", src)
    scene = importer.read(src, options)
    scene = convert_scene(scene, options.up_axis.upper())
    if options.meters_per_unit is not None:
        scene = replace(scene, meters_per_unit=float(options.meters_per_unit))
    if options.fps is not None:
        scene = replace(scene, animations={k: resample(m, options.fps) for k, m in scene.animations.items()})
    if options.start is not None:
        scene = replace(scene, animations={k: _starting_at(m, options.start) for k, m in scene.animations.items()})
    return scene, importer


# Accepted ranges (low, high): wide enough for any real file, narrow enough that arithmetic on them
# (frame grids, lengths) stays finite and the result is openable.
FPS_RANGE = (0.0, MAX_FPS)
MAX_START = 1e9  # |--start|: time codes stay exact (to 1e-6 of a frame) far beyond any real timeline
SCALE_RANGE = (0.0, 1e6)
METERS_PER_UNIT_RANGE = (0.0, 1e6)


def _check_range(option: str, value: float | None, file: str, low: float, high: float) -> None:
    """``value`` must be None or a finite number in (low, high]: one-line InputError otherwise."""
    if value is None:
        return
    if not (math.isfinite(value) and low < value <= high):
        raise InputError(f"{option} must be a number greater than {low:g} and at most {high:g}, got {value:g}",
                         file=file)


def _starting_at(motion, start: float):
    """``motion`` with its times shifted so the first sample is at time code ``start``."""
    out = motion.copy()
    if out.num_frames:
        out.times = out.times - out.times[0] + float(start)
    return out


def check_output(dst: str) -> None:
    """Fail early, with one line, when ``dst`` cannot be written: a missing or read-only folder.

    Probes by creating (and removing) a temporary file there, the only test that is
    right for root, ACLs and read-only mounts alike; the real write still goes
    through a temporary file and a rename.
    """
    folder = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(folder):
        raise InputError("output folder does not exist", file=dst)
    if os.path.isdir(dst):
        raise InputError("output is a folder, not a file", file=dst)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".anymole-probe.", delete=True):
            pass
    except OSError as exc:
        raise InputError(f"cannot write to the output folder: {exc.strerror}", file=dst) from None


def _is_import(path: str) -> bool:
    """Whether ``path`` is a stage an earlier import wrote (its layer metadata names the importer)."""
    from pxr import Sdf, Tf

    try:
        layer = Sdf.Layer.OpenAsAnonymous(path)
    except Tf.ErrorException:
        return False
    return layer is not None and "anymole:importer" in (layer.customLayerData or {})


@contextlib.contextmanager
def _writing(dst: str):
    """An OS error while writing ``dst`` (folder made read-only meanwhile, disk full) is bad input: exit 2."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", file=dst) from None


def import_to_usd(src: str | os.PathLike, dst: str | os.PathLike, options: ImportOptions | None = None,
                  force: bool = False) -> dict:
    """Import ``src`` (BVH, glTF, ...) and write a new UsdSkel stage at ``dst``; returns a summary.

    An existing ``dst`` is replaced only when an earlier import wrote it, or with ``force``: a shot
    the user worked on is never silently overwritten by a re-import.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    if os.path.splitext(dst)[1].lower() not in USD_EXTENSIONS:
        raise InputError(f"output must end in {', '.join(USD_EXTENSIONS)}", file=dst)
    check_output(dst)
    if os.path.isfile(dst) and not force and not _is_import(dst):
        raise InputError("exists and is not an earlier import: not replaced (choose another -o, or --force)",
                         file=dst)
    scene, importer = read_file(src, options)
    bound = scene.motion
    fps = bound.fps if bound is not None else next(iter(scene.animations.values())).fps
    warning = size_warning(scene, meters_per_unit_given=(options or ImportOptions()).meters_per_unit is not None)
    with _writing(dst):
        paths = write_skel_stage(
            dst, scene.skeleton, scene.animations, scene.bound, fps=fps, up_axis=scene.up_axis,
            meters_per_unit=scene.meters_per_unit, meshes=scene.meshes,
            skeleton_custom_data=scene.skeleton_custom_data,
            layer_custom_data={"anymole:source": os.path.basename(src), "anymole:importer": importer.name},
            comment=f"Imported from {os.path.basename(src)} by anymole-usd ({importer.name} importer)",
        )
    return {
        "output": dst,
        "source": src,
        "importer": importer.name,
        "skeleton": paths["skeleton"],
        "joints": scene.skeleton.num_joints,
        "fps": fps,
        "up_axis": scene.up_axis,
        "meters_per_unit": scene.meters_per_unit,
        "bound": paths["animation"],
        "animations": [
            {"name": label, "prim": paths["animations"][label], "frames": m.num_frames,
             "start": float(m.times[0]) if m.num_frames else None,
             "end": float(m.times[-1]) if m.num_frames else None}
            for label, m in scene.animations.items()
        ],
        "meshes": paths["meshes"],
        "notes": scene.notes,
        "warnings": [warning] if warning else [],
    }


def export_from_usd(src: str | os.PathLike, dst: str | os.PathLike, prim: str | None = None) -> dict:
    """Write the composed animation of one skeleton in stage ``src`` to ``dst`` (format by extension)."""
    from .usd_scene import read_usd_scene

    src, dst = os.fspath(src), os.fspath(dst)
    exporter: Exporter = find_plugin("exporters", dst)
    check_output(dst)
    scene = read_usd_scene(src, prim, uniform=getattr(exporter, "uniform_frames", False))
    # Both BVH and glTF are Y-up: rotate a Z-up stage's roots back.
    y_up = replace(transform_scene(scene, up_axis_rotation(scene.up_axis, "Y")), up_axis="Y")
    with _writing(dst):
        info = exporter.write(dst, y_up)
    motion = y_up.motion
    return {"output": dst, "source": src, "exporter": exporter.name, "joints": y_up.skeleton.num_joints,
            "frames": motion.num_frames, "start": float(motion.times[0]), "end": float(motion.times[-1]),
            "fps": motion.fps, **info, "notes": scene.notes + info.get("notes", [])}
