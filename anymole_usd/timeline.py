"""Context/keyframe detection and the gaps to fill, on authored sample times.

Authored times are often near-integer floats (1.0000000521...), so every
comparison uses a tolerance instead of ``==``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TIME_TOLERANCE = 1e-3  # in timecodes
# the highest sampling rate any command accepts (--fps): far above any real animation, low enough that a
# frame grid over a long clip stays a reasonable size (1e9 ran the machine out of memory)
MAX_FPS = 10000.0


@dataclass
class Gap:
    """An open interval (start, end) between two known samples and the times to fill in it."""

    start: float
    end: float
    times: np.ndarray

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "frames": int(len(self.times))}


@dataclass
class Timeline:
    """What ``inbetween`` will treat as known and what it will generate."""

    authored: np.ndarray  # every authored time
    context: tuple[float, float]  # inclusive range of context motion
    keys: np.ndarray  # keyframe times
    gaps: list[Gap] = field(default_factory=list)
    detected: bool = True  # False when --context/--keys overrode detection

    @property
    def context_times(self) -> np.ndarray:
        a, b = self.context
        return self.authored[(self.authored >= a - TIME_TOLERANCE) & (self.authored <= b + TIME_TOLERANCE)]

    @property
    def known_times(self) -> np.ndarray:
        return np.union1d(self.context_times, self.keys)

    @property
    def generated_times(self) -> np.ndarray:
        if not self.gaps:
            return np.zeros(0)
        return np.concatenate([g.times for g in self.gaps])

    @property
    def output_times(self) -> np.ndarray:
        """Every sample time of the result: authored samples outside gaps plus generated ones."""
        keep = np.ones(len(self.authored), dtype=bool)
        for g in self.gaps:
            keep &= ~((self.authored > g.start + TIME_TOLERANCE) & (self.authored < g.end - TIME_TOLERANCE))
        return np.sort(np.concatenate([self.authored[keep], self.generated_times]))

    def to_dict(self) -> dict:
        return {
            "authored_range": [float(self.authored[0]), float(self.authored[-1])] if len(self.authored) else None,
            "authored_samples": int(len(self.authored)),
            "context": [float(self.context[0]), float(self.context[1])],
            "context_samples": int(len(self.context_times)),
            "keys": [float(k) for k in self.keys],
            "gaps": [g.to_dict() for g in self.gaps],
            "frames_to_fill": int(len(self.generated_times)),
            "detected": self.detected,
        }


class TimelineError(ValueError):
    """Bad --context/--keys for these authored samples; the message names the time."""


def _runs(times: np.ndarray, tol: float) -> list[tuple[int, int]]:
    """Maximal runs of samples spaced one timecode apart, as inclusive index pairs."""
    if len(times) == 0:
        return []
    step_ok = np.abs(np.diff(times) - 1.0) <= tol
    breaks = np.flatnonzero(~step_ok)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(times) - 1]])
    return list(zip(starts.tolist(), ends.tolist()))


def fill_times(start: float, end: float, step: float, tol: float = TIME_TOLERANCE) -> np.ndarray:
    """Times strictly inside (start, end) at ``step`` spacing from ``start``."""
    n = int(np.floor((end - start) / step + tol))
    t = start + step * np.arange(1, n + 1)
    return t[t < end - tol]


def build_timeline(
    authored: np.ndarray,
    context: tuple[float, float] | None = None,
    keys: list[float] | np.ndarray | None = None,
    step: float = 1.0,
    tol: float = TIME_TOLERANCE,
) -> Timeline:
    """Detect context and keys (or validate the explicit ones) and list the gaps.

    Default rule: the longest run of consecutive samples is the context (the
    earliest on a tie); every other authored sample is a keyframe; every gap
    between consecutive known samples wider than one timecode is filled with
    samples ``step`` timecodes apart.
    """
    authored = np.unique(np.asarray(authored, dtype=np.float64))
    if len(authored) == 0:
        raise TimelineError("no authored samples")
    detected = context is None and keys is None
    lo, hi = authored[0], authored[-1]

    if context is None:
        runs = _runs(authored, tol)
        s, e = max(runs, key=lambda r: (r[1] - r[0], -r[0]))
        context = (float(authored[s]), float(authored[e]))
    else:
        a, b = float(context[0]), float(context[1])
        if not (np.isfinite(a) and np.isfinite(b)):
            raise TimelineError(f"context {a:g}:{b:g}: time codes must be finite numbers")
        if b < a:
            raise TimelineError(f"context {a:g}:{b:g} ends before it starts")
        if a < lo - tol or b > hi + tol:
            raise TimelineError(f"context {a:g}:{b:g} lies outside the authored range {lo:g}:{hi:g}")
        inside = authored[(authored >= a - tol) & (authored <= b + tol)]
        if len(inside) == 0:
            raise TimelineError(f"context {a:g}:{b:g} holds no authored sample")
        context = (float(inside[0]), float(inside[-1]))

    ctx_mask = (authored >= context[0] - tol) & (authored <= context[1] + tol)
    if keys is None:
        key_arr = authored[~ctx_mask]
    else:
        key_arr = np.sort(np.asarray(list(keys), dtype=np.float64))
        if not np.isfinite(key_arr).all():
            raise TimelineError(f"key {key_arr[~np.isfinite(key_arr)][0]:g}: time codes must be finite numbers")
        for k in key_arr:
            if k < lo - tol or k > hi + tol:
                raise TimelineError(f"key {k:g} lies outside the authored range {lo:g}:{hi:g}")
            if context[0] - tol <= k <= context[1] + tol:
                raise TimelineError(f"key {k:g} lies inside the context {context[0]:g}:{context[1]:g}")
            if np.min(np.abs(authored - k)) > tol:
                raise TimelineError(f"key {k:g} is not an authored sample")
        # Snap to the authored value so later lookups are exact.
        key_arr = authored[np.argmin(np.abs(authored[:, None] - key_arr[None]), axis=0)]

    known = np.union1d(authored[ctx_mask], key_arr)
    gaps = []
    for a, b in zip(known[:-1], known[1:]):
        if b - a > 1.0 + tol:
            times = fill_times(float(a), float(b), step, tol)
            if len(times):
                gaps.append(Gap(float(a), float(b), times))
    return Timeline(authored=authored, context=context, keys=key_arr, gaps=gaps, detected=detected)


def parse_range(text: str) -> tuple[float, float]:
    """'A:B' -> (A, B); both finite time codes."""
    try:
        a, b = (float(x) for x in text.split(":"))
    except ValueError:
        raise TimelineError(f"expected a range A:B of time codes, got {text!r}") from None
    if not (np.isfinite(a) and np.isfinite(b)):
        raise TimelineError(f"range {text!r}: time codes must be finite numbers")
    return a, b


def parse_keys(text: str) -> list[float]:
    """'t1,t2,...' -> [t1, t2, ...]; every one a finite time code."""
    try:
        keys = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise TimelineError(f"expected comma-separated time codes, got {text!r}") from None
    bad = [x for x in keys if not np.isfinite(x)]
    if bad:
        raise TimelineError(f"key {bad[0]:g} in {text!r}: time codes must be finite numbers")
    if not keys:
        raise TimelineError(f"no time codes in {text!r}")
    return keys
