"""One ``anymole-usd render`` run: read, place cameras, render in chunks, write atomically."""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from anymole_usd.errors import InputError

from .cameras import VIEWS, Cameras, read_usd_camera


def parse_views(text: str | Sequence[str] | None) -> list[str]:
    if text is None:
        return list(VIEWS)
    names = [v.strip() for v in (text.split(",") if isinstance(text, str) else text)]
    names = [v for v in names if v]
    if not names:
        raise InputError("--views is empty (known: front, left, right, back)")
    for v in names:
        if v not in VIEWS:
            raise InputError(f"unknown view {v!r} (known: {', '.join(VIEWS)})")
    if len(set(names)) != len(names):
        raise InputError(f"a view is listed twice in {','.join(names)}")
    return names


def render_file(path: str, out_dir: str, *, views: Sequence[str] | None = None, size: tuple[int, int] = (256, 256),
                frames: tuple[float, float] | None = None, fmt: str = "png", follow: bool = False,
                camera_paths: Sequence[str] = (), skeleton: str | None = None, proxies: str = "auto",
                ground: bool = True, device: str | None = None, chunk: int = 16, names: str = "time",
                progress: Callable[[int, int], None] | None = None) -> dict:
    """Render ``path`` into ``out_dir``; returns a summary. Raises InputError before writing anything."""
    from .outputs import RenderWriter, annotation_payload, check_format
    from .scene import load_scene
    from .views import Renderer, RenderResult

    started = time.perf_counter()
    if views is None and camera_paths:
        views = []  # USD cameras alone unless views are asked for too
    views = parse_views(views) if views != [] else []
    check_format(fmt)
    if device is not None:
        from anymole_usd.kernels.runtime import resolve_device

        try:
            device = resolve_device(device)
        except Exception:  # noqa: BLE001 - Warp raises plain RuntimeError/ValueError for unknown devices
            raise InputError(f"--device {device!r} is not an available Warp device") from None
    if proxies not in ("auto", "always", "never"):
        raise InputError(f"--proxies must be auto, always or never, got {proxies!r}")
    scene = load_scene(path, skeleton=skeleton, frames=frames, proxies=proxies)
    usd_cams = []
    for cam_path in camera_paths:
        if scene.stage is None:
            raise InputError("--camera needs a USD file", file=path, prim=cam_path)
        usd_cams.append(read_usd_camera(scene.stage, cam_path, scene.motion.times, size[1], size[0], file=path))
    view_names = list(views) + [c.names[0] for c in usd_cams]
    if len(set(view_names)) != len(view_names):
        raise InputError(f"two views share a name: {', '.join(view_names)}")
    renderer = Renderer(scene.character, device=device, ground=ground)
    pose = renderer.pose(scene.motion)
    sets = [renderer.auto_cameras(pose, views=views, size=size, follow=follow)] if views else []
    cameras = Cameras.concatenate(sets + usd_cams, scene.motion.num_frames)
    n = scene.motion.num_frames
    with RenderWriter(out_dir, cameras.names, fmt, fps=scene.motion.fps, names=names) as writer:
        chunks = []
        for part in renderer.iter_chunks(scene.motion, cameras, pose=pose, chunk=chunk):
            writer.add(part.images, part.times)
            part.images = part.depth = part.parts = None  # keep annotations only: bounded memory
            chunks.append(part)
            if progress:
                progress(writer.count, n)
        result = _join_annotations(chunks, RenderResult)
        meta = {
            "file": os.path.abspath(path), "skeleton": scene.skeleton_path, "animation": scene.animation_path,
            "fps": scene.motion.fps, "format": fmt, "width": size[1], "height": size[0],
            "proxies": scene.character.is_proxy, "up_axis": scene.character.up_axis,
            "meters_per_unit": scene.character.meters_per_unit, "names": names,
            "parents": scene.character.skeleton.parents.tolist(),
            "units": "metres (world space, metersPerUnit applied)",
        }
        data, arrays = annotation_payload(result, writer, meta, joints_world=pose.joints)
        writer.write_annotations(data, arrays)
        written = writer.commit()
    return {
        "file": os.path.abspath(path), "output": os.path.abspath(out_dir), "views": cameras.names,
        "frames": n, "times": [float(scene.motion.times[0]), float(scene.motion.times[-1])],
        "size": [size[0], size[1]], "format": fmt, "names": names, "proxies": scene.character.is_proxy,
        "skeleton": scene.skeleton_path, "written": written, "device": renderer.device,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _join_annotations(chunks, RenderResult):
    from .annotations import JointAnnotations

    first = chunks[0]
    return RenderResult(None, None, None, JointAnnotations.concatenate([c.joints for c in chunks]), first.cameras,
                        np.concatenate([c.times for c in chunks]), first.joint_names)
