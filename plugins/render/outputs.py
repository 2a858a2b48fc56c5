"""Writing renders: a PNG sequence (always) or an MP4 (imageio-ffmpeg) per view, plus annotations.

Everything goes to a staging folder first and is moved into the output
folder only when every frame has been written, so a failure leaves nothing
partial behind. Layout::

    out/front/0036.png ...         named by time code (``names="time"``, the default), or
    out/front/frame_0000.png ...   by index (``names="index"``), or out/front.mp4
    out/annotations.json           per frame and view: joint pixels, depth, NDC depth, visibility
    out/annotations.npz            the same as arrays, plus cameras and world joint positions
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile

import numpy as np

from anymole_usd.errors import InputError

FORMATS = ("png", "mp4")


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise InputError("MP4 output needs imageio-ffmpeg (pip install imageio-ffmpeg, or anymole-usd[video]); "
                         "--format png works without it")


class RenderWriter:
    """Stream frames of every view into a staging folder; :meth:`commit` moves them into ``out_dir``."""

    def __init__(self, out_dir: str | os.PathLike, views: list[str], fmt: str = "png", fps: float = 24.0,
                 names: str = "time") -> None:
        from .frame_names import NAMINGS

        check_format(fmt)
        if names not in NAMINGS:
            raise InputError(f"--names must be one of {', '.join(NAMINGS)}, got {names!r}")
        self.names = names
        self.times: list[float] = []  # time code of every frame added so far
        self.out_dir = os.path.abspath(os.fspath(out_dir))
        self.views = list(views)
        self.fmt = fmt
        self.fps = float(fps)
        self.count = 0
        self._videos: dict[str, object] = {}
        # PNG encoding releases the GIL: one writer thread overlaps it with ray casting.
        self._pool = None
        self._pending: list = []
        if os.path.exists(self.out_dir) and not os.path.isdir(self.out_dir):
            raise InputError("output path exists and is not a folder", file=self.out_dir)
        self._created = not os.path.exists(self.out_dir)
        host = self.out_dir if not self._created else os.path.dirname(self.out_dir)
        if not os.path.isdir(host):
            raise InputError("the output folder's parent does not exist", file=self.out_dir)
        try:
            self.staging = tempfile.mkdtemp(prefix=".anymole-render-", dir=host)
        except OSError as exc:
            raise InputError(f"output folder cannot be written ({exc.strerror})", file=self.out_dir) from None
        for v in self.views:
            if fmt == "png":
                os.mkdir(os.path.join(self.staging, v))

    def add(self, images: np.ndarray, times=None) -> None:
        """Append frames: (V, F, H, W, 3) uint8 in view order, at ``times`` (F,) time codes.

        ``times`` may be left out only when frames are named by index."""
        import imageio.v3 as iio

        if times is None:
            if self.names == "time":
                raise ValueError("frames named by time need their times")
            times = [float("nan")] * images.shape[1]
        self.times.extend(float(t) for t in times)

        for vi, view in enumerate(self.views):
            frames = images[vi]
            if self.fmt == "png":
                if self._pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._pool = ThreadPoolExecutor(max_workers=1)
                for k, frame in enumerate(frames):  # one file per frame
                    path = os.path.join(self.staging, self.image_path(view, self.count + k))
                    self._pending.append(self._pool.submit(iio.imwrite, path, frame, compress_level=1))
                while len(self._pending) > 256:  # bounded memory when encoding falls behind
                    self._pending.pop(0).result()
            else:
                writer = self._videos.get(view)
                if writer is None:
                    import imageio.v2 as iio2

                    writer = iio2.get_writer(os.path.join(self.staging, f"{view}.mp4"), fps=self.fps,
                                             codec="libx264", quality=8, macro_block_size=1)
                    self._videos[view] = writer
                for frame in frames:
                    writer.append_data(frame)
        self.count += images.shape[1]

    def image_path(self, view: str, index: int) -> str:
        """Path of frame ``index`` of ``view``, relative to the output folder."""
        from .frame_names import frame_file_name

        if self.fmt != "png":
            return f"{view}.mp4"
        return f"{view}/{frame_file_name(self.names, index, self.times[index])}"

    def write_annotations(self, data: dict, arrays: dict) -> None:
        with open(os.path.join(self.staging, "annotations.json"), "w") as fh:
            json.dump(data, fh, separators=(",", ":"))
        np.savez_compressed(os.path.join(self.staging, "annotations.npz"), **arrays)

    def _finish_pngs(self) -> None:
        try:
            for fut in self._pending:
                fut.result()  # re-raises a failed write
        finally:
            self._pending.clear()
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def commit(self) -> list[str]:
        """Move the staged outputs into place; returns the written names."""
        self._finish_pngs()
        for w in self._videos.values():
            w.close()
        self._videos.clear()
        names = sorted(os.listdir(self.staging))
        if self._created:
            from anymole_usd.atomic_files import new_dir_mode

            os.chmod(self.staging, new_dir_mode())  # mkdtemp makes 0700: other users could not read the renders
            os.replace(self.staging, self.out_dir)
            return names
        for name in names:  # replace our own earlier outputs of the same name only
            dst = os.path.join(self.out_dir, name)
            if os.path.isdir(dst) and not os.path.islink(dst):
                shutil.rmtree(dst)
            os.replace(os.path.join(self.staging, name), dst)
        os.rmdir(self.staging)
        return names

    def abort(self) -> None:
        try:
            self._finish_pngs()
        except Exception:  # noqa: BLE001, S110 - cleaning up after another failure; report that one
            pass
        for w in self._videos.values():
            try:
                w.close()
            except Exception:  # noqa: BLE001, S110 - cleaning up after another failure; report that one
                pass
        self._videos.clear()
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> RenderWriter:  # noqa: PYI034
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def annotation_payload(result, writer: RenderWriter | None = None, meta: dict | None = None,
                       joints_world: np.ndarray | None = None) -> tuple[dict, dict]:
    """(JSON dict, NPZ arrays) for a whole-clip :class:`~.views.RenderResult`."""
    cams = result.cameras
    ann = result.joints
    views = list(cams.names)
    frames = []
    w2c = cams.frames(len(result.times))
    for f, t in enumerate(result.times):
        per_view = {}
        for v, name in enumerate(views):
            per_view[name] = {
                "image": writer.image_path(name, f) if writer else None,
                "joints_px": np.round(ann.pixels[v, f], 3).tolist(),
                "depth": np.round(ann.depth[v, f], 5).tolist(),
                "depth_ndc": np.round(ann.depth_ndc[v, f], 6).tolist(),
                "visible": ann.visible[v, f].astype(int).tolist(),
                "in_frame": ann.in_frame[v, f].astype(int).tolist(),
            }
            if cams.num_frames > 1:
                per_view[name]["world_to_cam"] = w2c[v, f].tolist()
        frames.append({"index": f, "time": float(t), "views": per_view})
    data = dict(meta or {})
    data.update({
        "views": views,
        "joints": list(result.joint_names),
        "times": [float(t) for t in result.times],
        "cameras": cams.to_dict() if cams.num_frames == 1 else {**cams.to_dict(), "world_to_cam": "per frame"},
        "frames": frames,
    })
    arrays = {
        "times": np.asarray(result.times), "views": np.asarray(views), "joints": np.asarray(result.joint_names),
        "pixels": ann.pixels, "depth": ann.depth, "depth_ndc": ann.depth_ndc, "visible": ann.visible,
        "in_frame": ann.in_frame, "K": cams.K, "world_to_cam": w2c, "near": cams.near, "far": cams.far,
        "image_size": np.array([cams.height, cams.width]),
    }
    if joints_world is not None:
        arrays["joints_world"] = joints_world
    return data, arrays
