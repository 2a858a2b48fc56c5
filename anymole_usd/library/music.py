"""Beats: music beats from audio (librosa), kinematic beats of motion, and their alignment score.

- Music beats: ``librosa.beat.beat_track`` on the audio's onset strength.
- Kinematic (motion) beats: local minima of the mean joint speed, smoothed
  by a Gaussian (the AIST++ / Bailando definition, sigma 5 frames at 60 fps,
  kept at the same duration for other rates).
- Beat alignment score (AIST++ BAS as its reference code computes it): the
  mean over music beats of ``exp(-d^2 / (2 sigma^2))``, ``d`` the distance in
  frames to the nearest kinematic beat, sigma 3 frames.
"""
from __future__ import annotations

import os

import numpy as np

from anymole_usd.errors import InputError

SMOOTH_SECONDS = 5.0 / 60.0  # Gaussian sigma of the speed curve (5 frames at AIST++'s 60 fps)
BAS_SIGMA_FRAMES = 3.0
MIN_PROMINENCE = 0.1  # x the skeleton's median node speed: how deep a speed minimum must be to be a beat


def music_beats(path: str) -> tuple[np.ndarray, float]:
    """Beat times (s) and tempo (BPM) of an audio file."""
    if not os.path.isfile(path):
        raise InputError("no such audio file", file=path)
    try:
        import librosa
    except ImportError:
        raise InputError("--music needs librosa: pip install 'anymole-usd[music]'", file=path) from None
    import warnings

    try:
        with warnings.catch_warnings():  # librosa warns on its way to failing on a file it cannot decode
            warnings.simplefilter("ignore")
            y, sr = librosa.load(path, sr=22050, mono=True)
    except Exception as exc:  # librosa/soundfile raise many types (some without a message) for a bad file
        reason = (str(exc).strip().splitlines() or ["no decoder reads it"])[0][:120]
        raise InputError(f"cannot read audio ({type(exc).__name__}: {reason})", file=path) from None
    if len(y) < sr // 4:
        raise InputError("audio is shorter than 0.25 s", file=path)
    tempo, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    return np.asarray(beats, dtype=np.float64), float(np.atleast_1d(tempo)[0])


def speed_curve(positions: np.ndarray, fps: float) -> np.ndarray:
    """(F,) mean joint speed between consecutive frames (units / s), smoothed; F-1 values padded to F."""
    from scipy.ndimage import gaussian_filter1d

    step = np.linalg.norm(np.diff(positions, axis=0), axis=-1).mean(axis=1) * fps
    step = np.concatenate([step, step[-1:]]) if len(step) else np.zeros(len(positions))
    return gaussian_filter1d(step, SMOOTH_SECONDS * fps, mode="nearest")


def local_minima(curve: np.ndarray) -> np.ndarray:
    """Indices of strict local minima (scipy.signal.argrelextrema with np.less)."""
    from scipy.signal import argrelextrema

    if len(curve) < 3:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(argrelextrema(curve, np.less)[0], dtype=np.int64)


def motion_beats(positions: np.ndarray, fps: float) -> np.ndarray:
    """Kinematic beat frames of (F, J, 3) joint positions."""
    return local_minima(speed_curve(positions, fps))


def beat_alignment_score(motion_beat_frames: np.ndarray, music_beat_frames: np.ndarray,
                         sigma: float = BAS_SIGMA_FRAMES) -> float:
    """AIST++ BAS: mean over music beats of exp(-(distance to the nearest motion beat)^2 / (2 sigma^2))."""
    music = np.asarray(music_beat_frames, dtype=np.float64)
    motion = np.asarray(motion_beat_frames, dtype=np.float64)
    if len(music) == 0:
        return float("nan")
    if len(motion) == 0:
        return 0.0
    d = np.abs(music[:, None] - motion[None, :]).min(axis=1)
    return float(np.mean(np.exp(-d * d / (2.0 * sigma * sigma))))


def node_beat_distance(speed: np.ndarray, clip: np.ndarray, rate: float, cap: float = 1e3) -> np.ndarray:
    """(N,) distance in nodes from every node to the nearest kinematic beat of its own clip.

    ``speed`` is the nodes' mean joint speed, nodes of one clip contiguous. Beats here are minima
    at least ``MIN_PROMINENCE`` x the median speed deep, so compose moves on the beat rather
    than standing still.
    """
    from scipy.ndimage import gaussian_filter1d

    n = len(speed)
    starts = np.flatnonzero(np.concatenate([[True], clip[1:] != clip[:-1]]))
    ends = np.concatenate([starts[1:], [n]])
    sigma = SMOOTH_SECONDS * rate
    smooth = np.empty(n)
    beat = np.zeros(n, dtype=bool)
    from scipy.signal import find_peaks

    floor = MIN_PROMINENCE * float(np.median(speed)) if n else 0.0
    for a, b in zip(starts, ends):  # per clip (tens of clips), each filtered as one array
        s = gaussian_filter1d(speed[a:b].astype(np.float64), sigma, mode="nearest")
        smooth[a:b] = s
        # Only pronounced minima are beats worth aligning: a still pose wobbles into countless
        # tiny minima (which BAS would reward) but has no visible beat.
        minima, _ = find_peaks(-s, prominence=max(floor, 1e-9))
        beat[a + minima] = True
    idx = np.flatnonzero(beat)
    if len(idx) == 0:
        return np.full(n, cap)
    pos = np.arange(n)
    k = np.clip(np.searchsorted(idx, pos), 0, len(idx) - 1)
    best = np.full(n, cap)
    for cand in (idx[k], idx[np.maximum(k - 1, 0)]):
        same = clip[cand] == clip
        best = np.where(same, np.minimum(best, np.abs(cand - pos)), best)
    return best
