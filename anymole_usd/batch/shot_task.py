"""One shot inside a worker process: the same runner as `inbetween`, every outcome made a record.

Imported by the process pool's forkserver before any shot starts (USD, the
runner and the prior load once, and every shot then forks from that warm
process), and by Ray workers.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import traceback

from ..errors import InputError, PluginError
from ..pipeline import InbetweenOptions, run_inbetween
from .report import EXIT_INPUT, EXIT_INTERNAL, ShotResult


class Terminated(BaseException):
    """The batch asked this worker to stop (Ctrl-C): unwind the runner so temp files and the lock go."""


def run_shot(shot: str, options: InbetweenOptions) -> ShotResult:
    """Fill one shot exactly as `anymole-usd inbetween` would; never raises for a shot's own failure."""
    start = time.perf_counter()
    try:
        report = run_inbetween(shot, options)
    except (InputError, PluginError) as exc:
        return ShotResult.failed(shot, str(exc), EXIT_INPUT, seconds=time.perf_counter() - start, attempts=1)
    except Exception as exc:  # the tool's own failure: one line, the trace only on request
        if os.environ.get("ANYMOLE_USD_DEBUG", "") not in ("", "0"):
            traceback.print_exc()
        message = " ".join(f"internal error: {type(exc).__name__}: {exc}".split())
        return ShotResult.failed(shot, message, EXIT_INTERNAL, seconds=time.perf_counter() - start, attempts=1)
    seconds = time.perf_counter() - start
    animations = report.get("animations") or []
    if not animations:
        reasons = sorted({s["reason"] for s in report.get("skipped", [])}) or ["nothing to fill"]
        return ShotResult.skipped(shot, "; ".join(reasons), seconds=seconds, attempts=1)
    return ShotResult(shot=shot, status="done", seconds=seconds, output=report.get("output"), attempts=1,
                      filled_frames=int(sum(a.get("frames_to_fill", 0) for a in animations)))


def limit_threads(threads: int) -> None:
    """Share the cores between concurrent shots: USD's work pool, torch and OpenMP get ``threads`` each."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))
    from pxr import Work

    Work.SetConcurrencyLimit(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _terminate(signum, frame):
    raise Terminated()


def child_main(shot: str, options: InbetweenOptions, conn, threads: int) -> None:
    """Entry point of a pool worker process: one shot, results sent through ``conn``."""
    # Ctrl-C reaches the whole process group; the batch decides what stops, with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        limit_threads(threads)
        conn.send(("started", os.getpid()))
        conn.send(("result", run_shot(shot, options)))
    except Terminated:
        sys.exit(128 + signal.SIGTERM)
    finally:
        conn.close()
