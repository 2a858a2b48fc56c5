"""How frame files are named: by time code (the convention every command reads) or by index.

- by time: ``<time>.png`` with the stage time code as a decimal number, the whole
  part zero-padded to 4 digits (``0036.png``, ``0036.5.png``, ``0037.625.png``); readers
  also accept other paddings (``36.png``) and ``.jpg``/``.jpeg``;
- by index: ``frame_<index>.png`` (``frame_0000.png``), the n-th frame of a
  sequence whose times are listed elsewhere (``render --names index`` with its
  annotations.json; a video job's ``frames/`` folder with its job.json).

A name is one or the other, never both: ``frame_0036.png`` is frame 36 of a
sequence, never time 36, so readers expecting times refuse it with a clear error.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

TIME_NAME = re.compile(r"^(\d+(?:\.\d+)?)$")
INDEX_NAME = re.compile(r"^frame_(\d+)$")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
NAMINGS = ("time", "index")


def time_name(time: float, pad: int = 4, ext: str = "png") -> str:
    """``36`` -> ``0036.png``; ``36.5`` -> ``0036.5.png`` (fraction to 3 decimals, trailing zeros dropped)."""
    whole = int(np.floor(time + 1e-9))
    frac = f"{time - whole:.3f}".rstrip("0").rstrip(".")[1:] if abs(time - round(time)) > 1e-6 else ""
    return f"{whole:0{pad}d}{frac}.{ext}"


def index_name(index: int, ext: str = "png") -> str:
    return f"frame_{int(index):04d}.{ext}"


def name_time(name: str) -> float | None:
    """The time code of a time-named image file, else None."""
    p = Path(name)
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    m = TIME_NAME.match(p.stem)
    return float(m.group(1)) if m else None


def name_index(name: str) -> int | None:
    """The index of an index-named image file (``frame_0004.png`` -> 4), else None."""
    p = Path(name)
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    m = INDEX_NAME.match(p.stem)
    return int(m.group(1)) if m else None


def frame_file_name(naming: str, index: int, time: float, ext: str = "png") -> str:
    """The file name of frame ``index`` at ``time`` under ``naming`` (``time`` or ``index``)."""
    if naming == "time":
        return time_name(time, ext=ext)
    if naming == "index":
        return index_name(index, ext=ext)
    raise ValueError(f"naming must be one of {', '.join(NAMINGS)}, got {naming!r}")
