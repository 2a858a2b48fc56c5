"""In-between video from a keyframe-conditioned family (Wan VACE, Wan first-last-frame, LTX-Video).

The video is the one a ``video prepare`` job describes (:func:`.job.video_frames`):
every time to fill, the known frames next to each gap and the context thinned to
the fill rate. These families take known frames natively, so there is no latent
surgery and no coarse stage:

- VACE and LTX: windows of ``window`` frames planned in time order as for SVD
  (:func:`.windows.plan_windows`: a window takes the earliest frame to generate,
  reaches the next keyframe when it fits, and leads with the frames just before);
  every known frame and every frame an earlier window generated is imposed;
- first-last-frame: one call per gap, its two known ends as ``image`` and
  ``last_image``.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from anymole_usd.timeline import TIME_TOLERANCE

from .windows import GUIDE, KEY, UNKNOWN, plan_windows


def video_slots(known_times: Sequence[float], fill_times: Sequence[float]) -> tuple[np.ndarray, np.ndarray, float]:
    """(times, known flags, step in time codes) of the video holding ``fill_times`` among the known frames."""
    from .job import video_frames

    kt = np.asarray(sorted(map(float, known_times)))
    ft = np.asarray(sorted(map(float, fill_times)))
    t = np.concatenate([kt, ft])
    k = np.concatenate([np.ones(len(kt), bool), np.zeros(len(ft), bool)])
    order = np.argsort(t, kind="stable")
    t, k = t[order], k[order]
    # the fill spacing: intervals next to a frame to fill
    near = ~k[:-1] | ~k[1:]
    step = float(np.median(np.diff(t)[near])) if near.any() else 1.0
    keep = video_frames(t, k, step)
    return t[keep], k[keep], step


def generate_keyed_video(model, known_frames: Mapping[float, np.ndarray], fill_times: Sequence[float], fps: float,
                         prompt: str = "", *, keyframe_times: Sequence[float] | None = None, window: int | None = None,
                         steps: int | None = None, guidance_scale: float | None = None, seed: int = 0,
                         progress: Callable[[str, float], None] | None = None) -> dict[float, np.ndarray]:
    """{fill time: (H, W, 3) uint8} from ``model`` (a :class:`~.transformer_model.TransformerVideoModel`)."""
    from .interface import check_frames

    check_frames(known_frames, fill_times, fps)
    if len(fill_times) == 0:
        return {}
    known_times = np.asarray(sorted(map(float, known_frames)))
    times, known, step = video_slots(known_times, fill_times)
    frames: list = [known_frames[_nearest(known_times, t)] if k else None for t, k in zip(times, known)]
    window = int(window or model.window)
    if model.first_last_only:
        runs = _gaps(known)
        if runs and (runs[0][0] == 0 or runs[-1][1] == len(known) - 1):
            from anymole_usd.errors import InputError

            raise InputError(f"{model.family} needs a known frame before each gap (the first frame it starts from)")
        plans = [(a - 1, b + 1, np.arange(a, b + 1)) for a, b in runs]
    else:
        from anymole_usd.timeline import build_timeline

        keys = np.asarray(keyframe_times if keyframe_times is not None else
                          build_timeline(known_times).keys, dtype=np.float64)
        is_key = np.array([len(keys) > 0 and np.min(np.abs(keys - t)) <= TIME_TOLERANCE for t in times])
        states = [UNKNOWN if not k else KEY if key else GUIDE for k, key in zip(known, is_key)]
        plans = [(w.start, w.end, w.generate) for w in plan_windows(states, window)]
    fps_video = fps / step
    for wi, (start, end, generate) in enumerate(plans):
        def tick(fraction, wi=wi):
            if progress is not None:
                progress(f"video ({model.family}): window {wi + 1}/{len(plans)}", (wi + fraction) / len(plans))

        tick(0.0)
        images = [frames[i] if frames[i] is not None else None for i in range(start, end + 1)]
        out = model.generate_window(images, prompt=prompt, steps=steps, guidance=guidance_scale,
                                    seed=seed + wi, fps=fps_video, progress=tick)
        for i in generate:
            frames[i] = out[i - start]
    return {float(t): frames[int(np.argmin(np.abs(times - t)))] for t in map(float, fill_times)}


def _nearest(values: np.ndarray, t: float) -> float:
    return float(values[int(np.argmin(np.abs(values - t)))])


def _gaps(known: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of frames to generate (always between two known frames here)."""
    idx = np.flatnonzero(~known)
    if not len(idx):
        return []
    starts = idx[np.concatenate([[True], np.diff(idx) > 1])]
    ends = idx[np.concatenate([np.diff(idx) > 1, [True]])]
    return [(int(a), int(b)) for a, b in zip(starts, ends)]
