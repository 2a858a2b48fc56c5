"""The one camera model every renderer and annotation uses: pinhole, OpenCV axes, metres.

``world_to_cam`` (V, F, 4, 4) is column-vector (``x_cam = R @ x_world + t``)
with x right, y down, z forward; ``K`` (V, 3, 3) is in pixels with pixel
centres at +0.5. Cameras are per view and per frame, so fixed cameras simply
repeat and ``--follow`` cameras move. NDC depth follows OpenGL ([-1, 1]
between ``near`` and ``far``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from anymole_usd.errors import InputError

VIEWS = ("front", "left", "right", "back")


@dataclass
class Cameras:
    names: list[str]
    K: np.ndarray  # (V, 3, 3)
    world_to_cam: np.ndarray  # (V, F, 4, 4)
    width: int
    height: int
    near: np.ndarray | float = 0.05  # (V,) metres, for NDC depth
    far: np.ndarray | float = 100.0

    def __post_init__(self) -> None:
        self.names = list(self.names)
        self.K = np.asarray(self.K, dtype=np.float64)
        self.near = np.broadcast_to(np.asarray(self.near, dtype=np.float64), (len(self.names),)).copy()
        self.far = np.broadcast_to(np.asarray(self.far, dtype=np.float64), (len(self.names),)).copy()
        self.world_to_cam = np.asarray(self.world_to_cam, dtype=np.float64)
        if self.world_to_cam.ndim == 3:
            self.world_to_cam = self.world_to_cam[:, None]

    @property
    def num_views(self) -> int:
        return len(self.names)

    @property
    def num_frames(self) -> int:
        return self.world_to_cam.shape[1]

    def frames(self, n: int) -> np.ndarray:
        """(V, n, 4, 4) extrinsics, broadcasting fixed cameras over n frames."""
        if self.num_frames == n:
            return self.world_to_cam
        if self.num_frames == 1:
            return np.broadcast_to(self.world_to_cam, (self.num_views, n, 4, 4))
        raise ValueError(f"cameras have {self.num_frames} frames, motion has {n}")

    def select_frames(self, idx: np.ndarray) -> Cameras:
        if self.num_frames == 1:
            return self
        return replace(self, world_to_cam=self.world_to_cam[:, np.asarray(idx)])

    def cam_to_world(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(V, n, 3) camera centres and (V, n, 3, 3) camera-to-world rotations."""
        m = self.frames(n)
        r, t = m[..., :3, :3], m[..., :3, 3]
        rt = np.swapaxes(r, -1, -2)
        return -np.einsum("vfij,vfj->vfi", rt, t), rt

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (F, N, 3) -> pixels (V, F, N, 2) and camera-space depth z (V, F, N)."""
        points = np.asarray(points, dtype=np.float64)
        m = self.frames(points.shape[0])
        # batched matmul (BLAS) rather than einsum: this runs on every vertex of every frame
        cam = np.matmul(points[None], np.swapaxes(m[..., :3, :3], -1, -2)) + m[..., None, :3, 3]
        z = cam[..., 2]
        safe = np.where(np.abs(z) > 1e-12, z, 1e-12)
        k = self.K[:, None, None]
        u = k[..., 0, 0] * cam[..., 0] / safe + k[..., 0, 2]
        v = k[..., 1, 1] * cam[..., 1] / safe + k[..., 1, 2]
        return np.stack([u, v], -1), z

    def ndc_depth(self, z: np.ndarray) -> np.ndarray:
        """OpenGL NDC depth in [-1, 1] for camera depth z (V, ...) in [near, far]."""
        shape = (-1,) + (1,) * (np.ndim(z) - 1)
        n, f = self.near.reshape(shape), self.far.reshape(shape)
        z = np.where(np.abs(z) > 1e-12, z, 1e-12)
        return (f + n) / (f - n) - 2.0 * f * n / ((f - n) * z)

    @staticmethod
    def concatenate(sets: list[Cameras], num_frames: int) -> Cameras:
        """Views of several sets side by side (same image size); extrinsics broadcast to ``num_frames``."""
        fixed = all(c.num_frames == 1 for c in sets)
        n = 1 if fixed else num_frames
        return Cameras([n for c in sets for n in c.names], np.concatenate([c.K for c in sets]),
                       np.concatenate([c.frames(n) for c in sets]), sets[0].width, sets[0].height,
                       np.concatenate([c.near for c in sets]), np.concatenate([c.far for c in sets]))

    def to_dict(self) -> dict:
        return {"views": list(self.names), "width": self.width, "height": self.height,
                "near": self.near.tolist(), "far": self.far.tolist(), "K": self.K.tolist(), "world_to_cam": self.world_to_cam.tolist(),
                "convention": "pinhole, OpenCV axes (x right, y down, z forward), column-vector "
                              "x_cam = R x_world + t, metres, pixel centres at +0.5"}


def intrinsics(width: int, height: int, fov_y_deg: float) -> np.ndarray:
    f = 0.5 * height / np.tan(np.radians(fov_y_deg) / 2)
    return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


def look_at(eye: np.ndarray, forward: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(..., 4, 4) OpenCV world-to-camera for cameras at ``eye`` looking along ``forward``."""
    z = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    x = np.cross(z, up)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    y = np.cross(z, x)
    r = np.stack([x, y, z], -2)
    m = np.zeros(eye.shape[:-1] + (4, 4))
    m[..., :3, :3] = r
    m[..., :3, 3] = -np.einsum("...ij,...j->...i", r, eye)
    m[..., 3, 3] = 1.0
    return m


