"""Length units of imported characters: the BVH unit guess and the size check on every import.

Neither BVH nor (in practice) glTF files can be trusted to say their units:
BVH has none, and glTF means metres but many files are modelled in
centimetres (Fox.glb is a 102 m fox read as metres). :func:`guess_meters_per_unit`
picks the likely unit from the character's size; :func:`size_warning` tells the
user when an imported character comes out implausibly small or large.
"""
from __future__ import annotations

import numpy as np

from anymole_usd.motion import Motion

# Lengths BVH files are written in, metres per unit: metre (Truebones), CMU's converted units
# (1/0.45 inch, as in the CMU ASF files), inch, centimetre (Bandai Namco, Mixamo, LaFAN1), millimetre.
CANDIDATE_UNITS = (1.0, 0.0254 / 0.45, 0.0254, 0.01, 0.001)
TYPICAL_SIZE_M = 1.5  # a character's largest extent, metres, on the log scale the units are chosen on
PLAUSIBLE_SIZE_M = (0.05, 50.0)  # outside this a character was almost certainly read in the wrong unit


def posed_extent(parents: np.ndarray, motion: Motion, samples: int = 16) -> float:
    """Median over up to ``samples`` evenly spaced frames of the posed joints' largest extent (file units).

    Posed rather than rest: some files put the start position in the hips'
    OFFSET (Bandai Namco's rest pose spans 4.6 m for a 1.8 m person).
    """
    from anymole_usd.kinematics import global_positions

    n = motion.num_frames
    if n == 0:
        return 0.0
    idx = np.unique(np.linspace(0, n - 1, min(n, samples)).round().astype(int))
    pos = global_positions(parents, motion.rotations[idx], motion.translations[idx], motion.scales[idx])
    return float(np.median(np.ptp(pos, axis=1).max(-1)))


def guess_meters_per_unit(extent: float) -> float:
    """metersPerUnit for a character whose largest posed extent is ``extent`` file units.

    The candidate unit that brings the extent closest to a 1.5 m character on a
    log scale: Bandai Namco humans (about 180 units) -> centimetres, CMU
    (about 30 units) -> CMU's 1/0.45 inch, Truebones animals (1-3 units) ->
    metres. A guess: --meters-per-unit overrides it.
    """
    if not np.isfinite(extent) or extent <= 0:
        return 0.01
    units = np.asarray(CANDIDATE_UNITS)
    return float(units[np.argmin(np.abs(np.log(extent * units / TYPICAL_SIZE_M)))])


def scene_extent(scene) -> float:
    """Largest extent of an imported scene's character in its own units: the posed joints of the bound
    (else first) animation, or the bind-pose meshes when they are larger (a two-joint rig)."""
    motion = scene.motion or next(iter(scene.animations.values()), None)
    extent = posed_extent(scene.skeleton.parents, motion) if motion is not None else 0.0
    for mesh in scene.meshes:
        pts = np.asarray(mesh.points, dtype=np.float64).reshape(-1, 3)
        if not len(pts):
            continue
        if mesh.geom_bind_transform is not None:
            m = np.asarray(mesh.geom_bind_transform, dtype=np.float64)
            pts = pts @ m[:3, :3] + m[3, :3]
        extent = max(extent, float(np.ptp(pts, axis=0).max()))
    return extent


def size_warning(scene, meters_per_unit_given: bool) -> str | None:
    """A one-line warning when the character's size in metres is outside 5 cm..50 m, else None."""
    extent = scene_extent(scene)
    if not np.isfinite(extent) or extent <= 0:
        return None  # nothing to measure (a single joint, no mesh)
    size = extent * scene.meters_per_unit
    lo, hi = PLAUSIBLE_SIZE_M
    if lo <= size <= hi:
        return None
    suggested = guess_meters_per_unit(extent)
    hint = (f"; if the file is in other units, pass --meters-per-unit (e.g. {suggested:g} makes it "
            f"{extent * suggested:.3g} m)" if not np.isclose(suggested, scene.meters_per_unit)
            else "; pass --meters-per-unit to set the file's unit")
    origin = "given" if meters_per_unit_given else "assumed"
    return (f"the character is {size:.3g} m across ({extent:.4g} units x metersPerUnit {scene.meters_per_unit:g}, "
            f"{origin}), outside {lo * 100:g} cm..{hi:g} m{hint}")
