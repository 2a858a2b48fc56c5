"""Reading a generator's answer back against its video job (``inbetween --video-dir JOB``).

Accepted, exactly one of:

- one video file (``.mp4``, ``.webm``, ``.mov``, ``.mkv``) in JOB besides the job's own
  conditioning.mp4 and mask.mp4, with the job's frame count;
- ``JOB/frames/frame_<index>.png`` for every index of job.json's ``times``;
- ``JOB/frames/<time>.png`` (named by time code) for every frame to generate.

Frames of another size are resized when their aspect ratio is the job's (within
1%); otherwise the error names the size expected. Every problem is a one-line
InputError (exit 2) naming the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from anymole_usd.errors import InputError

from .job import TOLERANCE, VideoJob

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv")
JOB_VIDEOS = ("conditioning.mp4", "mask.mp4")
ASPECT_TOLERANCE = 0.01


def fit_size(images: np.ndarray, size: tuple[int, int], source: str) -> np.ndarray:
    """``images`` (N, h, w, 3) at ``size`` (H, W): resized when the aspect matches, else InputError."""
    h, w = images.shape[1:3]
    if (h, w) == tuple(size):
        return images
    if abs((w / h) / (size[1] / size[0]) - 1.0) > ASPECT_TOLERANCE:
        raise InputError(f"frames are {w}x{h} (width x height) but the job needs {size[1]}x{size[0]} or the same "
                         f"aspect ratio", file=source)
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.Resampling.LANCZOS))
                     for img in images])


def read_video(path: Path) -> np.ndarray:
    """(N, H, W, 3) uint8 frames of a video file."""
    import imageio.v3 as iio

    try:
        frames = np.asarray(iio.imread(path, index=None))
    except Exception as exc:  # imageio/ffmpeg raise many types for broken or unsupported files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read video: {first}", file=str(path)) from None
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3, 4):
        raise InputError(f"not an RGB video (shape {frames.shape})", file=str(path))
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, -1)
    return np.ascontiguousarray(frames[..., :3].astype(np.uint8))


def _answers(job: VideoJob) -> tuple[list[Path], list[Path]]:
    videos = sorted(p for p in job.folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                    and p.name not in JOB_VIDEOS)
    folder = job.folder / "frames"
    images = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    return videos, images


def job_frames(job: VideoJob, progress=None) -> dict[float, np.ndarray]:
    """{time: (H, W, 3) uint8} for every frame the job asks to generate."""
    from anymole_usd.plugins.render.frame_names import name_index, name_time, time_name

    from anymole_usd.plugins.mimicking.video_source import read_image

    videos, files = _answers(job)
    n, fill = job.num_frames, job.fill_times
    if len(videos) > 1:
        raise InputError(f"several videos in the job folder ({', '.join(p.name for p in videos)}): keep one",
                         file=str(job.folder))
    if videos and files:
        raise InputError(f"both {videos[0].name} and frames/ in the job folder: keep one", file=str(job.folder))
    if videos:
        if progress:
            progress(f"video: reading {videos[0].name}", 0.0)
        frames = read_video(videos[0])
        if len(frames) != n:
            raise InputError(f"video has {len(frames)} frames, the job has {n} (job.json \"times\")",
                             file=str(videos[0]))
        frames = fit_size(frames[~job.known], job.size, str(videos[0]))
        return {float(t): img for t, img in zip(fill, frames)}
    if not files:
        raise InputError(f"no frames in the video job: expected one MP4/WebM with {n} frames, or "
                         f"frames/frame_0000.png ... frame_{n - 1:04d}.png", file=str(job.folder))
    by_index = {name_index(p.name): p for p in files if name_index(p.name) is not None}
    by_time = {name_time(p.name): p for p in files if name_time(p.name) is not None}
    if by_index and by_time:
        raise InputError("frames/ mixes names by index (frame_0000.png) and by time code (0036.png): keep one kind",
                         file=str(job.folder / "frames"))
    if by_index:
        missing = sorted(set(range(n)) - set(by_index))
        if missing:
            raise InputError(f"frames/ has no frame {missing[0]} of 0-{n - 1} (expected frame_{missing[0]:04d}.png)",
                             file=str(job.folder / "frames"))
        extra = sorted(set(by_index) - set(range(n)))
        if extra:
            raise InputError(f"frames/ has frame {extra[0]} but the job has {n} frames (0-{n - 1})",
                             file=str(by_index[extra[0]]))
        wanted = [(float(job.times[i]), by_index[i]) for i in np.flatnonzero(~job.known)]
    elif by_time:
        times = np.asarray(sorted(by_time))
        wanted = []
        for t in fill:
            j = int(np.argmin(np.abs(times - t)))
            if abs(times[j] - t) > TOLERANCE:
                raise InputError(f"frames/ has no frame for time {t:g} (expected {time_name(float(t))})",
                                 file=str(job.folder / "frames"), time=float(t))
            wanted.append((float(t), by_time[times[j]]))
    else:
        raise InputError("frames/ holds no frame named by index (frame_0000.png) or by time code (0036.png)",
                         file=str(job.folder / "frames"))
    out = {}
    for i, (t, path) in enumerate(wanted):
        out[t] = fit_size(read_image(path)[None], job.size, str(path))[0]
        if progress and i % 16 == 0:
            progress(f"video: reading frames ({i + 1}/{len(wanted)})", (i + 1) / len(wanted))
    return out
