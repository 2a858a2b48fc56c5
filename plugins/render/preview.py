"""Previews of an in-betweening result: marked frames as a contact sheet (PNG) or a video (MP4).

Each frame carries a coloured bar and a label saying what it is: context
(blue), keyframe (green), generated (orange), other authored samples (grey)
or USD-interpolated between samples (light grey). With a reference the
ground truth is drawn beside the result, from the same cameras.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from anymole_usd.errors import InputError
from anymole_usd.timeline import TIME_TOLERANCE

ROLES = ("authored", "context", "keyframe", "generated", "interpolated")
ROLE_COLOURS = np.array([[150, 150, 150], [60, 110, 220], [40, 170, 70], [240, 140, 30], [205, 205, 205]],
                        dtype=np.uint8)


@dataclass
class FrameRoles:
    times: np.ndarray
    roles: np.ndarray  # (F,) index into ROLES
    source: str  # "provenance" or "timeline"


def frame_roles(times: np.ndarray, authored: np.ndarray, provenance=None) -> FrameRoles:
    """Role of every rendered time, from the result's provenance, else from context/key detection."""
    from anymole_usd.timeline import build_timeline

    times = np.asarray(times, dtype=np.float64)

    def member(ts) -> np.ndarray:
        ts = np.asarray(ts, dtype=np.float64).reshape(-1)
        if ts.size == 0:
            return np.zeros(len(times), dtype=bool)
        return np.any(np.abs(times[:, None] - ts[None]) <= TIME_TOLERANCE, axis=1)

    roles = np.where(member(authored), 0, 4)
    if provenance is not None:
        a, b = provenance.context_range
        roles[(times >= a - TIME_TOLERANCE) & (times <= b + TIME_TOLERANCE) & member(authored)] = 1
        roles[member(provenance.keyframes)] = 2
        roles[member(provenance.generated_times)] = 3
        return FrameRoles(times, roles, "provenance")
    tl = build_timeline(authored)
    roles[member(tl.context_times)] = 1
    roles[member(tl.keys)] = 2
    return FrameRoles(times, roles, "timeline")


def mark(image: np.ndarray, role: int, label: str) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) with a role-coloured bar and border and a text label."""
    from PIL import Image, ImageDraw

    out = image.copy()
    bar = max(3, out.shape[0] // 40)
    colour = ROLE_COLOURS[role]
    out[:bar] = colour
    out[:, :2] = colour
    out[:, -2:] = colour
    out[-2:] = colour
    pil = Image.fromarray(out)
    ImageDraw.Draw(pil).text((4, bar + 2), label, fill=tuple(int(c) for c in colour))
    return np.asarray(pil)


def contact_sheet(tiles: np.ndarray, columns: int = 8, gap: int = 4) -> np.ndarray:
    """(N, H, W, 3) -> one image laid out in rows of ``columns``."""
    n, h, w = tiles.shape[:3]
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    sheet = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):  # a few dozen tiles
        r, c = divmod(i, columns)
        sheet[gap + r * (h + gap):gap + r * (h + gap) + h, gap + c * (w + gap):gap + c * (w + gap) + w] = tile
    return sheet


def sheet_indices(roles: np.ndarray, max_tiles: int = 48) -> np.ndarray:
    """Frames for a contact sheet: every keyframe, plus an even spread of the rest."""
    n = len(roles)
    keys = np.flatnonzero(roles == 2)
    step = max(1, int(np.ceil(n / max(1, max_tiles - len(keys)))))
    return np.union1d(keys, np.arange(0, n, step))


def write_preview(path: str, out: str | None = None, *, reference: str | None = None, view: str = "front",
                  size: tuple[int, int] = (256, 256), frames: tuple[float, float] | None = None,
                  columns: int = 8, max_tiles: int = 48, device: str | None = None) -> dict:
    """Render ``path`` (and ``reference``) from one view and write a marked contact sheet or MP4."""
    from anymole_usd.schema import read_provenance

    from .cameras import VIEWS, auto_cameras, facing_direction
    from .outputs import check_format
    from .scene import load_scene
    from .views import Renderer

    if view not in VIEWS:
        raise InputError(f"unknown view {view!r} (known: {', '.join(VIEWS)})")
    out = out or os.path.splitext(path)[0] + ".preview.png"
    ext = os.path.splitext(out)[1].lower()
    if ext not in (".png", ".jpg", ".jpeg", ".mp4"):
        raise InputError("preview output must end in .png, .jpg or .mp4", file=out)
    if ext == ".mp4":
        check_format("mp4")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise InputError("output folder does not exist or cannot be written", file=out)
    scene = load_scene(path, frames=frames)
    prov = None
    if scene.stage is not None and scene.animation_path:
        prov = read_provenance(scene.stage.GetPrimAtPath(scene.animation_path))
    roles = frame_roles(scene.motion.times, scene.authored_times, prov)
    renderer = Renderer(scene.character, device=device)
    pose = renderer.pose(scene.motion)
    points = pose.vertices
    ref_renderer = ref_pose = ref_scene = None
    if reference:
        ref_scene = load_scene(reference, times=scene.motion.times)
        if ref_scene.motion.num_frames != scene.motion.num_frames:
            raise InputError("the reference does not cover the result's frames", file=reference)
        ref_renderer = Renderer(ref_scene.character, device=device)
        ref_pose = ref_renderer.pose(ref_scene.motion)
        points = np.concatenate([points, ref_pose.vertices], 1)  # one framing for both
    ch = scene.character
    cams = auto_cameras(points, ch.up, facing_direction(pose.joints, ch.sides, ch.up), views=(view,),
                        width=size[1], height=size[0])
    images = renderer.render(scene.motion, cams).images[0]
    if ref_renderer is not None:
        ref_images = ref_renderer.render(ref_scene.motion, cams).images[0]
        images = np.concatenate([images, ref_images], 2)
    labels = [f"{t:g} {ROLES[r]}" for t, r in zip(roles.times, roles.roles)]
    tmp = f"{out}.tmp-{os.getpid()}{ext}"
    try:
        if ext == ".mp4":
            import imageio.v2 as iio2

            with iio2.get_writer(tmp, fps=scene.motion.fps, codec="libx264", quality=8, macro_block_size=1) as w:
                for img, r, lab in zip(images, roles.roles, labels):
                    w.append_data(mark(img, int(r), lab))
            shown = len(images)
        else:
            import imageio.v3 as iio

            idx = sheet_indices(roles.roles, max_tiles)
            tiles = np.stack([mark(images[i], int(roles.roles[i]), labels[i]) for i in idx])
            iio.imwrite(tmp, contact_sheet(tiles, columns), extension=ext)
            shown = len(idx)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    counts = {name: int((roles.roles == i).sum()) for i, name in enumerate(ROLES)}
    return {"file": os.path.abspath(path), "output": os.path.abspath(out), "reference": reference,
            "view": view, "frames": len(images), "shown": int(shown), "roles_from": roles.source,
            "counts": counts}
