"""``anymole-usd retarget``: read the source and the target, retarget, compose the result over the target.

The result is a new SkelAnimation (``<Skeleton>_retarget``) bound to the
target Skeleton, composed over TARGET with the layering, provenance and
journaled byte-identical undo every command shares (anymole_usd.writing):
the target's files are untouched except for the smallest edit (a sublayer
entry, or the binding when the root layer authors it); a usdz or read-only
target gets a wrapper root layer. ``--in-place`` writes the samples into the
layer holding the target's own animation instead. Samples cover the whole
source on the target's time codes, one per time code (or ``--fps``), from
the stage's start time code.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from anymole_usd.errors import InputError

from .retarget import load_source, retarget, select_binding


@dataclass
class RetargetOptions:
    source: str
    target: str
    map_file: str | None = None
    source_prim: str | None = None
    target_prim: str | None = None
    animation: str | None = None
    output: str | None = None
    in_place: bool = False
    force: bool = False
    fps: float | None = None


def default_output(target: str) -> str:
    from anymole_usd.layering import default_output as beside

    return beside(target, "retarget")


def output_times(stage, current, duration: float, fps: float | None) -> tuple[np.ndarray, float]:
    """(time codes, time codes per second): the source's duration from the stage's start (or the target
    animation's first sample, or 0), one sample per time code or ``fps`` per second."""
    tcps = float(stage.GetTimeCodesPerSecond())
    if stage.HasAuthoredMetadata("startTimeCode"):
        start = float(stage.GetStartTimeCode())
    elif current is not None and current.num_frames:
        start = float(current.times[0])
    else:
        start = 0.0
    rate = float(fps) if fps else tcps
    n = int(np.floor(duration * rate + 1e-6)) + 1
    return start + np.arange(n) * (tcps / rate), tcps


def _target_up(stage, skeleton_path: str) -> np.ndarray:
    from anymole_usd.metric import up_vector
    from anymole_usd.reading import skel_space_up

    return up_vector(skel_space_up(stage, skeleton_path))


def _read_target(stage, options: RetargetOptions):
    from anymole_usd.reading import find_bindings, read_motion

    binding = select_binding(find_bindings(stage, options.target), options.target_prim, options.target,
                             need_animation=False)
    current = None
    if binding.animation_path:
        from anymole_usd.reading import authored_times

        # an animation with no samples holds its default values: one static pose
        times = authored_times(stage.GetPrimAtPath(binding.animation_path))
        current = read_motion(stage, binding, times=times if len(times) else np.zeros(1), file=options.target)
    return binding, current


def _overrides(options: RetargetOptions, source_skel, target_skel):
    if not options.map_file:
        return None
    from .mapfile import load_map

    return load_map(options.map_file, source_skel, target_skel)


def show_map(options: RetargetOptions) -> dict:
    """The mapping with a confidence per chain; nothing is written."""
    from anymole_usd.reading import open_stage

    from .retarget import map_with_bodies
    from .topology import analyse

    clip = load_source(options.source, options.source_prim, options.animation)
    stage = open_stage(options.target)
    binding, current = _read_target(stage, options)
    src = analyse(clip.skeleton, clip.up, clip.motion)
    tgt = analyse(binding.skeleton, _target_up(stage, binding.skeleton_path), current)
    mapping = map_with_bodies(src, tgt, _overrides(options, clip.skeleton, binding.skeleton))
    return {"source": os.path.abspath(options.source), "source_prim": clip.prim,
            "target": os.path.abspath(options.target), "target_skeleton": binding.skeleton_path,
            **mapping.to_dict()}


def options_digest(options: RetargetOptions) -> str:
    """What changes the result, for ``batch --resume``: options and the source's and map's bytes."""
    import hashlib

    from anymole_usd import __version__
    from anymole_usd.atomic_files import digest

    fields = {k: v for k, v in asdict(options).items() if k not in ("output", "force")}
    for key in ("source", "map_file"):
        path = fields.get(key)
        if path:
            fields[key] = digest(path)["sha256"] if os.path.isfile(path) else f"missing:{path}"
    fields["tool"] = __version__
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def run_retarget(options: RetargetOptions, progress: Callable[[str, float], None] | None = None) -> dict:
    """Retarget and compose the result over the target; returns a report."""
    from anymole_usd import __version__
    from anymole_usd.schema import Provenance
    from anymole_usd.writing import ResultAnimation, WriteOptions, preflight, session, write_result

    from .quality import evaluate

    def say(message: str, fraction: float) -> None:
        if progress is not None:
            progress(message, fraction)

    say("reading the source", 0.0)
    clip = load_source(options.source, options.source_prim, options.animation)
    target = os.path.abspath(options.target)
    output = options.output or default_output(target)
    with session(target, "retarget", output) as (tx, stage):
        binding, current = _read_target(stage, options)
        if options.in_place and not binding.animation_path:
            raise InputError("--in-place needs an animation bound to the target skeleton (without it, "
                             "leave --in-place out: a new animation is composed over the target)",
                             file=options.target, prim=binding.skeleton_path)
        tx.record_inputs(stage)
        tx.options_digest = options_digest(options)
        write_options = WriteOptions(output, options.in_place, options.force)
        preflight(target, stage, [binding.animation_path] if options.in_place else [], write_options, tx)
        duration = float(clip.motion.seconds[-1] - clip.motion.seconds[0])
        times, tcps = output_times(stage, current, duration, options.fps)
        say("mapping joints", 0.05)
        result = retarget(clip.motion, clip.skeleton, binding.skeleton, times=times, fps=tcps,
                          source_up=clip.up, target_up=_target_up(stage, binding.skeleton_path),
                          target_motion=current, overrides=_overrides(options, clip.skeleton, binding.skeleton),
                          progress=lambda f: say("solving joint rotations (Warp FK + joint loss)", 0.1 + 0.85 * f))
        figures = evaluate(result)
        details = {
            "source": os.path.abspath(options.source), "source_prim": clip.prim,
            "mapping": {c.name: round(float(c.confidence), 3) for c in result.mapping.chains},
            "root_scale": result.adapted.root_scale, "chain_scales": result.adapted.chain_scales,
            "solve": result.stats.to_dict(), "holds": result.holds.to_dict(clip.skeleton.joints,
                                                                             binding.skeleton.joints),
        }
        provenance = Provenance(
            prior="retarget", parameters={"fps": options.fps, "map": options.map_file}, tool_version=__version__,
            source_layer=os.path.basename(options.source), source_prim=clip.prim,
            generated_times=[float(t) for t in times], tool="retarget", details=details)
        say("writing the result", 0.97)
        anim = ResultAnimation(binding, binding.animation_path if options.in_place else None, result.motion,
                               provenance, name_suffix="_retarget", generated_times=times)
        from anymole_usd.transaction import checkpoint

        checkpoint("planned")
        report = write_result(target, stage, [anim], write_options, tx)
        report["notes"] = list(tx.notes) + result.notes
    report.update(source=os.path.abspath(options.source), source_prim=clip.prim, skeleton=binding.skeleton_path,
                  frames=int(len(times)), start=float(times[0]), end=float(times[-1]), time_codes_per_second=tcps,
                  mapping=result.mapping.to_dict(), quality=figures, solve=result.stats.to_dict(),
                  holds=details["holds"], root_scale=result.adapted.root_scale)
    say("done", 1.0)
    return report
