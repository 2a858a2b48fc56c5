"""Library clips of other skeletons for ``inbetween --library``: the retargeting bridge.

A library clip on another humanoid rig (CMU names against a Bandai shot,
Mixamo against HumanIK...) is reached through the joint mapping of
``plugins/retarget`` (names, topology, rest geometry; a confidence per chain):

- a *bridge* per library skeleton: the mapping shot -> library skeleton and
  back, kept only when both bodies have the same limbs (legs, arms, a head)
  and every chain is mapped with confidence >= ``MIN_CONFIDENCE`` (a hand
  rig, a lower body or a quadruped is never bridged to a humanoid shot);
  bridges are cached per (library skeleton, shot skeleton) pair;
- *query poses*: the shot's samples at each gap's ends (each with its
  neighbour, for velocity) are retargeted onto the library skeleton with the
  retarget solver (few iterations; 4 frames per gap) and described with the
  library's own features, so the library's index is searched exactly as for
  a shot on that skeleton;
- *stretches*: the few short stretches retrieval keeps are retargeted back
  onto the shot's skeleton (full solve, contacts held), times = the source
  clip's frame numbers like same-skeleton stretches.

The graph prior then treats them like any library stretch: used only where its
plausibility test finds them clearly better (``reference_margin``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from anymole_usd.motion import Motion
from anymole_usd.skeleton import Skeleton

from . import features as feat

MIN_CONFIDENCE = 0.6  # lowest chain confidence of a usable mapping (retarget's per-chain confidence)
LIMBS = ("left leg", "right leg", "left arm", "right arm", "head")  # chains a humanoid bridge must map
QUERY_ITERATIONS = 40  # solver iterations for query poses (their features only need to be close)
REFERENCE_FRAMES = 300  # library frames analysed for a skeleton's reference pose

MAX_CACHED = 512
_BRIDGES: dict = {}  # (library path, skeleton key, file hash, shot joints, shot body) -> Bridge | reason


@dataclass
class Bridge:
    """How a shot's skeleton reaches one library skeleton."""

    key: str  # library skeleton key
    name: str
    skeleton: Skeleton  # the library skeleton (Y-up)
    reference: Motion  # a few of its frames: the pose unmapped joints keep when retargeting onto it
    to_library: object  # retarget Mapping, shot -> library
    to_shot: object  # retarget Mapping, library -> shot
    confidence: float  # lowest chain confidence of the two mappings
    size: float  # character size of the library's clips on this skeleton (file units)
    bodies: tuple  # retarget Bodies (shot, library): analysed once per pair


def bridges(lib, shot_skel: Skeleton, shot: Motion, skip: str | None = None) -> tuple[list[Bridge], list[str]]:
    """Usable bridges from a shot (Y-up skeleton and motion) to every other library skeleton, and why the
    others were left out (one line each)."""
    from anymole_usd.plugins.retarget.topology import analyse

    up = np.array([0.0, 1.0, 0.0])
    shot_body = None
    out, notes = [], []
    for sk in lib.skeletons():
        if sk.key == skip or sk.up_axis != "Y" or not sk.arrays:
            continue
        clips = sorted(lib.clips(sk.key), key=lambda c: c.frames)
        if not clips:
            continue
        fhash = lib.files().get(clips[0].file, {}).get("hash")
        key = (lib.path, sk.key, fhash, tuple(shot_skel.joints), shot_skel.parents.tobytes())
        if key not in _BRIDGES:
            if len(_BRIDGES) >= MAX_CACHED:  # a long-lived process (batch) meets many rigs
                _BRIDGES.clear()
            if shot_body is None:
                shot_body = analyse(shot_skel, up, shot)
            _BRIDGES[key] = _bridge(lib, sk, clips, shot_skel, shot_body, up)
        got = _BRIDGES[key]
        if isinstance(got, Bridge):
            out.append(got)
        else:
            notes.append(f"library skeleton {sk.name}: {got}")
    return out, notes


def _bridge(lib, sk, clips, shot_skel: Skeleton, shot_body, up: np.ndarray) -> Bridge | str:
    from anymole_usd.plugins.retarget.retarget import map_with_bodies
    from anymole_usd.plugins.retarget.topology import analyse

    src = lib.source(clips[0])
    reference = src.motion.select(np.arange(min(src.motion.num_frames, REFERENCE_FRAMES)))
    body = analyse(src.skeleton, up, reference)
    def limbs(b) -> list[str]:
        return sorted(k for k in b.kinds if k in ("leg", "arm", "head", "tail", "wing"))

    if limbs(body) != limbs(shot_body):
        return (f"other limbs ({', '.join(limbs(body)) or 'none'} against the shot's "
                f"{', '.join(limbs(shot_body))}): not bridged")
    there, back = map_with_bodies(shot_body, body), map_with_bodies(body, shot_body)
    for m in (there, back):
        names = {c.name for c in m.chains}
        missing = [c for c in LIMBS if c not in names and any(k == c.split()[-1] for k in shot_body.kinds)]
        if missing:
            return f"no {', '.join(missing)} in the joint mapping: not bridged"
    low = min(min(c.confidence for c in m.chains) for m in (there, back))
    if low < MIN_CONFIDENCE:
        weakest = min(there.chains + back.chains, key=lambda c: c.confidence)
        return f"joint mapping not confident enough ({weakest.name} {low:.2f} < {MIN_CONFIDENCE}): not bridged"
    size = float(np.median([c.size for c in clips]))
    return Bridge(sk.key, sk.name, src.skeleton, reference, there, back, float(low), size, (shot_body, body))


