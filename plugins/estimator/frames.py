"""A folder of images named by time code (``0036.png``, ``36.5.jpg``) -> times and an image array.

Names follow :mod:`anymole_usd.plugins.render.frame_names`; a file named by
index (``frame_0004.png``, from ``render --names index``) is refused, because its
number is a position in a sequence, not a time.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from anymole_usd.errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_TIME = re.compile(r"^(\d+(?:\.\d+)?)$")


def frame_time(name: str) -> float | None:
    """The time code a file is named by (``0036.png`` -> 36, ``36.5.jpg`` -> 36.5), or None."""
    m = _TIME.match(Path(name).stem)
    return float(m.group(1)) if m else None


def read_frame_folder(folder: str | os.PathLike, size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(times (N,), images (N, H, W, 3) uint8) sorted by time; InputError naming the file on bad input.

    ``size`` (height, width), when given, is the size every image must have.
    """
    import imageio.v3 as iio

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder of frames", file=str(folder))
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the folder", file=str(folder))
    times, images, seen = [], [], {}
    for path in files:  # one decode per file
        t = frame_time(path.name)
        if t is None:
            from anymole_usd.plugins.render.frame_names import name_index

            why = ("is named by index (render --names index), not by time code" if name_index(path.name) is not None
                   else "is not named by a time code")
            raise InputError(f"file name {why}: name frames by time code (e.g. 0036.png, 36.5.png; "
                             f"`anymole-usd render` writes them so by default)", file=str(path))
        if t in seen:
            raise InputError(f"frame time {t:g} also given by {seen[t].name}", file=str(path))
        seen[t] = path
        try:
            with warnings.catch_warnings():  # imageio warns about each fallback plugin it tries
                warnings.simplefilter("ignore")
                img = np.asarray(iio.imread(path))
        except Exception as exc:  # imageio raises many types for unreadable files
            raise InputError(f"unreadable image ({type(exc).__name__})", file=str(path)) from None
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, -1)
        if img.ndim != 3 or img.shape[-1] not in (3, 4):
            raise InputError(f"not an RGB image (shape {img.shape})", file=str(path))
        if img.dtype != np.uint8:
            raise InputError(f"expected 8-bit colour, got {img.dtype}", file=str(path))
        img = img[..., :3]
        expected = size or (images[0].shape[:2] if images else img.shape[:2])
        if tuple(img.shape[:2]) != tuple(expected):
            raise InputError(f"image is {img.shape[1]}x{img.shape[0]}, expected {expected[1]}x{expected[0]} "
                             f"(the renders' size)", file=str(path))
        times.append(t)
        images.append(img)
    order = np.argsort(times)
    return np.asarray(times, dtype=np.float64)[order], np.stack(images)[order]
