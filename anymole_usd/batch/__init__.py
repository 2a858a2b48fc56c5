"""Batch in-betweening: many shots, each in its own worker process, locally or on a Ray cluster.

- ``discovery``: which files of the inputs (files, folders, globs) are shots
- ``shot_task``: one shot inside a worker (the same runner as `inbetween`)
- ``pool``: the local engine (a process per shot, forked from a warm forkserver)
- ``warm``: what that forkserver imports before the first fork
- ``ray_engine``: the Ray engine (`pip install "anymole-usd[ray]"`)
- ``report``: per-shot records, summary, exit code, the JSON report
- ``runner``: :func:`run_batch`, tying them together
"""
from __future__ import annotations

from ..lazy import lazy_attributes

_LAZY = {
    "run_batch": ".runner",
    "discover": ".discovery",
    "BatchReport": ".report",
    "ShotResult": ".report",
}

__all__ = list(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
