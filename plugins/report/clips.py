"""Looping clips for a report or a preview: H.264 MP4 (imageio-ffmpeg), else animated WebP or GIF (Pillow).

H.264 in MP4 plays in every browser and mail client that shows video and is
by far the smallest; without imageio-ffmpeg an animated WebP (Pillow, also
in every current browser) or, last, a GIF keeps the report self-contained.
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
from typing import Iterable

import numpy as np

from anymole_usd.errors import InputError

FORMATS = ("auto", "mp4", "webp", "gif")
MIME = {"mp4": "video/mp4", "webp": "image/webp", "gif": "image/gif"}
CRF = 26  # x264 constant quality: flat-shaded renders stay clean well above the default 23


def has_ffmpeg() -> bool:
    return importlib.util.find_spec("imageio_ffmpeg") is not None


def has_webp() -> bool:
    from PIL import features

    return bool(features.check("webp"))


def clip_format(requested: str = "auto") -> str:
    """The format to encode clips in: ``requested``, or the best one available for ``auto``."""
    if requested not in FORMATS:
        raise InputError(f"unknown video format {requested!r} (known: {', '.join(FORMATS)})")
    if requested == "mp4" and not has_ffmpeg():
        raise InputError("MP4 clips need imageio-ffmpeg (pip install imageio-ffmpeg); use --video webp or gif")
    if requested == "webp" and not has_webp():
        raise InputError("this Pillow has no WebP support; use --video gif")
    if requested != "auto":
        return requested
    return "mp4" if has_ffmpeg() else "webp" if has_webp() else "gif"


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad to even height and width (H.264 4:2:0 needs them) with white."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=255)


def write_video(path: str, frames: Iterable[np.ndarray], fps: float, crf: int = CRF) -> int:
    """Stream frames (H, W, 3) uint8 into an H.264 MP4 at ``path``; returns the frame count."""
    import imageio.v2 as iio2

    count = 0
    with iio2.get_writer(path, format="FFMPEG", mode="I", fps=float(fps), codec="libx264", macro_block_size=2,
                         pixelformat="yuv420p", output_params=["-crf", str(crf), "-preset", "medium",
                                                               "-movflags", "+faststart"]) as w:
        for frame in frames:
            w.append_data(_even(np.asarray(frame, dtype=np.uint8)))
            count += 1
    return count


def encode_clip(frames: np.ndarray, fps: float, fmt: str = "auto") -> tuple[bytes, str]:
    """(F, H, W, 3) uint8 -> (file bytes, MIME type) of a looping clip in ``fmt`` (see :func:`clip_format`)."""
    fmt = clip_format(fmt)
    frames = np.asarray(frames, dtype=np.uint8)
    if fmt == "mp4":
        fd, tmp = tempfile.mkstemp(suffix=".mp4")
        os.close(fd)
        try:
            write_video(tmp, frames, fps)
            with open(tmp, "rb") as handle:
                return handle.read(), MIME[fmt]
        finally:
            os.remove(tmp)
    import io

    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    if fmt == "gif":  # one shared palette keeps the flat shading from flickering
        palette = images[len(images) // 2].quantize(colors=255, method=Image.Quantize.MEDIANCUT)
        images = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    buffer = io.BytesIO()
    duration = max(10, int(round(1000.0 / fps)))
    extra = {"quality": 70, "method": 4} if fmt == "webp" else {"optimize": False}
    images[0].save(buffer, format=fmt.upper(), save_all=True, append_images=images[1:], duration=duration, loop=0,
                   **extra)
    return buffer.getvalue(), MIME[fmt]


def encode_png(image: np.ndarray) -> bytes:
    """One frame as PNG bytes (a clip's poster, shown before it plays and in print)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