def facing_direction(joints: np.ndarray, sides: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Unit world direction the character faces, on the ground plane.

    From left/right joints when the names tell them apart (left = up x forward),
    else from the root's travel over the clip, else the stage convention
    (+Z when Y is up, -Y when Z is up).
    """
    up = np.asarray(up, dtype=np.float64)

    def flat(v):
        v = v - np.dot(v, up) * up
        n = np.linalg.norm(v)
        return v / n if n > 1e-9 else None

    sides = np.asarray(sides)
    if np.any(sides > 0) and np.any(sides < 0):
        lateral = flat((joints[:, sides > 0].mean(1) - joints[:, sides < 0].mean(1)).mean(0))
        if lateral is not None:
            return np.cross(lateral, up)
    extent = np.ptp(joints.reshape(-1, 3), axis=0).max() if joints.size else 0.0
    travel = joints[-1, 0] - joints[0, 0]
    if extent > 0 and np.linalg.norm(travel - np.dot(travel, up) * up) > 0.2 * extent:
        return flat(travel)
    return np.array([0.0, 0.0, 1.0]) if abs(up[1]) > 0.5 else np.array([0.0, -1.0, 0.0])


def view_directions(forward: np.ndarray, up: np.ndarray) -> dict[str, np.ndarray]:
    """Unit vectors from the character towards each named camera."""
    left = np.cross(up, forward)
    return {"front": forward, "back": -forward, "left": left, "right": -left}


def auto_cameras(points: np.ndarray, up: np.ndarray, forward: np.ndarray, *, views=VIEWS, width: int = 256,
                 height: int = 256, fov_y_deg: float = 35.0, elevation_deg: float = 10.0, margin: float = 0.08,
                 follow: bool = False) -> Cameras:
    """Cameras around the motion's bounding volume, keeping every point of every frame in frame.

    ``points`` (F, N, 3) world (posed vertices). Fixed cameras look at the
    centre of the clip's bounding box; ``follow`` cameras keep their offset
    from each frame's own box centre.
    """
    points = np.asarray(points, dtype=np.float64)
    up = np.asarray(up, dtype=np.float64)
    dirs = view_directions(forward, up)
    unknown = [v for v in views if v not in dirs]
    if unknown:
        raise InputError(f"unknown view {unknown[0]!r} (known: {', '.join(VIEWS)})")
    k = intrinsics(width, height, fov_y_deg)
    el = np.radians(elevation_deg)
    lo, hi = points.min(1), points.max(1)  # (F, 3)
    centres = 0.5 * (lo + hi) if follow else np.broadcast_to(0.5 * (lo.min(0) + hi.max(0)), lo.shape)
    size = float(np.linalg.norm(hi.max(0) - lo.min(0))) or 1.0
    half_w = 0.5 * width * (1 - 2 * margin)
    half_h = 0.5 * height * (1 - 2 * margin)
    stride = max(1, points.shape[1] // 4000)  # the fit needs the hull, not every vertex
    sample = points[:, ::stride]
    mats, dists = [], []
    for name in views:  # a handful of views: each fit is vectorised over frames and points
        to_cam = np.cos(el) * dirs[name] + np.sin(el) * up
        fwd = -to_cam
        r = look_at(np.zeros(3), fwd, up)[:3, :3]
        rel = np.einsum("ij,fnj->fni", r, sample - centres[:, None])
        need = np.maximum(k[0, 0] * np.abs(rel[..., 0]) / half_w, k[1, 1] * np.abs(rel[..., 1]) / half_h) - rel[..., 2]
        dist = max(float(need.max()), float((-rel[..., 2]).max()) + 0.1 * size, 1e-3)
        dists.append(dist)
        eye = centres + dist * to_cam
        mats.append(look_at(eye, np.broadcast_to(fwd, eye.shape), up))
    w2c = np.stack(mats)
    if not follow:
        w2c = w2c[:, :1]
    depth_span = float(np.linalg.norm(hi.max(0) - lo.min(0)))
    near = max(1e-3, 0.01 * size)
    far = float(max(dists) + 10 * depth_span + 10.0)
    return Cameras(list(views), np.broadcast_to(k, (len(views), 3, 3)).copy(), w2c, width, height, near, far)


def read_usd_camera(stage, path: str, times: np.ndarray, width: int, height: int,
                    file: str | None = None) -> Cameras:
    """A UsdGeom.Camera as :class:`Cameras` (one view named by its prim), per frame at ``times``.

    Focal length over horizontal aperture fixes fx (square pixels, centred
    principal point); the USD camera looks down -Z with +Y up, converted to
    OpenCV axes; translations are scaled by metersPerUnit.
    """
    from pxr import Usd, UsdGeom

    prim = stage.GetPrimAtPath(path) if path.startswith("/") else None
    if not prim or not prim.IsValid():
        raise InputError("no such prim (camera path)", file=file, prim=path)
    if not prim.IsA(UsdGeom.Camera):
        raise InputError(f"is a {prim.GetTypeName() or 'typeless prim'}, not a camera", file=file, prim=path)
    mpu = UsdGeom.GetStageMetersPerUnit(stage)
    cam = UsdGeom.Camera(prim)
    flip = np.diag([1.0, -1.0, -1.0, 1.0])
    mats, ks, clip = [], [], None
    for t in np.asarray(times, dtype=np.float64):  # USD queries: one per frame
        gf = cam.GetCamera(Usd.TimeCode(float(t)))
        if gf.projection != gf.Perspective:
            raise InputError("orthographic cameras are not supported", file=file, prim=path, time=float(t))
        c2w = np.array(gf.transform, dtype=np.float64)  # row-vector camera-to-world
        c2w[3, :3] *= mpu
        lin = c2w[:3, :3] / np.linalg.norm(c2w[:3, :3], axis=1, keepdims=True)
        col = np.eye(4)
        col[:3, :3] = lin.T
        col[:3, 3] = c2w[3, :3]
        mats.append(np.linalg.inv(col @ flip))
        fx = gf.focalLength / gf.horizontalAperture * width
        ks.append([[fx, 0.0, width / 2], [0.0, fx, height / 2], [0.0, 0.0, 1.0]])
        clip = gf.clippingRange
    near = max(float(clip.min) * mpu, 1e-4) if clip is not None else 0.05
    far = float(clip.max) * mpu if clip is not None else 1e4
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return Cameras([name], np.asarray(ks[:1]), np.stack(mats)[None], width, height, near, far)
