"""How good a composition is, measured against its own library.

- ``tag_coverage``: the share of output frames inside requested tag spans
  whose source frame (segment clip and source time) carries the tag.
- ``max_step``: the largest per-frame joint displacement of the output, in
  character sizes, against the library's 99th percentile of per-frame
  largest joint displacement (library clips resampled to the output rate).
- ``foot_skate``: mean horizontal speed of the contact joints while near
  the ground (the ``foot-skate`` metric's terms), output against library.
- ``beat_alignment``: AIST++ BAS of the output's kinematic beats against
  the music beats (:mod:`.music`).
- ``step_vs_source`` / ``skate_vs_source``: the same figures against the
  played source frames themselves (root-aligned, before blending), which
  isolates what compose adds from what the requested clips already do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anymole_usd import kinematics
from anymole_usd.contacts import contact_joints, ground_levels
from anymole_usd.metric import up_vector

from . import music as beats
from .assembly import sample
from .store import Library
from .tags import TagSpan, node_mask


@dataclass
class LibraryStats:
    step_p99: float  # sizes per frame
    skate: float  # sizes per second
    contacts: np.ndarray  # contact joint indices
    fps: float


def positions(parents: np.ndarray, r, t, s) -> np.ndarray:
    return kinematics.global_positions(parents, r, t, s)


def max_steps(pos: np.ndarray, size: float) -> np.ndarray:
    """(F-1,) largest joint displacement per frame step, in sizes."""
    return np.linalg.norm(np.diff(pos, axis=0), axis=-1).max(axis=1) / size


def skate(pos: np.ndarray, fps: float, joints: np.ndarray, up: np.ndarray, size: float,
          steps: np.ndarray | None = None) -> np.ndarray:
    """Foot-skate terms of the frame steps ``steps`` (default all)."""
    from anymole_usd.plugins.metrics.foot_skate import skate_terms

    if len(joints) == 0 or len(pos) < 2:
        return np.zeros(0)
    ground = ground_levels(pos, joints, up)
    steps = np.ones(len(pos) - 1, dtype=bool) if steps is None else steps
    return skate_terms(pos, fps, joints, ground, up, size, steps).ravel()


def library_stats(lib: Library, skeleton: str, fps: float) -> LibraryStats:
    """Per-frame step percentile and foot skate of the skeleton's clips, at ``fps``."""
    sk = lib.skeleton(skeleton)
    clips = [c for c in lib.clips(sk.key) if c.duration * fps >= 3]
    up = up_vector(sk.up_axis)
    parents = lib.source(clips[0]).skeleton.parents
    per_clip = []
    for c in clips:
        m = lib.motion(c)
        r, t, s = sample(m, np.arange(0.0, c.duration + 1e-9, 1.0 / fps))
        per_clip.append((positions(parents, r, t, s), c.size))
    allpos = np.concatenate([p / size for p, size in per_clip])
    joints = contact_joints(lib.source(clips[0]).skeleton, allpos, up, 1.0)
    steps = np.concatenate([max_steps(p, size) for p, size in per_clip])
    sk_terms = np.concatenate([skate(p, fps, joints, up, size) for p, size in per_clip])
    return LibraryStats(float(np.percentile(steps, 99)), float(sk_terms.mean()) if sk_terms.size else 0.0,
                        joints, fps)


def tag_coverage(lib: Library, segments: list[dict], spans: list[TagSpan], fps: float) -> float:
    """Share of output frames in tag spans whose source frame carries the span's tag (nan: no span)."""
    if not spans:
        return float("nan")
    by_name = {c.name: c for c in lib.clips()}
    hit = total = 0
    for seg in segments:
        c = by_name[seg["clip"]]
        o0, o1 = seg["output"]
        frames = np.arange(np.ceil(o0 * fps - 1e-6), np.ceil(o1 * fps - 1e-6)) / fps
        src = seg["source"][0] + (frames - o0)
        for span in spans:
            inside = (frames >= span.start - 1e-6) & (frames <= span.end + 1e-6)
            total += int(inside.sum())
            hit += int((inside & node_mask(c.tags, span.tag, src)).sum())
    return hit / total if total else float("nan")


def composition_quality(lib: Library, comp, spans: list[TagSpan], stats: LibraryStats | None = None) -> dict:
    """The figures of one composition (see the module docstring)."""
    sk = lib.skeleton(comp.skeleton_name)
    stats = stats or library_stats(lib, sk.key, comp.fps)
    m = comp.motion
    pos = positions(comp.skeleton.parents, m.rotations, m.translations, m.scales)
    size = comp.size
    up = up_vector(sk.up_axis)
    step = float(max_steps(pos, size).max()) if len(pos) > 1 else 0.0
    sk_terms = skate(pos, comp.fps, stats.contacts, up, size)
    out = {"tag_coverage": tag_coverage(lib, comp.segments, spans, comp.fps),
           "max_step": step, "library_step_p99": stats.step_p99,
           "step_ratio": step / stats.step_p99 if stats.step_p99 > 0 else float("nan"),
           "foot_skate": float(sk_terms.mean()) if sk_terms.size else 0.0, "library_foot_skate": stats.skate}
    out["skate_ratio"] = out["foot_skate"] / stats.skate if stats.skate > 0 else float("nan")
    if comp.source is not None:  # the same frames as the source clips play them: what compose itself adds
        src = comp.source
        spos = positions(comp.skeleton.parents, src.rotations, src.translations, src.scales)
        within = np.ones(len(spos) - 1, dtype=bool)  # frame steps inside one piece (not across a jump)
        within[np.asarray(comp.jumps, dtype=np.int64) - 1] = False
        s_steps = max_steps(spos, size)[within]
        s_skate = skate(spos, comp.fps, stats.contacts, up, size, within)
        out["source_max_step"] = float(s_steps.max()) if len(s_steps) else 0.0
        out["step_vs_source"] = step / out["source_max_step"] if out["source_max_step"] > 0 else float("nan")
        out["source_foot_skate"] = float(s_skate.mean()) if s_skate.size else 0.0
        out["skate_vs_source"] = (out["foot_skate"] / out["source_foot_skate"] if out["source_foot_skate"] > 0
                                  else float("nan"))
    if len(comp.music_beats):
        out["beat_alignment"] = beats.beat_alignment_score(beats.motion_beats(pos, comp.fps),
                                                           comp.music_beats * comp.fps)
    return out


def beat_alignment(comp, music_beats_s: np.ndarray) -> float:
    """BAS of a composition against beats given in seconds (e.g. the same music for a request without it)."""
    m = comp.motion
    pos = positions(comp.skeleton.parents, m.rotations, m.translations, m.scales)
    return beats.beat_alignment_score(beats.motion_beats(pos, comp.fps), np.asarray(music_beats_s) * comp.fps)
