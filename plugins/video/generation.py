"""Two-stage context-guided video generation (AnyMoLe Sec. 3.2, supplement Algorithm 2).

Stage 1 draws a coarse video at ``coarse_fps`` (5 by default) across every
gap, auto-regressively over windows (see ``windows.py``): guidance is the
context sampled at the coarse rate, the keyframes, and whatever earlier
windows generated. Stage 2 draws ``fill_times`` (typically 15 fps) between
consecutive known frames, with the coarse frames inside the segment as
guidance. Known frames are imposed by latent inpainting (``inpainting.py``).
Times are the stage's time codes; ``fps`` converts them to seconds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from anymole_usd.timeline import TIME_TOLERANCE, build_timeline

from .windows import GUIDE, KEY, UNKNOWN, plan_windows


@dataclass
class WindowRun:
    """One planned window: its stage (1 coarse, 2 fine), slot times and states, and what it generates."""

    stage: int
    index: int
    times: np.ndarray  # (T,) time codes
    states: list[str]
    generate: np.ndarray  # (G,) time codes generated (or redrawn) by this window


@dataclass
class TwoStageResult:
    frames: dict[float, np.ndarray]  # fill time -> image (the answer)
    coarse: dict[float, np.ndarray]  # coarse time -> image generated in stage 1
    windows: list[WindowRun] = field(default_factory=list)


def _snap(times: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Boolean mask of ``times`` lying within tolerance of some ``ref`` time."""
    if len(times) == 0 or len(ref) == 0:
        return np.zeros(len(times), dtype=bool)
    return np.min(np.abs(np.asarray(times)[:, None] - np.asarray(ref)[None]), axis=1) <= TIME_TOLERANCE


def guidance_times(known: np.ndarray, keys: np.ndarray, step: float) -> np.ndarray:
    """Keys plus known frames picked backwards from each one at ``step`` spacing (the context at the coarse rate)."""
    picked = []
    last = np.inf
    for t in known[::-1]:
        is_key = _snap(np.array([t]), keys)[0]
        if is_key or t <= last - step + TIME_TOLERANCE:
            picked.append(t)
            last = t
    return np.array(sorted(picked))


def _densify(times: np.ndarray, wanted: np.ndarray, step: float) -> np.ndarray:
    """Points to insert so that no interval next to a ``wanted`` slot is longer than 1.5 ``step``.

    Video models assume evenly spaced frames: when only part of a gap is asked
    for, the rest of the gap is generated too (and not returned) so that the
    closing keyframe sits at its true distance.
    """
    extra = []
    for i in range(len(times) - 1):
        a, b = times[i], times[i + 1]
        if (wanted[i] or wanted[i + 1]) and b - a > 1.5 * step:
            n = int(round((b - a) / step))
            extra.extend(a + (b - a) * np.arange(1, n) / n)
    return np.array(extra, dtype=np.float64)


