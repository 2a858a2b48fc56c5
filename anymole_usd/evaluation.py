"""Scoring in-betweening: run priors on identical windows, compute metrics, make tables.

Two entry points:

- :func:`run_benchmark` runs priors over protocol windows of real clips
  (:mod:`anymole_usd.protocols`) and returns per-clip metric values;
- :func:`evaluate_result` compares the composed in-between frames of a result
  stage with a ground-truth stage (``anymole-usd eval result.usda --reference truth.usda``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .errors import InputError
from .metric import EvalWindow, Metric, character_size, load_metrics, up_vector
from .motion import Motion
from .prior import InbetweenRequest, Prior
from .protocols import Clip, Window, windows_for
from .timeline import Timeline, build_timeline


# --------------------------------------------------------------------------- running priors


def make_request(window: Window, references: Sequence[Motion] = (), seed: int = 0) -> InbetweenRequest:
    """The request a prior sees for a window: only the context and keyframe samples of the clip."""
    clip = window.clip
    c0, c1 = window.context
    known_idx = np.concatenate([np.arange(c0, c1 + 1), np.asarray(window.keys)])
    known = clip.motion.select(known_idx)
    timeline = build_timeline(known.times, context=(float(c0), float(c1)), keys=[float(k) for k in window.keys])
    return InbetweenRequest(skeleton=clip.skeleton, known=known, timeline=timeline, seed=seed,
                            references=list(references), up_axis=clip.up_axis,
                            meters_per_unit=clip.meters_per_unit, name=f"{clip.name}[{c0}:{window.end}]")


def compose(known: Motion, generated: Motion, timeline: Timeline) -> Motion:
    """Known samples plus generated ones, as the runner composes them (known samples win)."""
    check_generated(generated, timeline, known.num_joints)
    return Motion.concatenate([generated, known])


def check_generated(m: Motion, timeline: Timeline, num_joints: int) -> None:
    expected = timeline.generated_times
    if m.num_frames != len(expected) or not np.allclose(m.times, expected, atol=1e-6):
        raise RuntimeError(f"prior returned {m.num_frames} samples for {len(expected)} requested times")
    if m.num_joints != num_joints:
        raise RuntimeError(f"prior returned {m.num_joints} joints for a {num_joints}-joint skeleton")
    m.validate(where="prior output")


def gap_windows(clip: Clip, result: Motion, timeline: Timeline, label: str = "") -> list[EvalWindow]:
    """One EvalWindow per gap: truth and composed result from the sample before to the one after."""
    joints, ground = clip.contacts
    key_set = set(np.round(timeline.keys, 6).tolist())
    out = []
    for gap in timeline.gaps:
        frames = np.arange(int(round(gap.start)), int(round(gap.end)) + 1)
        pred = result.at_times(frames.astype(np.float64))
        truth = clip.motion.select(frames)
        generated = np.zeros(len(frames), dtype=bool)
        generated[1:-1] = True
        keys = np.array([round(float(f), 6) in key_set for f in frames])
        out.append(EvalWindow(skeleton=clip.skeleton, truth=truth, pred=pred, generated=generated, keys=keys,
                              up_axis=clip.up_axis, size=clip.size, meters_per_unit=clip.meters_per_unit,
                              contacts=joints, ground=ground, label=label))
    return out


@dataclass
class Score:
    """Metric values of one prior on one clip under one protocol setting."""

    clip: str
    group: str
    tags: tuple
    setting: str
    prior: str
    values: dict
    windows: int
    frames: int
    seconds: float  # time spent in prior.fill
    fallbacks: list = field(default_factory=list)  # gaps the prior filled by interpolation: {start, end, reason}

    def to_dict(self) -> dict:
        return {"clip": self.clip, "group": self.group, "tags": list(self.tags), "setting": self.setting,
                "prior": self.prior, "windows": self.windows, "frames": self.frames,
                "seconds": round(self.seconds, 4), "fallbacks": len(self.fallbacks), **self.values}


def score_windows(windows: Sequence[EvalWindow], metrics: Sequence[Metric]) -> dict:
    return {m.name: m.compute(windows) for m in metrics}


def run_prior(prior: Prior, windows: Sequence[Window], references: Callable[[Clip], list[Motion]] | None = None,
              seed: int = 0, fallbacks: list | None = None,
              on_window: Callable[[], None] | None = None) -> tuple[list[EvalWindow], float]:
    """Fill every window with ``prior``; returns the gap windows and the time spent filling.

    ``fallbacks``: a list that receives every gap the prior reports in its ``fallbacks`` attribute
    (the `graph` prior's gaps filled by interpolation, with the reason); ``on_window`` is called
    after each window.
    """
    evals, spent = [], 0.0
    for w in windows:
        request = make_request(w, references(w.clip) if references else (), seed)
        t0 = time.perf_counter()
        generated = prior.fill(request)
        spent += time.perf_counter() - t0
        if fallbacks is not None:
            fallbacks += [dict(f) for f in getattr(prior, "fallbacks", [])]
        if on_window is not None:
            on_window()
        result = compose(request.known, generated, request.timeline)
        evals += gap_windows(w.clip, result, request.timeline, w.setting)
    return evals, spent


def truth_windows(windows: Sequence[Window]) -> list[EvalWindow]:
    """Gap windows where the prediction is the ground truth itself (the reference row of a table)."""
    evals = []
    for w in windows:
        request = make_request(w)
        evals += gap_windows(w.clip, w.clip.motion, request.timeline, w.setting)
    return evals


def leave_one_out(clips: Sequence[Clip]) -> Callable[[Clip], list[Motion]]:
    """References for a clip: every other clip on the same skeleton (LaFAN1's training-set analogue)."""

    def refs(clip: Clip) -> list[Motion]:
        return [c.motion for c in clips if c is not clip and c.skeleton.joints == clip.skeleton.joints]

    return refs


def run_benchmark(clips: Sequence[Clip], priors: Sequence[str], protocol: str, metrics: Sequence[Metric] | None = None,
                  references: str = "none", truth_row: bool = True, params: dict | None = None,
                  progress: Callable[[str, float], None] | None = None) -> list[Score]:
    """Every prior on identical windows of every clip; one Score per (clip, setting, prior).

    ``references``: "none" (data-free: only the window's context) or "others"
    (leave-one-out: the other clips on the same skeleton, for the graph prior).
    ``params``: per-prior constructor parameters, ``{"graph": {...}}``.
    ``progress(message, fraction)`` is called before each clip and after each
    window a prior fills (fraction of all windows x priors).
    """
    from . import registry

    metrics = list(metrics) if metrics is not None else load_metrics()
    refs = leave_one_out(clips) if references == "others" else None
    params = params or {}
    per_clip = [windows_for(protocol, clip) for clip in clips]
    total = max(sum(len(ws) for ws in per_clip) * max(len(priors), 1), 1)
    done = 0
    scores: list[Score] = []
    for c, (clip, windows) in enumerate(zip(clips, per_clip)):
        label = f"{protocol}: clip {c + 1}/{len(clips)} {clip.name} ({len(windows)} windows)"
        if progress:
            progress(label, done / total)
        settings = sorted({w.setting for w in windows}, key=setting_order)
        for setting in settings:
            ws = [w for w in windows if w.setting == setting]
            rows = [("ground-truth", truth_windows(ws), 0.0, [])] if truth_row else []
            for name in priors:
                prior = registry.load("priors", name)(**params.get(name, {}))
                fell: list = []

                def tick(name=name, setting=setting):
                    nonlocal done
                    done += 1
                    if progress:
                        progress(f"{label}: {setting}, {name}", done / total)

                evals, spent = run_prior(prior, ws, refs, fallbacks=fell, on_window=tick)
                rows.append((name, evals, spent, fell))
            for name, evals, spent, fell in rows:
                scores.append(Score(clip.name, clip.group, tuple(sorted(clip.tags)), setting, name,
                                    score_windows(evals, metrics), len(ws),
                                    int(sum(e.generated.sum() for e in evals)), spent, fell))
    if progress:
        progress(f"{protocol}: {len(clips)} clips done", 1.0)
    return scores


def fallback_summary(scores: Sequence[Score]) -> list[str]:
    """One line per prior that filled gaps by interpolation: how many, why, and on which clips."""
    lines = []
    for prior in sorted({s.prior for s in scores if s.fallbacks}):
        mine = [s for s in scores if s.prior == prior]
        reasons: dict = {}
        clips: dict = {}
        for s in mine:
            for f in s.fallbacks:
                reason = f.get("reason", "")
                key = "context too short for a motion graph" if "too short" in reason else reason
                reasons[key] = reasons.get(key, 0) + 1
                clips[s.clip] = clips.get(s.clip, 0) + 1
        gaps = sum(len(e) for e in [s.fallbacks for s in mine])
        why = "; ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
        where = ", ".join(f"{c} {n}" for c, n in sorted(clips.items(), key=lambda kv: -kv[1]))
        lines.append(f"{prior}: {gaps} gap(s) filled by interpolation ({why}); per clip: {where}")
    return lines


def setting_order(s: str):
    """Sort key: "lafan1-5" before "lafan1-15"."""
    head, _, tail = s.partition("-")
    return (head, int(tail) if tail.isdigit() else 0)


# --------------------------------------------------------------------------- tables


def aggregate(scores: Sequence[Score], select: Callable[[Score], bool] = lambda s: True) -> dict:
    """Mean over clips of each metric, per (setting, prior): every clip weighs the same."""
    out: dict = {}
    for s in scores:
        if not select(s):
            continue
        d = out.setdefault((s.setting, s.prior), {"clips": 0, "seconds": 0.0})
        d["clips"] += 1
        d["seconds"] += s.seconds
        for k, v in s.values.items():
            d.setdefault(k, []).append(v)
    for d in out.values():
        for k, v in list(d.items()):
            if isinstance(v, list):
                arr = np.asarray(v, dtype=np.float64)
                d[k] = float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")
    return out


def _fmt(v: float, name: str) -> str:
    if v is None or not np.isfinite(v):
        return "-"
    if name in ("npss",):
        return f"{v:.4f}"
    if name in ("keyframe-hit",):
        return f"{v:.2f}"
    return f"{v:.3f}"


def markdown_table(agg: dict, metric_names: Sequence[str], priors: Sequence[str]) -> str:
    settings = sorted({k[0] for k in agg}, key=setting_order)
    head = "| setting | prior | clips | " + " | ".join(metric_names) + " |"
    lines = [head, "|" + "---|" * (3 + len(metric_names))]
    for st in settings:
        for p in ["ground-truth", *priors]:
            d = agg.get((st, p))
            if d is None:
                continue
            cells = [_fmt(d.get(m, float("nan")), m) if p != "ground-truth" or m in ("foot-skate", "keyframe-hit")
                     else "-" for m in metric_names]
            lines.append(f"| {st} | {p} | {d['clips']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_clip_table(scores: Sequence[Score], metric: str, priors: Sequence[str], setting: str | None = None) -> str:
    rows: dict = {}
    for s in scores:
        if setting and s.setting != setting:
            continue
        rows.setdefault((s.clip, s.group, s.setting), {})[s.prior] = s.values.get(metric, float("nan"))
    cols = [p for p in ["ground-truth", *priors] if any(p in r for r in rows.values())]
    if metric != "foot-skate":
        cols = [c for c in cols if c != "ground-truth"]
    lines = ["| clip | group | setting | " + " | ".join(cols) + " |", "|" + "---|" * (3 + len(cols))]
    for (clip, group, st), r in rows.items():
        lines.append(f"| {clip} | {group} | {st} | " + " | ".join(_fmt(r.get(c, float('nan')), metric)
                                                                for c in cols) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- result vs reference


SIZE_MISMATCH = 1.25  # result and reference characters further apart in size than this are not the same one


@dataclass
class ResultComparison:
    prim: str
    generated_frames: int
    gaps: int
    values: dict = field(default_factory=dict)
    meters_per_unit: float = 1.0  # of the result stage: lengths are reported in metres through it
    reference_scale: float = 1.0  # reference lengths were multiplied by this (its metersPerUnit / the result's)

    def to_dict(self) -> dict:
        return {"prim": self.prim, "generated_frames": self.generated_frames, "gaps": self.gaps,
                "meters_per_unit": self.meters_per_unit, "reference_scale": self.reference_scale, **self.values}


def _check_not_generated(ref_stage, anim_path: str, generated, reference_path: str) -> None:
    """InputError when the reference's own samples at the scored times were generated by an in-between run.

    The usual slip: holding frames out of a dense shot with ``--context/--keys`` and then giving the
    same shot as the reference; it now composes the result, so every error would read 0.
    """
    from .schema import read_provenance

    prov = read_provenance(ref_stage.GetPrimAtPath(anim_path))
    if prov is None or not prov.generated_times:
        return
    shared = _common(np.asarray(prov.generated_times, np.float64), np.asarray(generated, np.float64))
    if len(shared):
        raise InputError(f"the reference composes an in-between result ({len(shared)} of the scored frames were "
                         "generated, not authored): compare with the original dense animation (a copy made "
                         "before `inbetween`, or the source file imported again)", file=reference_path,
                         prim=anim_path)


def evaluate_result(result_path: str, reference_path: str, prim: str | None = None,
                    metrics: Sequence[Metric] | None = None) -> list[ResultComparison]:
    """Score the composed in-between frames of ``result_path`` against ``reference_path``.

    The generated times come from the provenance on the result's animation
    prim (what ``anymole-usd inbetween`` composed); a result without any is an
    InputError (nothing was in-betweened, so there is nothing to score). Each
    gap (a run of generated samples between two authored ones) is one window,
    with the authored samples at its ends. Joints are matched by path; the
    reference must have them all. A reference in other units (metersPerUnit)
    is converted to the result's; one whose character is still a different
    size (by more than ``SIZE_MISMATCH``) is refused: it is another character
    or its metersPerUnit is wrong. Lengths are reported in metres.
    """
    from pxr import UsdGeom

    from .contacts import contact_joints, ground_levels
    from .reading import skel_space_up
    from .reading import authored_times, find_bindings, open_stage, read_motion
    from .schema import read_provenance

    metrics = list(metrics) if metrics is not None else load_metrics()
    res_stage, ref_stage = open_stage(result_path), open_stage(reference_path)
    bindings = [b for b in find_bindings(res_stage, result_path) if b.animation_path]
    if prim:
        bindings = [b for b in bindings if prim in (b.animation_path, b.skeleton_path)]
    if not bindings:
        raise InputError("no bound SkelAnimation" + (f" at {prim}" if prim else ""), file=result_path, prim=prim)
    ref_bindings = [b for b in find_bindings(ref_stage, reference_path) if b.animation_path]
    composed = [(b, read_provenance(res_stage.GetPrimAtPath(b.animation_path))) for b in bindings]
    composed = [(b, prov) for b, prov in composed if prov is not None and prov.generated_times]
    if not composed:
        which = f"on {prim}" if prim else "in it"
        raise InputError(f"no in-between result is composed {which}: no SkelAnimation carries anymole-usd "
                         "provenance with generated frames (run `anymole-usd inbetween` on the shot first, "
                         "and give the shot or its result layer as RESULT)", file=result_path)
    mpu = float(UsdGeom.GetStageMetersPerUnit(res_stage))
    ref_mpu = float(UsdGeom.GetStageMetersPerUnit(ref_stage))
    scale = ref_mpu / mpu  # reference units -> result units
    out = []
    for b, prov in composed:
        ref = _matching_binding(b, ref_bindings, reference_path)
        _check_not_generated(ref_stage, ref.animation_path, prov.generated_times, reference_path)
        anim = res_stage.GetPrimAtPath(b.animation_path)
        times = authored_times(anim)
        ref_times = authored_times(ref_stage.GetPrimAtPath(ref.animation_path))
        generated = _common(np.asarray(prov.generated_times), ref_times)
        if len(generated) == 0:
            raise InputError("the reference has none of the result's generated times", file=reference_path,
                             prim=ref.animation_path)
        keys = np.asarray(prov.keyframes, dtype=np.float64)
        windows = gap_runs(generated, _common(times, ref_times))
        needed = np.unique(np.concatenate(windows))
        pred = read_motion(res_stage, b, times=needed, file=result_path)
        truth = _scaled(_reordered(read_motion(ref_stage, ref, times=needed, file=reference_path), ref.skeleton,
                                   b.skeleton, reference_path), scale)
        full = _scaled(_reordered(read_motion(ref_stage, ref, times=ref_times, file=reference_path), ref.skeleton,
                                  b.skeleton, reference_path), scale)
        up_axis = skel_space_up(res_stage, b.skeleton_path)
        up = up_vector(up_axis)
        ref_pos = _positions(b.skeleton, full)
        size = character_size(ref_pos, b.skeleton.parents)
        _check_same_size(b, pred, truth, generated, mpu, ref_mpu, result_path, reference_path)
        contacts = contact_joints(b.skeleton, ref_pos, up, size)
        ground = ground_levels(ref_pos, contacts, up)
        evals = []
        for w in windows:
            gmask = np.abs(w[:, None] - generated[None]).min(axis=1) <= 1e-3
            kmask = (np.abs(w[:, None] - keys[None]).min(axis=1) <= 1e-3) if len(keys) else np.zeros(len(w), bool)
            evals.append(EvalWindow(b.skeleton, truth.at_times(w), pred.at_times(w), gmask, kmask, up_axis=up_axis,
                                    size=size, meters_per_unit=mpu, contacts=contacts, ground=ground))
        out.append(ResultComparison(b.animation_path, len(generated), len(windows), score_windows(evals, metrics),
                                    mpu, scale))
    return out


def _scaled(motion: Motion, scale: float) -> Motion:
    """Lengths multiplied by ``scale`` (joint translations: rotations and scales have no unit)."""
    if scale == 1.0:
        return motion
    return Motion(motion.times, motion.rotations, motion.translations * scale, motion.scales, motion.fps,
                  list(motion.joints))


def _check_same_size(b, pred: Motion, truth: Motion, generated: np.ndarray, mpu: float, ref_mpu: float,
                     result_path: str, reference_path: str) -> None:
    """Refuse a reference whose character, on the result's authored (not generated) samples and after unit
    conversion, differs in size from the result's: metres would then compare different things."""
    known = np.abs(pred.times[:, None] - generated[None]).min(axis=1) > 1e-3
    if not known.any():
        return
    res = character_size(_positions(b.skeleton, pred.select(np.flatnonzero(known))), b.skeleton.parents)
    ref = character_size(_positions(b.skeleton, truth.select(np.flatnonzero(known))), b.skeleton.parents)
    ratio = max(res, ref) / max(min(res, ref), 1e-12)
    if ratio > SIZE_MISMATCH:
        raise InputError(f"the reference character is {ref * mpu:.3g} m across (metersPerUnit {ref_mpu:g}) and "
                         f"the result's {res * mpu:.3g} m (metersPerUnit {mpu:g}) on the same samples: another "
                         "character, or a wrong metersPerUnit in one of them", file=reference_path)


def _common(times: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Entries of ``times`` that ``other`` also has (within the time tolerance)."""
    if len(times) == 0 or len(other) == 0:
        return np.zeros(0)
    return times[np.abs(times[:, None] - other[None]).min(axis=1) <= 1e-3]


def gap_runs(generated: np.ndarray, authored: np.ndarray) -> list[np.ndarray]:
    """Generated times grouped by the authored samples around them; each group is extended
    with the authored sample before and after it where there is one."""
    generated = np.sort(generated)
    known = np.sort(authored[np.abs(authored[:, None] - generated[None]).min(axis=1) > 1e-3]) \
        if len(generated) else np.sort(authored)
    slot = np.searchsorted(known, generated)
    runs = []
    for k in np.unique(slot):
        run = generated[slot == k]
        lo = known[k - 1:k] if k > 0 else np.zeros(0)
        hi = known[k:k + 1] if k < len(known) else np.zeros(0)
        runs.append(np.concatenate([lo, run, hi]))
    return runs


def _positions(skeleton, motion: Motion) -> np.ndarray:
    from . import kinematics

    return kinematics.global_positions(skeleton.parents, motion.rotations, motion.translations, motion.scales)


def _matching_binding(b, ref_bindings, reference_path):
    """The reference animation for result binding ``b``: same prim path if it has the joints, else the
    first whose skeleton has every joint of ``b``'s."""
    wanted = set(b.skeleton.joints)
    for r in sorted(ref_bindings, key=lambda r: r.animation_path != b.animation_path):
        if wanted <= set(r.skeleton.joints):
            return r
    raise InputError(f"no SkelAnimation in the reference has the joints of {b.skeleton_path}",
                     file=reference_path)


def _reordered(motion: Motion, src, dst, file) -> Motion:
    """Reference motion in the result skeleton's joint order (matched by joint path)."""
    if src.joints == dst.joints:
        return motion
    index = {j: i for i, j in enumerate(src.joints)}
    idx = np.asarray([index[j] for j in dst.joints])
    return Motion(motion.times, motion.rotations[:, idx], motion.translations[:, idx], motion.scales[:, idx],
                  motion.fps, list(dst.joints))
