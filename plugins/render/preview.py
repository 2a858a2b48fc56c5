"""Previews of an in-betweening result: labelled panels framed on the character, as a contact sheet or a video.

A preview shows one panel per motion: the result, the ground truth
(``reference``) and any other prior run on the same gaps (``compare``), each
labelled with its name on every tile. Every tile also carries a bar in the
colour of the frame's role with its time code: context (blue), keyframe
(green), generated (orange), other authored samples (grey) or
USD-interpolated between samples (light grey).

One camera path serves every panel. It follows the characters' horizontal
centre (smoothed over a quarter second) at a fixed height and distance fitted
so every panel's character stays in frame on every frame: the character fills
the tile instead of the whole walk path, and a result that drifts away from
the reference shows as an offset between panels rather than being re-centred.

The contact sheet lays frames out in strips (one row per panel) whose width
fits 1,600 px at the default tile size; with a result it shows the frames
around and inside the gaps (every keyframe, the known sample before each gap
and an even spread of generated frames), else an even spread of the clip.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from anymole_usd.errors import InputError
from anymole_usd.timeline import TIME_TOLERANCE

ROLES = ("authored", "context", "keyframe", "generated", "interpolated")
ROLE_COLOURS = np.array([[150, 150, 150], [60, 110, 220], [40, 170, 70], [240, 140, 30], [205, 205, 205]],
                        dtype=np.uint8)
SHEET_WIDTH = 1600  # px: the default column count keeps a contact sheet this wide or less
TILE_GAP, STRIP_GAP = 4, 14  # px between tiles, and between strips of a contact sheet


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


# --------------------------------------------------------------------------- panels


@dataclass
class Panel:
    """One labelled view of a motion: what it is called and the character that performs it."""

    name: str
    character: object  # plugins.render.character.Character
    motion: object  # anymole_usd.motion.Motion, at the frames to draw


def auto_view(vertices: np.ndarray, up: np.ndarray, forward: np.ndarray) -> str:
    """'front' for an upright character, 'left' for one longer along its facing direction than it is tall
    (a quadruped seen from the front is mostly its head)."""
    length = np.median(np.ptp(vertices @ forward, axis=1))
    height = np.median(np.ptp(vertices @ up, axis=1))
    return "left" if length > 0.9 * height else "front"


def framing_cameras(point_sets: Sequence[np.ndarray], up: np.ndarray, forward: np.ndarray, *, view: str = "front",
                    size: tuple[int, int] = (240, 192), fps: float = 24.0, fov_y_deg: float = 35.0,
                    elevation_deg: float = 10.0, margin: float = 0.05, margin_y: float = 0.11,
                    smooth_seconds: float = 0.25):
    """One camera path that frames the character(s), not the whole path.

    ``point_sets``: posed vertices (F, N, 3) of each panel, world metres, same
    frames. The camera looks at the panels' mean box centre: its horizontal
    part smoothed with a Gaussian of ``smooth_seconds``, its height the clip's
    median, so it neither jitters with the limbs nor bobs with the steps. The
    distance is the smallest that keeps every point of every panel inside the
    frame, less ``margin`` at the sides and ``margin_y`` at the top and bottom
    (where the labels go), on every frame.
    """
    from scipy.ndimage import gaussian_filter1d

    from .cameras import Cameras, intrinsics, look_at, view_directions

    up = np.asarray(up, dtype=np.float64)
    height, width = size
    boxes = [0.5 * (p.min(1) + p.max(1)) for p in point_sets]  # (F, 3) per panel
    centre = np.mean(boxes, axis=0)
    level = np.median(centre @ up)
    flat = centre - np.outer(centre @ up, up)
    if len(flat) > 2:
        flat = gaussian_filter1d(flat, sigma=max(0.5, smooth_seconds * fps), axis=0, mode="nearest")
    centres = flat + level * up
    k = intrinsics(width, height, fov_y_deg)
    el = np.radians(elevation_deg)
    to_cam = np.cos(el) * view_directions(forward, up)[view] + np.sin(el) * up
    r = look_at(np.zeros(3), -to_cam, up)[:3, :3]
    half_w, half_h = 0.5 * width * (1 - 2 * margin), 0.5 * height * (1 - 2 * margin_y)
    need, extent = 1e-3, 0.0
    for p in point_sets:  # a few panels; each fit is vectorised over frames and points
        sample = p[:, ::max(1, p.shape[1] // 2000)]  # the fit needs the hull, not every vertex
        rel = np.einsum("ij,fnj->fni", r, sample - centres[:, None])
        fit = np.maximum(k[0, 0] * np.abs(rel[..., 0]) / half_w, k[1, 1] * np.abs(rel[..., 1]) / half_h) - rel[..., 2]
        need = max(need, float(fit.max()), float((-rel[..., 2]).max()) * 1.1)
        extent = max(extent, float(np.ptp(sample.reshape(-1, 3), axis=0).max()))
    eye = centres + need * to_cam
    w2c = look_at(eye, np.broadcast_to(-to_cam, eye.shape), up)[None]
    near = max(1e-3, 0.01 * need)
    far = float(need + 10 * extent + 10.0)
    return Cameras([view], k[None], w2c, width, height, near, far)


class PanelRenderer:
    """Renders frames of every panel through one shared camera path (:func:`framing_cameras`).

    The camera path is fitted on every frame of the panels' motions once; panels of one character share
    its Warp state, so rendering a clip at a time (a report's gaps) costs no set-up per call.
    """

    def __init__(self, panels: Sequence[Panel], *, view: str = "auto", size: tuple[int, int] = (240, 192),
                 device: str | None = None) -> None:
        from .cameras import VIEWS, facing_direction
        from .views import Renderer

        if view != "auto" and view not in VIEWS:
            raise InputError(f"unknown view {view!r} (known: auto, {', '.join(VIEWS)})")
        self.panels = list(panels)
        renderers: dict[int, Renderer] = {}
        self.renderers, poses = [], []
        for p in self.panels:
            r = renderers.setdefault(id(p.character), Renderer(p.character, device=device))
            self.renderers.append(r)
            poses.append(r.pose(p.motion))
        first = self.panels[0].character
        forward = facing_direction(poses[0].joints, first.sides, first.up)
        self.view = auto_view(poses[0].vertices, first.up, forward) if view == "auto" else view
        self.cameras = framing_cameras([pose.vertices for pose in poses], first.up, forward, view=self.view, size=size,
                                       fps=float(self.panels[0].motion.fps))

    def render(self, indices: np.ndarray | None = None) -> np.ndarray:
        """(P, F, H, W, 3) uint8 images of frames ``indices`` (default all) of every panel."""
        if indices is None:
            return np.stack([r.render(p.motion, self.cameras).images[0] for p, r in zip(self.panels, self.renderers)])
        indices = np.asarray(indices, dtype=np.int64)
        cams = self.cameras.select_frames(indices)
        return np.stack([r.render(p.motion.select(indices), cams).images[0]
                         for p, r in zip(self.panels, self.renderers)])


def render_panels(panels: Sequence[Panel], *, view: str = "auto", size: tuple[int, int] = (240, 192),
                  device: str | None = None, indices: np.ndarray | None = None) -> np.ndarray:
    """(P, F, H, W, 3) uint8 renders of frames ``indices`` (default all) of every panel, one camera path."""
    return PanelRenderer(panels, view=view, size=size, device=device).render(indices)


@functools.lru_cache(maxsize=8)
def label_font(px: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)  # scalable with FreeType
    except (TypeError, OSError):  # pragma: no cover - Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def label_tile(image: np.ndarray, name: str, caption: str, role: int) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) with a role-coloured bar holding ``caption`` at the top, a border in
    the same colour, and ``name`` in a dark box at the bottom left."""
    from PIL import Image, ImageDraw

    h = image.shape[0]
    px = max(11, h // 15)
    font = label_font(px)
    colour = tuple(int(c) for c in ROLE_COLOURS[role])
    pil = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(pil)
    bar = px + 6
    draw.rectangle([0, 0, pil.width - 1, bar - 1], fill=colour)
    draw.rectangle([0, 0, pil.width - 1, pil.height - 1], outline=colour, width=2)
    draw.text((5, 3), caption, fill=(255, 255, 255), font=font)
    if name:
        left, top, right, bottom = draw.textbbox((0, 0), name, font=font)
        y = pil.height - (bottom - top) - 10
        draw.rectangle([4, y - 3, 4 + right - left + 8, pil.height - 5], fill=(30, 30, 30))
        draw.text((8, y - top), name, fill=(255, 255, 255), font=font)
    return np.asarray(pil)


def labelled_frames(images: np.ndarray, names: Sequence[str], times: np.ndarray, roles: np.ndarray) -> np.ndarray:
    """(P, N, H, W, 3) renders -> the same tiles labelled with their panel name, time code and role
    (``times``, ``roles``: (N,) for the N frames)."""
    return np.stack([np.stack([label_tile(images[p, i], names[p], f"{times[i]:g}  {ROLES[roles[i]]}", int(roles[i]))
                               for i in range(images.shape[1])]) for p in range(len(images))])


def side_by_side(tiles: np.ndarray, gap: int = TILE_GAP) -> np.ndarray:
    """(P, H, W, 3) -> (H, P*(W+gap)-gap, 3) on white."""
    p, h, w = tiles.shape[:3]
    row = np.full((h, p * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for i in range(p):
        row[:, i * (w + gap):i * (w + gap) + w] = tiles[i]
    return row


def sheet_columns(width: int, gap: int = TILE_GAP, limit: int = SHEET_WIDTH) -> int:
    """How many tiles of ``width`` px fit across ``limit`` px."""
    return max(1, (limit - gap) // (width + gap))


def contact_sheet(tiles: np.ndarray, columns: int = 8, gap: int = TILE_GAP, strip_gap: int = STRIP_GAP) -> np.ndarray:
    """(P, N, H, W, 3) -> one image: strips of ``columns`` frames, one row per panel in each strip."""
    p, n, h, w = tiles.shape[:4]
    columns = max(1, min(columns, n))
    strips = -(-n // columns)
    strip_h = p * (h + gap) - gap
    sheet = np.full((strips * (strip_h + strip_gap) - strip_gap + 2 * gap, columns * (w + gap) + gap, 3), 255,
                    dtype=np.uint8)
    for i in range(n):  # a few dozen tiles
        s, c = divmod(i, columns)
        x = gap + c * (w + gap)
        for q in range(p):
            y = gap + s * (strip_h + strip_gap) + q * (h + gap)
            sheet[y:y + h, x:x + w] = tiles[q, i]
    return sheet


def sheet_indices(roles: np.ndarray, max_tiles: int = 24) -> np.ndarray:
    """Frames for a contact sheet, in time order.

    With generated frames: every keyframe, the known sample before each gap,
    and an even spread of the generated frames up to ``max_tiles``. Without:
    every keyframe and an even spread of the clip.
    """
    roles = np.asarray(roles)
    n = len(roles)
    keys = np.flatnonzero(roles == 2)
    generated = np.flatnonzero(roles == 3)
    if len(generated):
        starts = generated[np.concatenate([[True], np.diff(generated) > 1])]
        fixed = np.union1d(keys, starts[starts > 0] - 1)
        pool = generated
    else:
        fixed, pool = keys, np.arange(n)
    room = max(1, max_tiles - len(fixed))
    spread = pool[np.unique(np.round(np.linspace(0, len(pool) - 1, min(room, len(pool)))).astype(int))]
    return np.union1d(fixed, spread)


# --------------------------------------------------------------------------- the command


@dataclass
class PreviewInputs:
    """What a preview or a report draws: the scene, its provenance and frame roles, the panels, the prior runs."""

    scene: object  # plugins.render.scene.Scene of the result
    provenance: object | None  # anymole_usd.schema.Provenance, None when no result is composed
    roles: FrameRoles
    panels: list[Panel]
    runs: list  # plugins.report.compare.CompareRun of each compared prior


def preview_panels(path: str, *, reference: str | None = None, compare: Sequence[str] = (),
                   frames: tuple[float, float] | None = None, skeleton: str | None = None,
                   progress=None) -> PreviewInputs:
    """The panels of a preview, in this order: the result (named after its prior when a result is composed),
    each prior of ``compare`` run in memory on the same gaps, the reference."""
    from anymole_usd.schema import read_provenance

    from .scene import load_scene

    scene = load_scene(path, frames=frames, skeleton=skeleton)
    prov = None
    if scene.stage is not None and scene.animation_path:
        prov = read_provenance(scene.stage.GetPrimAtPath(scene.animation_path))
    roles = frame_roles(scene.motion.times, scene.authored_times, prov)
    result_name = f"result ({prov.prior})" if prov is not None and prov.prior else "result"
    panels = [Panel(result_name, scene.character, scene.motion)]
    runs = []
    if compare:
        from anymole_usd.plugins.report.compare import compare_priors

        runs = compare_priors(scene, prov, compare, progress=progress)
        panels += [Panel(run.name, scene.character, run.motion) for run in runs if run.motion is not None]
    if reference:
        ref_scene = load_scene(reference, times=scene.motion.times)
        if ref_scene.motion.num_frames != scene.motion.num_frames:
            raise InputError(f"the reference does not cover the result's frames {scene.motion.times[0]:g}:"
                             f"{scene.motion.times[-1]:g}", file=reference)
        panels.append(Panel("reference", ref_scene.character, ref_scene.motion))
    return PreviewInputs(scene, prov, roles, panels, runs)


def write_preview(path: str, out: str | None = None, *, reference: str | None = None, compare: Sequence[str] = (),
                  view: str = "auto", size: tuple[int, int] = (240, 192), frames: tuple[float, float] | None = None,
                  columns: int | None = None, max_tiles: int = 24, device: str | None = None,
                  progress=None) -> dict:
    """Render ``path`` (with ``reference`` and ``compare`` priors as extra panels) and write a labelled contact
    sheet (.png/.jpg) or side-by-side video (.mp4). ``columns`` defaults to what fits in 1,600 px."""
    from .cameras import VIEWS
    from .outputs import check_format

    if view != "auto" and view not in VIEWS:
        raise InputError(f"unknown view {view!r} (known: auto, {', '.join(VIEWS)})")
    out = out or os.path.splitext(path)[0] + ".preview.png"
    ext = os.path.splitext(out)[1].lower()
    if ext not in (".png", ".jpg", ".jpeg", ".mp4"):
        raise InputError("preview output must end in .png, .jpg or .mp4", file=out)
    if ext == ".mp4":
        check_format("mp4")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise InputError("output folder does not exist or cannot be written", file=out)
    inputs = preview_panels(path, reference=reference, compare=compare, frames=frames, progress=progress)
    scene, roles, panels = inputs.scene, inputs.roles, inputs.panels
    names = [p.name for p in panels]
    n = scene.motion.num_frames
    idx = np.arange(n) if ext == ".mp4" else sheet_indices(roles.roles, max_tiles)
    renderer = PanelRenderer(panels, view=view, size=size, device=device)
    images = renderer.render(idx)
    tiles = labelled_frames(images, names, roles.times[idx], roles.roles[idx])
    from anymole_usd.atomic_files import staging

    with staging(out) as tmp:
        if ext == ".mp4":
            from anymole_usd.plugins.report.clips import write_video

            write_video(tmp, (side_by_side(tiles[:, i]) for i in range(tiles.shape[1])), scene.motion.fps)
            width = side_by_side(tiles[:, 0]).shape[1]
        else:
            import imageio.v3 as iio

            sheet = contact_sheet(tiles, columns or sheet_columns(size[1]))
            iio.imwrite(tmp, sheet, extension=ext)
            width = sheet.shape[1]
    counts = {name: int((roles.roles == i).sum()) for i, name in enumerate(ROLES)}
    return {"file": os.path.abspath(path), "output": os.path.abspath(out), "reference": reference,
            "panels": names, "view": renderer.view, "frames": n, "shown": int(tiles.shape[1]), "width": int(width),
            "roles_from": roles.source, "counts": counts}
