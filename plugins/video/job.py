"""A video job: the contract between anymole-usd and any video generator.

``anymole-usd video prepare SHOT -o JOB`` writes what a generator needs (the
known frames seen from the shot's camera, a conditioning video and its mask,
first/last frames per gap) and ``job.json``; ``inbetween SHOT --video-dir JOB``
reads whatever came back against it. This module holds the layout (which
frames the video has), the shot's content hash and job.json; writing is in
:mod:`.job_prepare`, reading frames back in :mod:`.job_frames`.

The video's frames are the mimicking grid (``mimicking.schedule.build_grid``:
every gap filled at ``rate`` frames per second, keyframes on the grid) with
the known samples thinned to the same rate: each run of known samples is
sampled backwards from its last sample every ``fps / rate`` time codes, and
every sample next to a gap is kept (it is a gap's first or last frame). With
keys on whole seconds and a stage rate that is a multiple of ``rate`` the
frames are evenly spaced; in general job.json lists each frame's time.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anymole_usd.errors import InputError

JOB_FORMAT = "anymole-usd/video-job/1"
JOB_FILE = "job.json"
GREY = 128  # conditioning pixels of frames to generate
TOLERANCE = 1e-3  # time codes


@dataclass
class JobLayout:
    """Frames of the video a generator is asked for, and the gaps inside it."""

    grid_times: np.ndarray  # (G,) the mimicking grid (every known sample + every frame to fill)
    grid_known: np.ndarray  # (G,) bool
    times: np.ndarray  # (N,) time code of each video frame, sorted
    known: np.ndarray  # (N,) bool: a known sample (rendered), else to generate
    gaps: list[dict] = field(default_factory=list)  # {"first", "last", "first_index", "last_index", "times"}

    @property
    def fill_times(self) -> np.ndarray:
        return self.times[~self.known]


def job_layout(known_times: np.ndarray, fps: float, rate: float) -> JobLayout:
    """The video frames for known samples at ``known_times`` (stage ``fps``) filled at ``rate``."""
    from anymole_usd.plugins.mimicking.schedule import build_grid

    grid = build_grid(known_times, fps, rate)
    t, k = grid.times, grid.known
    keep = video_frames(t, k, fps / rate)
    times, known = t[keep], k[keep]
    gaps = []
    fill = np.flatnonzero(~known)
    if len(fill):
        starts = fill[np.concatenate([[True], np.diff(fill) > 1])]
        ends = fill[np.concatenate([np.diff(fill) > 1, [True]])]
        for a, b in zip(starts, ends):
            gaps.append({"first": float(times[a - 1]), "last": float(times[b + 1]), "first_index": int(a - 1),
                         "last_index": int(b + 1), "times": [float(x) for x in times[a:b + 1]]})
    return JobLayout(t.copy(), k.copy(), times, known, gaps)


def video_frames(times: np.ndarray, known: np.ndarray, step: float) -> np.ndarray:
    """(G,) bool: which grid samples the video shows: every one to fill, the known ones next to a gap, and each
    run of known samples thinned to ``step`` time codes backwards from its last sample (nearest sample)."""
    t, k = np.asarray(times, np.float64), np.asarray(known, bool)
    keep = ~k
    keep[:-1] |= ~k[1:]  # a gap's first frame
    keep[1:] |= ~k[:-1]  # and its last
    # runs of known samples: start/end indices where the known flag changes
    edges = np.flatnonzero(np.diff(np.concatenate([[0], k.astype(np.int8), [0]])))
    for i, j in zip(edges[::2], edges[1::2] - 1):
        lattice = t[j] - step * np.arange(int(np.floor((t[j] - t[i]) / step + TOLERANCE)) + 1)
        pos = np.clip(np.searchsorted(t[i:j + 1], lattice), 1, j - i) if j > i else np.zeros(len(lattice), int)
        if j > i:  # the nearest known sample to each lattice point
            left = t[i:j + 1][pos - 1]
            pos = np.where(np.abs(lattice - left) <= np.abs(t[i:j + 1][pos] - lattice), pos - 1, pos)
        keep[i + pos] = True
    return keep


def shot_digest(known, keys, character) -> str:
    """Content hash of what the job's frames depend on: the known samples, the keyframes and the character.

    ``known`` (Motion at the known times), ``keys`` (keyframe times), ``character``
    (render Character: mesh, skinning, placement). A re-authored pose, a moved key or
    another mesh changes it; the same shot read twice gives the same hash.
    """
    h = hashlib.sha256()
    for a in (known.times, known.rotations, known.translations, known.scales, np.asarray(keys, np.float64)):
        h.update(np.ascontiguousarray(np.asarray(a, np.float64)).tobytes())
    h.update(json.dumps(list(known.joints)).encode())
    for a in (character.points, character.faces, character.joint_indices, character.joint_weights,
              character.skel_to_world):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:20]


@dataclass
class VideoJob:
    """What job.json says (see :func:`job_json`)."""

    folder: Path
    times: np.ndarray
    known: np.ndarray
    rate: float
    stage_fps: float
    size: tuple[int, int]  # (H, W)
    view: str
    K: np.ndarray  # (3, 3) of ``view``
    world_to_cam: np.ndarray  # (4, 4) of ``view``
    shot_hash: str
    gaps: list[dict]
    prompt: str = ""
    animation: str = ""

    @property
    def fill_times(self) -> np.ndarray:
        return self.times[~self.known]

    @property
    def num_frames(self) -> int:
        return len(self.times)

    def check(self, digest: str, cameras) -> None:
        """Refuse a job prepared for another version of the shot or for other cameras (InputError)."""
        if digest != self.shot_hash:
            raise InputError(f"video job {self.folder} was prepared for another version of the shot (shot hash "
                             f"{self.shot_hash}, now {digest}): run `anymole-usd video prepare` again",
                             file=str(self.folder / JOB_FILE))
        names = list(cameras.names)
        if self.view not in names:
            raise InputError(f"video job {self.folder}: unknown view {self.view!r}", file=str(self.folder / JOB_FILE))
        v = names.index(self.view)
        k, w2c = np.asarray(cameras.K)[v], np.asarray(cameras.world_to_cam)[v]
        w2c = w2c[0] if w2c.ndim == 3 else w2c
        if (cameras.height, cameras.width) != tuple(self.size) or not (
                np.allclose(k, self.K, rtol=1e-5, atol=1e-4) and np.allclose(w2c, self.world_to_cam, atol=1e-5)):
            raise InputError(f"video job {self.folder} was prepared for other cameras than the shot's "
                             f"{self.view} camera at {self.size[0]}x{self.size[1]}: run `anymole-usd video "
                             f"prepare` again", file=str(self.folder / JOB_FILE))


def job_json(layout: JobLayout, *, rate: float, stage_fps: float, size: tuple[int, int], view: str, cameras,
             digest: str, prompt: str, shot: str, animation: str) -> dict:
    """The job.json document (plain JSON types)."""
    views = {}
    for i, name in enumerate(cameras.names):
        w2c = np.asarray(cameras.world_to_cam)[i]
        views[name] = {"K": np.asarray(cameras.K)[i].tolist(), "world_to_cam": (w2c[0] if w2c.ndim == 3 else w2c).tolist()}
    return {
        "format": JOB_FORMAT,
        "shot": os.path.abspath(shot), "animation": animation, "shot_hash": digest,
        "fps": float(rate), "stage_fps": float(stage_fps),
        "size": {"height": int(size[0]), "width": int(size[1])},
        "num_frames": int(len(layout.times)),
        "times": [float(t) for t in layout.times],
        "generate": [bool(not k) for k in layout.known],
        "known_times": [float(t) for t in layout.grid_times[layout.grid_known]],
        "grid_times": [float(t) for t in layout.grid_times],  # mimicking's grid: known samples + frames to fill
        "gaps": [{"index": i, "folder": f"gaps/{i}", "num_frames": g["last_index"] - g["first_index"] + 1, **g}
                 for i, g in enumerate(layout.gaps)],
        "view": view,
        "cameras": {"views": views, "width": int(size[1]), "height": int(size[0]),
                    "convention": "pinhole, OpenCV axes (x right, y down, z forward), column-vector "
                                  "x_cam = R x_world + t, metres, pixel centres at +0.5"},
        "prompt": prompt,
        "files": {"known": "known/<time>.png", "conditioning": "conditioning.mp4", "mask": "mask.mp4",
                  "gaps": "gaps/<index>/first.png, last.png", "frames": "frames/frame_<index>.png"},
    }


def read_job(folder: str | os.PathLike) -> VideoJob | None:
    """The job in ``folder``, or None when it holds no job.json (a plain folder of time-named frames)."""
    folder = Path(folder)
    path = folder / JOB_FILE
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
        if d.get("format") != JOB_FORMAT:
            raise InputError(f"not a video job of this version (format {d.get('format')!r}, expected "
                             f"{JOB_FORMAT!r})", file=str(path))
        cam = d["cameras"]["views"][d["view"]]
        times = np.asarray(d["times"], np.float64)
        generate = np.asarray(d["generate"], bool)
        if times.shape != generate.shape or times.ndim != 1:
            raise ValueError("times and generate differ in length")
        return VideoJob(folder, times, ~generate, float(d["fps"]), float(d["stage_fps"]),
                        (int(d["size"]["height"]), int(d["size"]["width"])), str(d["view"]),
                        np.asarray(cam["K"], np.float64), np.asarray(cam["world_to_cam"], np.float64),
                        str(d["shot_hash"]), list(d.get("gaps", [])), str(d.get("prompt", "")),
                        str(d.get("animation", "")))
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"unreadable video job ({type(exc).__name__}: {exc})", file=str(path)) from None
