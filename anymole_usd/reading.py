"""USD -> Skeleton/Motion: find skeletons and their bound SkelAnimations and read them.

UsdSkel's own queries are the ground truth: ``UsdSkel.Cache`` resolves
``skel:animationSource`` inherited from an ancestor SkelRoot, and the
AnimMapper reconciles an animation whose joint order differs from the
skeleton's or that covers only some joints (rest transforms fill the rest).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from . import schema
from .errors import InputError
from .kinematics import decompose_matrices
from .motion import Motion
from .skeleton import Skeleton
from .timeline import TIME_TOLERANCE


@dataclass
class SkelBinding:
    """One Skeleton prim and the SkelAnimation it is bound to (if any)."""

    skeleton_path: str
    animation_path: str | None
    skeleton: Skeleton
    fps: float
    # skeleton joint index for every animation joint (-1 where the skeleton lacks it)
    anim_to_skel: np.ndarray | None = None
    skel_root_path: str | None = None


def open_stage(path: str | os.PathLike, check_sublayers: bool = True):
    """Open a USD stage, turning every failure into a one-line InputError.

    A parse error keeps USD's own line and column (``line 24, column 63: parse
    error ...``). With ``check_sublayers``, a sublayer that exists but is not a
    readable USD layer (``@/etc/passwd@``, a truncated file) is an error naming
    that layer, instead of USD's warning and a stage silently missing its
    contents; a sublayer that does not exist stays USD's warning.
    """
    schema.register()
    from pxr import Sdf, Tf, Usd

    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError("no such file", file=path)
    if not os.path.isfile(path):
        raise InputError("not a file", file=path)
    if Sdf.FileFormat.FindByExtension(os.path.splitext(path)[1].lstrip(".") or "x") is None:
        raise InputError("not a USD file (unknown extension)", file=path)
    with Tf.DiagnosticTrap() as trap:
        try:
            stage = Usd.Stage.Open(path, Usd.Stage.LoadAll)
        except Tf.ErrorException as exc:
            raise InputError(f"not a readable USD file ({_usd_reason(exc, path)})", file=path) from None
        bad = _unreadable_sublayers(trap) if check_sublayers else []
        if bad:
            trap.ClearWarnings()
            sub, reason = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise InputError(f"sublayer @{sub}@ is not a readable USD layer: {reason}{more}", file=path)
    if stage is None:
        raise InputError("not a readable USD file", file=path)
    return stage


_SUBLAYER_WARNING = re.compile(r"Could not load sublayer @(?P<sub>.*?)@ of layer @(?P<layer>.*?)@ -- (?P<why>.*?)"
                               r"(?:; skipping\.|$)", re.S)


def _unreadable_sublayers(trap) -> list[tuple[str, str]]:
    """(sublayer, reason) for each sublayer USD skipped because it could not read it (not: because it is missing)."""
    out = []
    for warning in trap.GetWarnings():
        m = _SUBLAYER_WARNING.search(str(getattr(warning, "commentary", "")))
        if m:
            out.append((m.group("sub"), _tidy(m.group("why"))))
    return out


def _usd_reason(exc, path: str) -> str:
    """The useful part of a Tf error on opening ``path``: the parser's message with its line and column."""
    messages = [str(getattr(e, "commentary", "") or "").strip() for e in getattr(exc, "args", ())]
    messages = [m for m in messages if m] or [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # "Failed to open layer @x@" only repeats what we already say; prefer the parser's own message.
    useful = [m for m in messages if not m.startswith("Failed to open layer")] or messages or ["cannot be read"]
    text = useful[0]
    abspath = os.path.abspath(path)
    for prefix in (abspath, path):
        m = re.match(re.escape(prefix) + r":(\d+):(\d+):\s*(.*)", text, re.S)
        if m:
            text = f"line {m.group(1)}, column {m.group(2)}: {m.group(3)}"
            break
    return _tidy(text)[:300]


def _tidy(text: str) -> str:
    """One line, without USD's internal C++ namespace (pxrInternal_v0_26_11__pxrReserved__::)."""
    text = re.sub(r"pxrInternal_v\d+_\d+(?:_\d+)?__pxrReserved__::", "", text)
    return " ".join(text.split())


def _skel_cache(stage):
    from pxr import Usd, UsdSkel

    cache = UsdSkel.Cache()
    for prim in stage.Traverse(Usd.TraverseInstanceProxies()):
        if prim.IsA(UsdSkel.Root):
            cache.Populate(UsdSkel.Root(prim), Usd.TraverseInstanceProxies())
    return cache


def _bound_animation_path(prim) -> str | None:
    """``skel:animationSource`` on the skeleton or inherited from an ancestor."""
    from pxr import UsdSkel

    p = prim
    while p and p.IsValid() and not p.IsPseudoRoot():
        rel = UsdSkel.BindingAPI(p).GetAnimationSourceRel()
        if rel and rel.HasAuthoredTargets():
            targets = rel.GetForwardedTargets()
            return str(targets[0]) if targets else None
        p = p.GetParent()
    return None


def read_skeleton(skel_query, name: str = "") -> Skeleton:
    from pxr import UsdSkel

    skel = UsdSkel.Skeleton(skel_query.GetPrim())
    topology = skel_query.GetTopology()
    joints = [str(j) for j in skel_query.GetJointOrder()]
    parents = np.asarray(topology.GetParentIndices(), dtype=np.int64)
    rest = skel.GetRestTransformsAttr().Get()
    bind = skel.GetBindTransformsAttr().Get()
    rest_np = np.asarray(rest, dtype=np.float64) if rest is not None and len(rest) == len(joints) else None
    bind_np = np.asarray(bind, dtype=np.float64) if bind is not None and len(bind) == len(joints) else None
    if rest_np is None and bind_np is not None:
        # UsdSkel derives a rest pose from bind transforms when restTransforms are absent.
        inv_parent = np.linalg.inv(np.where(parents[:, None, None] >= 0, bind_np[parents], np.eye(4)))
        rest_np = bind_np @ inv_parent
    if rest_np is None:
        rest_np = np.tile(np.eye(4), (len(joints), 1, 1))
    names = skel.GetJointNamesAttr().Get()
    return Skeleton(
        joints=joints,
        parents=parents,
        rest_transforms=rest_np,
        bind_transforms=bind_np,
        name=name or str(skel_query.GetPrim().GetPath()),
        joint_names=[str(n) for n in names] if names else None,
    )


def find_bindings(stage, file: str | None = None) -> list[SkelBinding]:
    """Every Skeleton in the stage with the animation bound to it (None if unbound)."""
    from pxr import Usd, UsdSkel

    cache = _skel_cache(stage)
    fps = stage.GetTimeCodesPerSecond()
    out = []
    for prim in stage.Traverse(Usd.TraverseInstanceProxies()):
        if not prim.IsA(UsdSkel.Skeleton):
            continue
        skel = UsdSkel.Skeleton(prim)
        query = cache.GetSkelQuery(skel)
        if not query:
            raise InputError("skeleton topology is invalid", file=file, prim=str(prim.GetPath()))
        _check_unique_joints(skel.GetJointsAttr().Get(), "Skeleton", file, str(prim.GetPath()))
        skeleton = read_skeleton(query)
        anim_path = _bound_animation_path(prim)
        anim_to_skel = None
        anim_query = query.GetAnimQuery()
        if anim_path is not None:
            anim_prim = stage.GetPrimAtPath(anim_path)
            if not anim_prim or not anim_prim.IsA(UsdSkel.Animation):
                raise InputError(
                    f"skel:animationSource targets {anim_path}, which is not a SkelAnimation",
                    file=file,
                    prim=str(prim.GetPath()),
                )
            anim_joints = UsdSkel.Animation(anim_prim).GetJointsAttr().Get() or []
            _check_unique_joints(anim_joints, "SkelAnimation", file, anim_path)
            anim_to_skel = _anim_to_skel_map(query, anim_joints, skeleton)
        elif anim_query:
            anim_path = str(anim_query.GetPrim().GetPath())
        root = _skel_root_of(prim)
        out.append(SkelBinding(str(prim.GetPath()), anim_path, skeleton, fps, anim_to_skel, root))
    return out


def _skel_root_of(prim) -> str | None:
    from pxr import UsdSkel

    p = prim.GetParent()
    while p and not p.IsPseudoRoot():
        if p.IsA(UsdSkel.Root):
            return str(p.GetPath())
        p = p.GetParent()
    return None


def _check_unique_joints(joints, what: str, file: str | None, prim: str) -> None:
    """A joint path listed twice makes joint lookups ambiguous (UsdSkel keeps one silently): bad input."""
    names = [str(j) for j in (joints or [])]
    if len(set(names)) == len(names):
        return
    first: dict[str, int] = {}
    for i, name in enumerate(names):  # error path only: a loop is fine
        if name in first:
            raise InputError(f"{what} lists joint {name!r} twice (joints[{first[name]}] and joints[{i}])",
                             file=file, prim=prim)
        first[name] = i


def _anim_to_skel_map(skel_query, anim_joints, skeleton: Skeleton) -> np.ndarray:
    """Use UsdSkel's AnimMapper to map animation joint order onto the skeleton."""
    from pxr import UsdSkel, Vt

    mapper = UsdSkel.AnimMapper(anim_joints, skel_query.GetJointOrder())
    # Remap the skeleton-index ramp through the mapper: it tells which anim
    # index lands on which skeleton joint, once, so data moves by fancy indexing.
    n_anim = len(anim_joints)
    src = Vt.IntArray(list(range(n_anim)))
    dst = Vt.IntArray([-1] * skeleton.num_joints)
    remapped = np.asarray(mapper.Remap(src, dst, 1, -1), dtype=np.int64)  # anim index per skel joint
    skel_for_anim = np.full(n_anim, -1, dtype=np.int64)
    valid = remapped >= 0
    skel_for_anim[remapped[valid]] = np.flatnonzero(valid)
    return skel_for_anim


def authored_times(anim_prim) -> np.ndarray:
    """Union (tolerant) of the time samples of translations, rotations and scales."""
    from pxr import UsdSkel

    anim = UsdSkel.Animation(anim_prim)
    ts = []
    for attr in (anim.GetTranslationsAttr(), anim.GetRotationsAttr(), anim.GetScalesAttr()):
        if attr and attr.HasAuthoredValue():
            ts.extend(attr.GetTimeSamples())
    t = np.unique(np.asarray(ts, dtype=np.float64))
    if len(t) > 1:
        keep = np.concatenate([[True], np.diff(t) > TIME_TOLERANCE])
        t = t[keep]
    return t


def read_motion(stage, binding: SkelBinding, times: np.ndarray | None = None, file: str | None = None,
                anim_path: str | None = None) -> Motion:
    """Read the bound animation at its authored times (or ``times``) in skeleton joint order."""
    from pxr import UsdSkel

    path = anim_path or binding.animation_path
    prim = stage.GetPrimAtPath(path) if path else None
    if not prim or not prim.IsA(UsdSkel.Animation):
        raise InputError(f"{path} is not a SkelAnimation", file=file, prim=path)
    anim = UsdSkel.Animation(prim)
    anim_joints = anim.GetJointsAttr().Get() or []
    n_anim = len(anim_joints)
    skeleton = binding.skeleton
    if binding.anim_to_skel is not None and path == binding.animation_path:
        a2s = binding.anim_to_skel
    else:
        a2s = _anim_to_skel_map_from_tokens(anim_joints, skeleton)
    if times is None:
        times = authored_times(prim)
    times = np.asarray(times, dtype=np.float64)
    if len(times) == 0:
        raise InputError("SkelAnimation has no time samples", file=file, prim=path)

    rest_r, rest_t, rest_s = decompose_matrices(skeleton.rest_transforms)
    n_f, n_j = len(times), skeleton.num_joints
    rotations = np.broadcast_to(rest_r, (n_f, n_j, 4)).copy()
    translations = np.broadcast_to(rest_t, (n_f, n_j, 3)).copy()
    scales = np.broadcast_to(rest_s, (n_f, n_j, 3)).copy()
    mapped = a2s >= 0
    src_idx, dst_idx = np.flatnonzero(mapped), a2s[mapped]
    for attr, out, width in (
        (anim.GetTranslationsAttr(), translations, 3),
        (anim.GetRotationsAttr(), rotations, 4),
        (anim.GetScalesAttr(), scales, 3),
    ):
        if not attr or not attr.HasAuthoredValue():
            continue
        for i, t in enumerate(times):
            value = attr.Get(t)
            if value is None:
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != (n_anim, width):
                raise InputError(
                    f"{attr.GetName()} has {arr.shape[0] if arr.ndim else 0} elements but the animation "
                    f"lists {n_anim} joints",
                    file=file, prim=path, time=float(t),
                )
            out[i, dst_idx] = arr[src_idx]
    motion = Motion(times=times, rotations=rotations, translations=translations, scales=scales,
                    fps=binding.fps, joints=list(skeleton.joints))
    try:
        motion.validate(where="SkelAnimation")
    except ValueError as exc:
        bad_t = _first_bad_time(motion)
        authored = authored_times(prim)
        if bad_t is not None and len(authored) and np.min(np.abs(authored - bad_t)) > TIME_TOLERANCE:
            # Read between samples (a uniform export): the culprit is an authored sample; name that one.
            read_motion(stage, binding, times=authored, file=file, anim_path=path)
            before, after = authored[authored < bad_t], authored[authored > bad_t]
            span = (f" (interpolated between the authored samples {before[-1]:g} and {after[0]:g})"
                    if len(before) and len(after) else "")
            raise InputError(str(exc).split(": ", 1)[-1] + span, file=file, prim=path, time=bad_t) from None
        raise InputError(str(exc).split(": ", 1)[-1], file=file, prim=path, time=bad_t) from None
    return motion


def _first_bad_time(motion: Motion) -> float | None:
    norms = np.linalg.norm(motion.rotations, axis=-1)
    bad = (~np.isfinite(motion.rotations).all(-1) | (norms < 1e-8)).any(-1)
    bad |= ~np.isfinite(motion.translations).all((-1, -2))
    idx = np.flatnonzero(bad)
    return float(motion.times[idx[0]]) if len(idx) else None


def _anim_to_skel_map_from_tokens(anim_joints, skeleton: Skeleton) -> np.ndarray:
    lookup = {j: i for i, j in enumerate(skeleton.joints)}
    return np.asarray([lookup.get(str(j), -1) for j in anim_joints], dtype=np.int64)


def skel_space_up(stage, skeleton_path: str) -> str:
    """The stage's up axis expressed in the skeleton's space, as the nearest signed axis ("Y", "-Z")."""
    from pxr import Usd, UsdGeom

    world_up = np.eye(3)["XYZ".index(str(UsdGeom.GetStageUpAxis(stage)))]
    m = np.asarray(UsdGeom.Xformable(stage.GetPrimAtPath(skeleton_path))
                   .ComputeLocalToWorldTransform(Usd.TimeCode.Default()), dtype=np.float64)
    # Row vectors: world = skel @ M, so a world direction maps back through M^-1.
    v = world_up @ np.linalg.inv(m[:3, :3])
    axis = int(np.argmax(np.abs(v)))
    return ("-" if v[axis] < 0 else "") + "XYZ"[axis]