def _merge(base: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """``extra`` times not already in ``base`` (within tolerance)."""
    extra = np.asarray(extra, dtype=np.float64)
    return extra[~_snap(extra, base)] if len(base) else extra


def stage1_slots(known: np.ndarray, keys: np.ndarray, fill: np.ndarray, step: float,
                 exact: bool = False) -> tuple[np.ndarray, list[str]]:
    """Slot times and states of the coarse stage (or of the only stage when ``exact``).

    Guidance is the keys plus the known frames at about ``step`` spacing.
    Unknown slots are spread evenly at about ``step`` between consecutive
    guidance frames whose interval holds a time to fill (and beyond the first
    or last known frame when fill times lie there). With ``exact`` the unknown
    slots are the fill times themselves, plus evenly spaced frames wherever a
    fill time is more than 1.5 steps from its neighbour.
    """
    guide = guidance_times(known, keys, step)
    if exact:
        unknown = _merge(guide, fill)
        times = np.sort(np.concatenate([guide, unknown]))
        unknown = np.concatenate([unknown, _densify(times, _snap(times, unknown), step)])
    else:
        extra = []
        for a, b in zip(guide[:-1], guide[1:]):
            if np.any((fill > a + TIME_TOLERANCE) & (fill < b - TIME_TOLERANCE)):
                n = max(1, int(round((b - a) / step)))
                extra.extend(a + (b - a) * np.arange(1, n) / n)
        if len(fill) and fill.min() < guide[0] - TIME_TOLERANCE:
            n = int(np.ceil((guide[0] - fill.min()) / step - TIME_TOLERANCE))
            extra.extend(guide[0] - step * np.arange(1, n + 1))
        if len(fill) and fill.max() > guide[-1] + TIME_TOLERANCE:
            n = int(np.ceil((fill.max() - guide[-1]) / step - TIME_TOLERANCE))
            extra.extend(guide[-1] + step * np.arange(1, n + 1))
        unknown = np.array(extra, dtype=np.float64)
    times = np.concatenate([guide, unknown])
    states = [KEY if k else GUIDE for k in _snap(guide, keys)] + [UNKNOWN] * len(unknown)
    order = np.argsort(times, kind="stable")
    return times[order], [states[i] for i in order]


def stage2_segments(known: np.ndarray, keys: np.ndarray, fill: np.ndarray, coarse: np.ndarray,
                    step: float) -> list[tuple[np.ndarray, list[str]]]:
    """Per interval between consecutive known frames holding fill times: slots and states of the fine stage.

    Ends are the known frames (KEY or GUIDE by role); coarse frames inside are
    GUIDE (a coarse frame at a fill time is redrawn there); fill times are
    UNKNOWN, plus evenly spaced frames where slots are more than 1.5 ``step``
    apart. Fill times before the first or after the last known frame form open
    segments.
    """
    bounds = np.concatenate([[-np.inf], known, [np.inf]])
    segments = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        inside = fill[(fill > a + TIME_TOLERANCE) & (fill < b - TIME_TOLERANCE)]
        if len(inside) == 0:
            continue
        c = coarse[(coarse > a + TIME_TOLERANCE) & (coarse < b - TIME_TOLERANCE)]
        ends = np.array([x for x in (a, b) if np.isfinite(x)])
        slots = np.sort(np.concatenate([ends, c, _merge(c, inside)]))
        slots = np.sort(np.concatenate([slots, _densify(slots, np.ones(len(slots), bool), step)]))
        states = [KEY if k else GUIDE if (e or g) else UNKNOWN
                  for k, e, g in zip(_snap(slots, keys), _snap(slots, ends), _snap(slots, c))]
        segments.append((slots, states))
    return segments


def _resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if images.shape[1:3] == tuple(size):
        return images
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def model_size(model, shape: tuple[int, int]) -> tuple[int, int]:
    """The input size rounded to the nearest multiple the model accepts."""
    m = model.size_multiple
    return tuple(max(m, int(round(s / m)) * m) for s in shape)


def two_stage_generation(model, known_frames: Mapping[float, np.ndarray], fill_times: Sequence[float], fps: float,
                         prompt: str = "", *, keyframe_times: Sequence[float] | None = None, coarse_fps: float = 5.0,
                         fine_fps: float = 15.0, two_stage: bool = True, window: int = 16,
                         num_inference_steps: int = 25, guidance_scale: float = 2.0,
                         context_threshold: float | None = 750.0, seed: int = 0,
                         progress: Callable[[str, float], None] | None = None,
                         step_callback: Callable | None = None) -> TwoStageResult:
    """Coarse (stage 1) then fine (stage 2) generation; see :func:`generate_inbetween_video`.

    ``step_callback(run: WindowRun, images: ndarray, modes: ndarray, info: StepInfo)`` is called at every
    denoising step of every window (for instrumentation).
    """
    import torch

    from .inpainting import ALWAYS, FREE, NOISY, sample_window

    known = np.array(sorted(float(t) for t in known_frames), dtype=np.float64)
    fill = np.unique(np.asarray(list(fill_times), dtype=np.float64))
    if len(known) == 0:
        raise ValueError("no known frames")
    fill = fill[~_snap(fill, known)]  # a time that is known needs no generation
    if keyframe_times is None:
        keys = build_timeline(known).keys
    else:
        keys = np.asarray(list(keyframe_times), dtype=np.float64)
    size0 = next(iter(known_frames.values())).shape[:2]
    size = model_size(model, size0)
    known_imgs = _resize(np.stack([known_frames[t] for t in sorted(known_frames)]), size)
    by_time = {t: known_imgs[i] for i, t in enumerate(known)}

    # Plan both stages up front (plans depend on times only), so progress spans everything.
    coarse_step = fps / coarse_fps
    fine_step = fps / fine_fps
    if two_stage:
        s1_times, s1_states = stage1_slots(known, keys, fill, coarse_step)
    else:
        s1_times, s1_states = stage1_slots(known, keys, fill, fine_step, exact=True)
    s1_windows = plan_windows(s1_states, window) if len(fill) else []
    coarse_times = s1_times[[s == UNKNOWN for s in s1_states]] if two_stage else np.zeros(0)
    s2_segments = stage2_segments(known, keys, fill, coarse_times, fine_step) if two_stage and len(fill) else []
    s2_plans = [(times, states, plan_windows(states, window)) for times, states in s2_segments]
    total = (len(s1_windows) + sum(len(p[2]) for p in s2_plans)) * num_inference_steps
    done = [0]
    runs: list[WindowRun] = []

    def run_window(stage, times, states, win, images_at) -> tuple[WindowRun, np.ndarray]:
        idx = win.slots
        t = times[idx]
        st = [states[i] for i in idx]
        modes = np.array([ALWAYS if s == KEY else NOISY if s == GUIDE else FREE for s in st])
        imgs = np.zeros((len(idx), *size, 3), dtype=np.uint8)
        for j, (tt, s) in enumerate(zip(t, st)):
            if s != UNKNOWN:
                imgs[j] = _get(images_at, float(tt))
        gen_times = times[win.generate]
        run = WindowRun(stage, len(runs), t, st, gen_times)
        runs.append(run)
        spacing = float(np.median(np.diff(t))) if len(t) > 1 else coarse_step
        gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + run.index)

        def on_step(info):
            done[0] += 1
            if progress is not None:
                progress(f"video stage {stage}: window {run.index + 1}, step {info.step + 1}/{info.num_steps}",
                         done[0] / max(total, 1))
            if step_callback is not None:
                step_callback(run, imgs, modes, info)

        out = sample_window(model, imgs, modes, fps / spacing, prompt=prompt, num_inference_steps=num_inference_steps,
                            guidance_scale=guidance_scale, context_threshold=context_threshold, generator=gen,
                            on_step=on_step)
        return run, out

    # Stage 1: generated frames join the guidance of later windows.
    images_at = dict(by_time)
    stage1_out: dict[float, np.ndarray] = {}
    for win in s1_windows:
        _, out = run_window(1, s1_times, s1_states, win, images_at)
        for i in win.generate:
            local = i - win.start
            t = float(s1_times[i])
            stage1_out[t] = out[local]
            images_at[t] = out[local]
        for i in win.generate:
            s1_states[i] = GUIDE

    if two_stage:
        result: dict[float, np.ndarray] = {}
        for times, states, plan in s2_plans:
            states = list(states)
            for win in plan:
                _, out = run_window(2, times, states, win, images_at)
                for j, i in enumerate(win.slots):
                    t = float(times[i])
                    if i in set(win.generate.tolist()):
                        images_at[t] = out[j]
                        result[t] = out[j]
                    elif states[i] == GUIDE and _snap(np.array([t]), fill)[0] and t not in result:
                        result[t] = out[j]  # a coarse frame at a fill time, redrawn at the fine rate
                for i in win.generate:
                    states[i] = GUIDE
        # Fill times no fine window redrew (all of a segment on the coarse grid) keep their coarse frame.
        for t in fill:
            if float(t) not in result:
                result[float(t)] = _get(images_at, float(t))
    else:
        result = {float(t): _get(stage1_out, float(t)) for t in fill}

    out_frames: dict[float, np.ndarray] = {}
    wanted = [float(t) for t in fill_times if not _snap(np.array([float(t)]), known)[0]]
    resized = _resize(np.stack([_get(result, t) for t in wanted]), tuple(size0)) if wanted else []
    for t, img in zip(wanted, resized):
        out_frames[t] = img
    for t in fill_times:  # times that were known anyway: the caller's own image
        t = float(t)
        if t not in out_frames:
            out_frames[t] = np.asarray(known_frames[_match(known_frames, t)])
    cts = sorted(stage1_out) if two_stage else []  # single-stage output is the answer, not a coarse video
    coarse = dict(zip(cts, _resize(np.stack([stage1_out[t] for t in cts]), tuple(size0)))) if cts else {}
    return TwoStageResult(frames=out_frames, coarse=coarse, windows=runs)


