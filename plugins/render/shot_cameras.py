"""The one camera set of a shot, fitted once and shared by every stage that renders or reads images.

The estimator (``estimator train``/``predict``, its pipeline stage), the
video prior (renders of the known frames, generated frames, mimicking's
projection) must all see the character through the same cameras, and those
cameras can only be fitted from what the shot knows: the context and keyframe
poses. The frames in between are not known yet, so the fit also covers where
the character will be: each in-between time gets the nearest known pose moved
along the root path interpolated between the known frames (a cubic Hermite
curve through the known frames' centres with their finite-difference
velocities, as the interpolation prior moves the root). A character that
walks towards the camera between two keyframes thus stays in frame and inside
the depth range.

Always fitted for all four views (front, left, right, back), so a caller asking
for fewer views gets the same cameras as one asking for all of them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .cameras import VIEWS, Cameras, auto_cameras, facing_direction


def root_path(known_times: np.ndarray, centres: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Positions (T, 3) at ``times`` on the Hermite curve through ``centres`` (F, 3) at ``known_times`` (F,).

    Velocities are finite differences over the known samples; outside the known
    span the end positions hold.
    """
    from scipy.interpolate import CubicHermiteSpline

    known_times = np.asarray(known_times, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if len(known_times) < 2:
        return np.broadcast_to(centres[:1], (len(times), 3)).copy()
    vel = np.gradient(centres, known_times, axis=0)
    spline = CubicHermiteSpline(known_times, centres, vel, axis=0)
    return spline(np.clip(times, known_times[0], known_times[-1]))


def inbetween_points(known_times: np.ndarray, points: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(T, N, 3): for each of ``times``, the nearest known frame's ``points`` (F, N, 3) moved onto the root path."""
    known_times = np.asarray(known_times, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if len(times) == 0 or len(known_times) == 0:
        return np.zeros((0,) + points.shape[1:])
    centres = 0.5 * (points.min(1) + points.max(1))  # (F, 3) box centres
    path = root_path(known_times, centres, times)
    idx = np.clip(np.searchsorted(known_times, times), 1, len(known_times) - 1) if len(known_times) > 1 \
        else np.zeros(len(times), dtype=int)
    if len(known_times) > 1:
        lo = idx - 1
        idx = np.where(np.abs(times - known_times[lo]) <= np.abs(known_times[idx] - times), lo, idx)
    return points[idx] + (path - centres[idx])[:, None]


def shot_cameras(character, known, fill_times: Sequence[float] | None = None, *, size: tuple[int, int] = (256, 256),
                 views: Sequence[str] = VIEWS, pose=None, fov_y_deg: float = 35.0,
                 elevation_deg: float = 10.0) -> Cameras:
    """The shot's fixed cameras: fitted around the known frames and the in-between root path.

    ``character``: render Character; ``known``: the known Motion (context +
    keyframes); ``fill_times``: the times to be generated (default: every whole
    time code between the first and last known time that is not known);
    ``size`` (height, width); ``views``: which of the four fitted views to return;
    ``pose``: the known motion already posed (``Renderer.pose``), to skip re-skinning.
    """
    from .skinning import pose_character

    pose = pose if pose is not None else pose_character(character, known)
    times = np.asarray(known.times, dtype=np.float64)
    if fill_times is None:
        whole = np.arange(np.ceil(times.min()), np.floor(times.max()) + 1) if len(times) else np.zeros(0)
        fill_times = whole[np.abs(whole[:, None] - times[None]).min(axis=1) > 1e-3] if len(whole) else whole
    fill = np.asarray(fill_times, dtype=np.float64).reshape(-1)
    order = np.argsort(times)
    verts = pose.vertices[order]
    points = np.concatenate([verts, inbetween_points(times[order], verts, fill)])
    forward = facing_direction(pose.joints[order], character.sides, character.up)
    cams = auto_cameras(points, character.up, forward, views=VIEWS, width=size[1], height=size[0],
                        fov_y_deg=fov_y_deg, elevation_deg=elevation_deg)
    return select_views(cams, views)


def select_views(cameras: Cameras, views: Sequence[str]) -> Cameras:
    """The named views of ``cameras``, in the order asked for."""
    names = list(cameras.names)
    missing = [v for v in views if v not in names]
    if missing:
        from anymole_usd.errors import InputError

        raise InputError(f"unknown view {missing[0]!r} (known: {', '.join(names)})")
    idx = [names.index(v) for v in views]
    return Cameras([names[i] for i in idx], cameras.K[idx], cameras.world_to_cam[idx], cameras.width,
                   cameras.height, cameras.near[idx], cameras.far[idx])
