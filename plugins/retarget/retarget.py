"""Retargeting, end to end: source clip -> mapping -> adapted targets -> solved target motion.

The public API, for the CLI and for other tools (``inbetween --library``
reading clips of other skeletons):

- :func:`map_skeletons` (source, target skeletons -> :class:`Mapping`);
- :func:`retarget_motion` (a source Motion -> a Motion on the target
  skeleton, on the target's time codes);
- :func:`load_source` (any importable file -> skeleton, motion, up axis).

Nothing here writes USD: ``run_retarget`` (runner.py) composes the result.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from anymole_usd import kinematics
from anymole_usd import rotations as rot
from anymole_usd.errors import InputError
from anymole_usd.metric import up_vector
from anymole_usd.motion import Motion
from anymole_usd.skeleton import Skeleton

from . import holds as holds_mod
from .adapt import Adapted, adapt
from .leaves import leaves, limit_leaf_turns
from .mapping import Mapping, map_bodies
from .reach import reach
from .solve import SolveSettings, SolveStats, solve
from .topology import Body, analyse

USD_EXTENSIONS = (".usd", ".usda", ".usdc", ".usdz")


@dataclass
class SourceClip:
    """A motion to retarget, in its own skeleton space."""

    skeleton: Skeleton
    motion: Motion  # seconds = times / fps
    up: np.ndarray  # skel-space up vector
    meters_per_unit: float
    file: str
    prim: str  # the SkelAnimation prim or the animation's name


@dataclass
class RetargetResult:
    motion: Motion
    mapping: Mapping
    adapted: Adapted
    holds: holds_mod.Holds
    stats: SolveStats
    source_body: Body
    target_body: Body
    source: Motion  # the source sampled on the output times (times = output times)
    notes: list[str] = field(default_factory=list)


def _up(up) -> np.ndarray:
    return up_vector(up) if isinstance(up, str) else np.asarray(up, dtype=np.float64)


def load_source(path: str, prim: str | None = None, animation: str | None = None) -> SourceClip:
    """Skeleton and motion of any importable file: USD (bound SkelAnimation), BVH, glTF/GLB."""
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() in USD_EXTENSIONS:
        return _load_usd_source(path, prim, animation)
    from anymole_usd.plugins.io.base import ImportOptions
    from anymole_usd.plugins.io.convert import read_file

    if prim is not None:
        raise InputError("--source-prim applies to USD sources (BVH and glTF hold one skeleton)", file=path)
    if animation is not None and os.path.splitext(path)[1].lower() == ".bvh":
        raise InputError("--animation applies to glTF/GLB and USD sources (a BVH file holds one clip)", file=path)
    scene, _ = read_file(path, ImportOptions(animation=animation))
    motion = scene.motion
    if motion is None or motion.num_frames == 0:
        raise InputError("has no animation to retarget", file=path)
    return SourceClip(scene.skeleton, motion, up_vector(scene.up_axis), scene.meters_per_unit, path,
                      scene.bound or "")


def _load_usd_source(path: str, prim: str | None, animation: str | None) -> SourceClip:
    from pxr import UsdGeom, UsdSkel

    from anymole_usd.reading import find_bindings, open_stage, read_motion, skel_space_up

    stage = open_stage(path)
    binding = select_binding(find_bindings(stage, path), prim, path, need_animation=animation is None)
    anim_path = binding.animation_path
    if animation is not None:
        hits = [str(p.GetPath()) for p in stage.Traverse() if p.IsA(UsdSkel.Animation) and p.GetName() == animation]
        if not hits:
            raise InputError(f"no SkelAnimation named {animation!r}", file=path)
        anim_path = hits[0]
    motion = read_motion(stage, binding, file=path, anim_path=anim_path)
    return SourceClip(binding.skeleton, motion, up_vector(skel_space_up(stage, binding.skeleton_path)),
                      float(UsdGeom.GetStageMetersPerUnit(stage)), path, anim_path or "")


def select_binding(bindings: list, prim: str | None, file: str, need_animation: bool):
    """The Skeleton at or under ``prim`` (or bound to it); default: the animated one with most joints."""
    if not bindings:
        raise InputError("stage has no UsdSkel Skeleton", file=file)
    pool = bindings
    if prim is not None:
        prim = prim.rstrip("/") or "/"
        pool = [b for b in bindings if prim in (b.skeleton_path, b.animation_path, b.skel_root_path)
                or b.skeleton_path.startswith(prim + "/")]
        if not pool:
            known = ", ".join(b.skeleton_path for b in bindings)
            raise InputError(f"no Skeleton at or under {prim} (skeletons: {known})", file=file)
    if need_animation:
        animated = [b for b in pool if b.animation_path]
        if not animated:
            raise InputError("no Skeleton here has a bound SkelAnimation to retarget", file=file,
                             prim=pool[0].skeleton_path)
        pool = animated
    return max(pool, key=lambda b: b.skeleton.num_joints)


def sample(motion: Motion, seconds: np.ndarray) -> Motion:
    """``motion`` at ``seconds`` (slerp / linear between samples, held beyond the ends); times = seconds."""
    from anymole_usd.plugins.io.resample import interpolation_index

    src = motion.seconds
    i, w = interpolation_index(src, np.asarray(seconds, dtype=np.float64))
    j = np.minimum(i + 1, motion.num_frames - 1)
    q = rot.make_continuous(rot.normalize(motion.rotations), axis=0)
    wv = w[:, None, None]
    return Motion(times=np.asarray(seconds, dtype=np.float64),
                  rotations=rot.slerp(q[i], q[j], np.broadcast_to(w[:, None], q[i].shape[:-1])),
                  translations=(1 - wv) * motion.translations[i] + wv * motion.translations[j],
                  scales=(1 - wv) * motion.scales[i] + wv * motion.scales[j], fps=1.0, joints=list(motion.joints))


def rest_motion(skeleton: Skeleton, times: np.ndarray, fps: float) -> Motion:
    """The rest pose at every time."""
    r, t, s = kinematics.decompose_matrices(skeleton.rest_transforms)
    n = len(times)
    return Motion(times=np.asarray(times, dtype=np.float64), rotations=np.broadcast_to(r, (n,) + r.shape).copy(),
                  translations=np.broadcast_to(t, (n,) + t.shape).copy(),
                  scales=np.broadcast_to(s, (n,) + s.shape).copy(), fps=fps, joints=list(skeleton.joints))


def map_skeletons(source: Skeleton, target: Skeleton, *, source_motion: Motion | None = None,
                  target_motion: Motion | None = None, source_up="Y", target_up="Y",
                  overrides: dict[int, int | None] | None = None) -> Mapping:
    """Joint correspondence source -> target (names, then topology and the reference poses' geometry).

    The motions, when given, choose each side's reference pose (needed when a
    rest pose is not a standing pose, as in many BVH files). ``overrides``:
    source index -> target index, or None to drop a source joint (``--map``).
    """
    return map_with_bodies(analyse(source, _up(source_up), source_motion),
                           analyse(target, _up(target_up), target_motion), overrides)


def map_with_bodies(src: Body, tgt: Body, overrides: dict[int, int | None] | None = None) -> Mapping:
    overrides = dict(overrides or {})
    fixed = {s: t for s, t in overrides.items() if t is not None}
    mapping = map_bodies(src, tgt, fixed)
    dropped = [s for s, t in overrides.items() if t is None]
    if dropped:
        for s in dropped:
            mapping.pairs.pop(s, None)
        for chain in mapping.chains:
            chain.pairs = [p for p in chain.pairs if p[0] not in dropped]
        mapping.chains = [c for c in mapping.chains if c.pairs]
        mapping.notes.append(f"left out by the map file: {', '.join(src.skeleton.joints[s] for s in dropped)}")
    return mapping


def retarget_motion(motion: Motion, source_skel: Skeleton, target_skel: Skeleton, mapping: Mapping | None = None,
                    *, times: np.ndarray | None = None, fps: float | None = None, source_up="Y", target_up="Y",
                    target_motion: Motion | None = None, settings: SolveSettings | None = None,
                    hold_contacts: bool = True, progress=None) -> Motion:
    """The source ``motion`` played by ``target_skel``: a Motion in target joint order.

    ``times``: output time codes (default: the source's own), at ``fps`` time
    codes per second (default: the source's); the first output time plays the
    source's first sample. ``target_motion``: the target's current animation
    (on any times): its pose at the first output time is kept on joints
    without a counterpart; the rest pose otherwise.
    """
    return retarget(motion, source_skel, target_skel, mapping, times=times, fps=fps, source_up=source_up,
                    target_up=target_up, target_motion=target_motion, settings=settings,
                    hold_contacts=hold_contacts, progress=progress).motion


def _hub_on_path(body: Body, adapted: Adapted, q: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Translations with the hub exactly on its target's horizontal path: the solver leaves it
    millimetres off, differently on every frame, which an in-place walk's root path (0.01 leg
    lengths in all) more than doubles. The contacts are pinned after this."""
    hub = body.hub
    if adapted.weights[:, hub].max() <= 0:
        return t
    parents = body.skeleton.parents
    miss = adapted.targets[:, hub] - kinematics.global_positions(parents, q, t, adapted.scales)[:, hub]
    out = t.copy()
    top = int(np.flatnonzero(parents < 0)[0])
    out[:, top] += miss - (miss @ body.up)[:, None] * body.up
    return out


def retarget(motion: Motion, source_skel: Skeleton, target_skel: Skeleton, mapping: Mapping | None = None, *,
             times=None, fps=None, source_up="Y", target_up="Y", target_motion: Motion | None = None,
             settings: SolveSettings | None = None, hold_contacts: bool = True, progress=None,
             overrides: dict | None = None, bodies: tuple[Body, Body] | None = None) -> RetargetResult:
    """Like :func:`retarget_motion`, returning everything the report needs."""
    fps = float(fps or motion.fps)
    if times is None:
        times = motion.seconds * fps
    times = np.asarray(times, dtype=np.float64)
    src, tgt = bodies or (analyse(source_skel, _up(source_up), motion),
                          analyse(target_skel, _up(target_up), target_motion))
    if mapping is None:
        mapping = map_with_bodies(src, tgt, overrides)
    if not mapping.pairs:
        raise InputError("no joint of the source corresponds to a joint of the target (use --map)")
    seconds = motion.seconds[0] + (times - times[0]) / fps
    sampled = sample(motion, seconds)
    if target_motion is not None and target_motion.num_frames:
        # joints without a counterpart hold the target's current pose (its animation at the first output time)
        current = sample(target_motion, np.full(len(times), times[0] / target_motion.fps))
        current.times, current.fps = times, fps
    else:
        current = rest_motion(target_skel, times, fps)
    adapted = adapt(src, tgt, mapping, sampled, current)
    pos_s = kinematics.global_positions(source_skel.parents, sampled.rotations, sampled.translations, sampled.scales)
    step_fps = fps if len(times) < 2 else fps / float(np.median(np.diff(times)))
    found = holds_mod.detect(src, pos_s, step_fps, mapping) if hold_contacts else holds_mod.Holds(
        np.zeros(0, int), np.zeros(0, int), np.zeros((len(times), 0), bool), [])
    holds_mod.apply(found, adapted, pos_s, mapping.target_of(), step_fps)

    def report(frac):
        if progress is not None:
            progress(frac)

    reach(target_skel, adapted, mapping, tgt.hub, tgt.size)
    # the bar never runs backwards: the first solve fills 60% of it, a second one (if needed) the rest
    q, t, stats = solve(target_skel.parents, adapted, tgt.size, settings, progress=lambda f: report(0.6 * f))
    solved = kinematics.global_positions(target_skel.parents, q, t, adapted.scales)
    if holds_mod.lower_targets(found, tgt, adapted, solved, step_fps).any():
        # held limbs could not reach their contacts: solved again with the body lowered
        q, t, again = solve(target_skel.parents, adapted, tgt.size, settings,
                            progress=lambda f: report(0.6 + 0.4 * f))
        stats = again.merged(stats)
    report(1.0)
    t = _hub_on_path(tgt, adapted, q, t)
    q = holds_mod.pin(found, tgt, q, t, adapted.scales)
    if len(times) > 2:
        qs = rot.make_continuous(rot.normalize(sampled.rotations[:, ~src.excluded]), axis=0)
        q = limit_leaf_turns(q, leaves(tgt), float(rot.angle_between(qs[1:], qs[:-1]).max()))
    result = Motion(times=times, rotations=rot.make_continuous(q, axis=0), translations=t, scales=adapted.scales,
                    fps=fps, joints=list(target_skel.joints))
    result.validate(where="retargeted motion")
    sampled.times, sampled.fps = times, fps
    return RetargetResult(result, mapping, adapted, found, stats, src, tgt, sampled, list(mapping.notes))