def _match(d: Mapping[float, object], t: float) -> float:
    keys = np.array([float(k) for k in d])
    return list(d)[int(np.argmin(np.abs(keys - t)))]


def _get(d: Mapping[float, np.ndarray], t: float) -> np.ndarray:
    """``d[t]`` with the time tolerance (slot times may differ from fill times in the last bits)."""
    if t in d:
        return d[t]
    k = _match(d, t)
    if abs(float(k) - t) > TIME_TOLERANCE:
        raise KeyError(t)
    return d[k]


def generate_inbetween_video(model, known_frames: Mapping[float, np.ndarray], fill_times: Sequence[float], fps: float,
                             prompt: str = "", *, keyframe_times: Sequence[float] | None = None,
                             coarse_fps: float = 5.0, fine_fps: float = 15.0, two_stage: bool = True, window: int = 16,
                             num_inference_steps: int = 25, guidance_scale: float = 2.0,
                             context_threshold: float | None = 750.0, seed: int = 0,
                             progress: Callable[[str, float], None] | None = None,
                             step_callback: Callable | None = None) -> dict[float, np.ndarray]:
    """Images at ``fill_times`` (time codes, ``fps`` time codes per second) given images at known times.

    ``known_frames``: {time: (H, W, 3) uint8}, context and keyframes from one
    camera, all one size; the result has that size. ``keyframe_times``: which
    known frames are keyframes (imposed at every denoising step; the others
    only while the noise level is above ``context_threshold`` of 1000, or at
    every step when it is None); by default the longest run of consecutive
    frames is the context and every other known frame a keyframe (the
    ``anymole_usd.timeline`` rule). ``two_stage=False`` skips the coarse video.
    ``window`` is the model's frame count per window (16 as in the paper; 14
    or 25 suit SVD). ``progress(message, fraction)`` is called at every
    denoising step. Returns {fill time: (H, W, 3) uint8}.
    """
    from .interface import check_frames

    check_frames(known_frames, fill_times, fps)
    return two_stage_generation(
        model, known_frames, fill_times, fps, prompt, keyframe_times=keyframe_times, coarse_fps=coarse_fps,
        fine_fps=fine_fps, two_stage=two_stage, window=window, num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale, context_threshold=context_threshold, seed=seed, progress=progress,
        step_callback=step_callback).frames