def query_features(bridge: Bridge, frame_dict: dict, shot_skel: Skeleton, dense: Motion,
                   rows: np.ndarray) -> np.ndarray:
    """Library features (the skeleton's body frame) of the shot's samples ``rows`` of ``dense`` (consecutive
    samples on the shot's skeleton, Y-up), retargeted onto the library skeleton, (len(rows), D).

    Each row is retargeted with one neighbour, for its velocity: the sample before it for even rows (a
    gap's start), the one after it for odd rows (the keyframe at its end)."""
    from anymole_usd import rotations as rot
    from anymole_usd.plugins.priors.motion_graph.features import frame_data
    from anymole_usd.plugins.retarget.retarget import retarget
    from anymole_usd.plugins.retarget.solve import SolveSettings

    rows = np.asarray(rows, dtype=np.int64)
    last = dense.num_frames - 1
    lo = np.where(np.arange(len(rows)) % 2 == 0, rows - 1, rows)
    lo = np.clip(lo, 0, max(last - 1, 0))
    pick = np.stack([lo, np.minimum(lo + 1, last)], axis=1).ravel()
    pairs = dense.select(pick)
    pairs = replace(pairs, times=np.arange(len(pick), dtype=np.float64))
    moved = retarget(pairs, shot_skel, bridge.skeleton, bridge.to_library, fps=dense.fps,
                     target_motion=bridge.reference, hold_contacts=False, bodies=bridge.bodies,
                     settings=SolveSettings(iterations=QUERY_ITERATIONS, smooth=0.0)).motion
    frame = replace(feat.body_frame_from_dict(frame_dict), size=bridge.size)
    fd = frame_data(frame, bridge.skeleton, moved.rotations, moved.translations, moved.scales, dense.fps,
                    dense=False)
    pos = fd.positions[:, frame.joints]
    step = (pos[1::2] - pos[0::2]) * dense.fps  # one velocity per pair
    vel = np.repeat(step, 2, axis=0)
    inv = frame.yaw_rotation(-fd.yaw)[:, None]
    vel = (rot.rotate(inv, vel) / frame.size).reshape(len(pick), -1)
    feats = np.concatenate([fd.pose, feat.VELOCITY_WEIGHT * vel], axis=1)
    which = 2 * np.arange(len(rows)) + (rows - lo)  # the row itself within its pair
    return feats[np.clip(which, 0, len(pick) - 1)]


def onto_shot(bridge: Bridge, part: Motion, shot_skel: Skeleton, shot: Motion) -> Motion:
    """A library stretch (Y-up, on the bridge's skeleton; times = source frames) played by the shot's
    skeleton (Y-up), contacts held; times and rate kept."""
    from anymole_usd.plugins.retarget.retarget import retarget

    out = retarget(part, bridge.skeleton, shot_skel, bridge.to_shot, times=part.times, fps=part.fps,
                   target_motion=shot, bodies=bridge.bodies[::-1]).motion
    return _keep_static_roots(shot_skel, shot, replace(out, times=np.asarray(part.times, dtype=np.float64),
                                                       fps=part.fps))


def _keep_static_roots(skel: Skeleton, shot: Motion, out: Motion) -> Motion:
    """Joints above the shot's trajectory joint (static in the shot, e.g. a ``joint_Root`` at the origin)
    keep the shot's transforms, their moving children take the difference: the solver may turn such a root,
    which would make the graph prior read it as the character's trajectory joint."""
    from anymole_usd import kinematics
    from anymole_usd.metric import character_size
    from anymole_usd.plugins.priors.motion_graph.features import static_joints

    parents = skel.parents
    size = character_size(kinematics.global_positions(parents, shot.rotations, shot.translations, shot.scales),
                          parents)
    static = static_joints(shot.rotations, shot.translations, size)
    fixed = np.zeros(len(parents), dtype=bool)
    for j, p in enumerate(parents):  # parent-first: a root chain of static joints
        fixed[j] = static[j] and (p < 0 or fixed[p])
    if not fixed.any():
        return out
    old = kinematics.forward_kinematics(parents, out.rotations, out.translations, out.scales)
    r, t, sc = out.rotations.copy(), out.translations.copy(), out.scales.copy()
    r[:, fixed], t[:, fixed], sc[:, fixed] = shot.rotations[0, fixed], shot.translations[0, fixed], shot.scales[0, fixed]
    new = kinematics.forward_kinematics(parents, r[:1], t[:1], sc[:1])[0]
    for c in np.flatnonzero(~fixed & (parents >= 0)):
        if fixed[parents[c]]:
            local = old[:, c] @ np.linalg.inv(new[parents[c]])  # row vectors: global = local @ parent's
            r[:, c], t[:, c], _ = kinematics.decompose_matrices(local)
    return replace(out, rotations=r, translations=t, scales=sc)
