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
    # The variables only reach libraries loaded from now on: numpy's OpenBLAS was loaded by the
    # forkserver with one thread per core, and two shots' spinning BLAS threads on two cores made
    # every shot 2-3x slower. threadpoolctl resizes the pools already loaded.
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    from pxr import Work

    Work.SetConcurrencyLimit(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


# Cut short, these leave a shot half-written until the next run recovers it (they rename several files):
# a stop request waits until they return. Everything else in a run may be interrupted at any point.
CRITICAL = {("anymole_usd.transaction", "commit"), ("anymole_usd.transaction", "recover"),
            ("anymole_usd.transaction", "undo")}
RETRY_SECONDS = 0.02


def in_critical_section(frame) -> bool:
    while frame is not None:
        if (frame.f_globals.get("__name__"), frame.f_code.co_name) in CRITICAL:
            return True
        frame = frame.f_back
    return False


def deferring(exception: type[BaseException]):
    """A signal handler raising ``exception``, but only outside a critical section (it re-checks shortly)."""

    def handler(signum, frame):
        if in_critical_section(frame):
            signal.signal(signal.SIGALRM, handler)
            signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
            return
        raise exception()

    return handler


def follow_logging(level: int) -> None:
    """Show the anymole_usd loggers' lines at ``level`` on stderr, as the batch process does (`-v`)."""
    import logging

    logger = logging.getLogger("anymole_usd")
    if level < logging.WARNING and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)


def child_main(shot: str, options: InbetweenOptions, conn, threads: int, environ: dict | None = None,
               log_level: int | None = None) -> None:
    """Entry point of a pool worker process: one shot, results sent through ``conn``.

    ``environ`` and ``log_level`` are the batch process's now (the
    forkserver's are from when it started).
    """
    # Ctrl-C reaches the whole process group; the batch decides what stops, with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, deferring(Terminated))
    start = time.perf_counter()
    try:
        if environ is not None:
            os.environ.clear()
            os.environ.update(environ)
        if log_level is not None:
            follow_logging(log_level)
        limit_threads(threads)
        conn.send(("started", os.getpid()))
        conn.send(("result", run_shot(shot, options)))
    except Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        done = committed_anyway(shot, options, time.perf_counter() - start)
        if done is None:
            sys.exit(128 + signal.SIGTERM)
        conn.send(("result", done))
    finally:
        conn.close()


def committed_anyway(shot: str, options: InbetweenOptions, seconds: float) -> ShotResult | None:
    """After a stop request: a done record when the shot's result is committed for these options, else None.

    A stop that lands after the commit (or a shot already filled with the
    same options) must not be reported as untouched.
    """
    from ..layering import default_output, result_is_current
    from ..pipeline import options_digest

    try:
        if not result_is_current(shot, options_digest(options), options.output):
            return None
    except Exception:  # an unreadable journal: the next run says so
        return None
    output = None if options.in_place else os.path.abspath(options.output or default_output(shot))
    return ShotResult(shot=shot, status="done", seconds=seconds, output=output, attempts=1,
                      reason="committed as the batch stopped")
