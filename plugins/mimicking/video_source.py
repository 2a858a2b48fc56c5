"""Video sources for mimicking: ``folder``, a video job folder or a directory of images named by frame time.

A folder holding ``job.json`` is a video job (``anymole-usd video prepare``): its
answer (one video file, ``frames/frame_<index>.png`` or ``frames/<time>.png``) is
read against the job (:mod:`anymole_usd.plugins.video.job_frames`).

Any other folder holds images named by time code (:mod:`anymole_usd.plugins.render.frame_names`):
``<time>.<ext>`` where ``<time>`` is the frame's stage time code as a
decimal number, optionally zero-padded (``0036.png``, ``36.png``, ``36.5.png``,
``0037.600.jpg``); extensions png, jpg, jpeg (case-insensitive). A requested time
matches a file whose number is within 1e-3 of it. All images must be RGB(A) of
one size (alpha is dropped); other files in the folder are ignored. Missing
frames, mixed or wrong sizes and unreadable images raise a one-line InputError
(exit code 2 in the CLI) naming the file or the time.

Other sources (the diffusion model in ``anymole_usd.plugins.video``) implement
the same ``VideoPrior`` interface and register under ``anymole_usd.video_sources``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from anymole_usd.errors import InputError
from anymole_usd.parameters import Param, Parameters
from anymole_usd.plugins.render.frame_names import name_time, time_name
from anymole_usd.plugins.video.interface import VideoPrior

TIME_TOLERANCE = 1e-3


def frame_name(time: float, pad: int = 4) -> str:
    """The file name the folder source expects for ``time`` (``0036.png``, ``0036.5.png``)."""
    return time_name(time, pad)


def scan_folder(folder: str | Path) -> dict[float, Path]:
    """{time: path} of every image named by frame time in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"video folder {folder} does not exist or is not a directory", file=str(folder))
    out: dict[float, Path] = {}
    for p in sorted(folder.iterdir()):
        t = name_time(p.name)
        if t is not None and p.is_file():
            if any(abs(t - u) < TIME_TOLERANCE for u in out):
                raise InputError(f"two images for frame time {t:g} ({p.name})", file=str(p))
            out[t] = p
    return out


def read_image(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    try:
        img = np.asarray(iio.imread(path))
    except Exception as exc:  # imageio raises many types for broken files
        raise InputError(f"cannot read image {path.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                         file=str(path)) from None
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, -1)
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        raise InputError(f"image {path.name} is not RGB (shape {img.shape})", file=str(path))
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.integer):
            img = (img.astype(np.float64) / np.iinfo(img.dtype).max * 255).round()
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img[..., :3])


class FolderVideoSource(VideoPrior):
    """Frames from a directory (``--video-dir DIR`` / ``video_dir=DIR``): bring frames from any generator."""

    name = "folder"
    description = "a video job folder (video prepare) or images named by frame time (0036.png, 36.5.png)"
    param_spec = Parameters(
        Param("video_dir", None, "the folder: a `video prepare` job or images named by time code", nullable=True),
    )

    def __init__(self, **params) -> None:
        super().__init__(**params)
        if not self.params.get("video_dir"):
            raise InputError("the folder video source needs video_dir (--video-dir DIR)")
        self.folder = Path(self.params["video_dir"])

    @property
    def job(self):
        """The folder's video job (job.json), or None for a plain folder of time-named frames."""
        from anymole_usd.plugins.video.job import read_job

        if not hasattr(self, "_job"):
            self._job = read_job(self.folder) if self.folder.is_dir() else None
        return self._job

    def frame_size(self) -> tuple[int, int] | None:
        """(H, W) of the frames: the job's size, else the first time-named image's, else None."""
        if self.job is not None:
            return self.job.size
        files = scan_folder(self.folder)
        return read_image(next(iter(files.values()))).shape[:2] if files else None

    def generate(self, known_frames: Mapping[float, np.ndarray], fill_times: Sequence[float], fps: float,
                 prompt: str = "", *, keyframe_times=None, seed: int = 0, progress=None,
                 size: tuple[int, int] | None = None) -> dict[float, np.ndarray]:
        if self.job is not None:
            from anymole_usd.plugins.video.job_frames import job_frames

            frames = job_frames(self.job, progress)
            missing = [t for t in fill_times if not any(abs(t - u) <= TIME_TOLERANCE for u in frames)]
            if missing:
                raise InputError(f"video job {self.folder} has no frame for time {missing[0]:g}: it was prepared "
                                 f"for another grid (--param rate?)", file=str(self.folder), time=float(missing[0]))
            keys = np.asarray(sorted(frames))
            return {float(t): frames[float(keys[np.argmin(np.abs(keys - t))])] for t in fill_times}
        files = scan_folder(self.folder)
        if size is None and known_frames:
            size = tuple(np.asarray(next(iter(known_frames.values()))).shape[:2])
        times = np.asarray(sorted(files))
        out: dict[float, np.ndarray] = {}
        for i, t in enumerate(fill_times):
            j = int(np.argmin(np.abs(times - t))) if len(times) else -1
            if j < 0 or abs(times[j] - t) > TIME_TOLERANCE:
                raise InputError(f"video folder {self.folder} has no frame for time {t:g} "
                                 f"(expected e.g. {frame_name(float(t))})", file=str(self.folder), time=float(t))
            img = read_image(files[times[j]])
            if size is not None and tuple(img.shape[:2]) != tuple(size):
                raise InputError(f"image {files[times[j]].name} is {img.shape[1]}x{img.shape[0]}, expected "
                                 f"{size[1]}x{size[0]} (the render size)", file=str(files[times[j]]), time=float(t))
            size = tuple(img.shape[:2])
            out[float(t)] = img
            if progress is not None:
                progress("video: reading frames", (i + 1) / max(1, len(fill_times)))
        return out
