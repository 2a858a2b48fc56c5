"""Shared CLI plumbing: error handling with the house exit codes, JSON output, progress, verbosity."""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import sys
import threading
import time
import traceback

import click

# Exit status after the reader of our output went away (`anymole-usd plugins | head -1`): what a Unix
# tool killed by SIGPIPE reports (128 + 13), with nothing printed.
BROKEN_PIPE_EXIT = 141

_verbose = False


def handle_errors(func):
    """Map InputError (and click usage errors) to exit 2, anything else to exit 1, one line each."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from anymole_usd.errors import InputError, PluginError

        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort, click.UsageError):
            raise
        except (InputError, PluginError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            quiet_broken_pipe()
            sys.exit(BROKEN_PIPE_EXIT)
        except RecursionError:
            # Only hostile input nests deeply enough (parsers of ours are iterative); say so on one line.
            click.echo("error: input nested too deeply to process (recursion limit reached)", err=True)
            sys.exit(2)
        except Exception as exc:  # internal failure: one line, full trace only on request
            click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
            if _debug():
                traceback.print_exc()
            else:
                click.echo("(set ANYMOLE_USD_DEBUG=1 for the traceback)", err=True)
            sys.exit(1)

    return wrapper


def quiet_broken_pipe() -> None:
    """Point stdout and stderr at /dev/null after a broken pipe, so neither our error handling nor
    Python's flush at exit writes a traceback or 'Exception ignored' into the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError, AttributeError):  # a test runner's in-memory stream
            pass
    os.close(devnull)


def _debug() -> bool:
    return os.environ.get("ANYMOLE_USD_DEBUG", "") not in ("", "0")


class _StderrHandler(logging.StreamHandler):
    """A StreamHandler writing to whatever ``sys.stderr`` is when a line is emitted.

    logging.StreamHandler() keeps the stderr of its creation: a later command run in the same
    process with its stderr replaced (a test runner, an embedding tool) would lose the lines.
    """

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def set_verbose(verbose: bool) -> None:
    """`-v`: show the anymole_usd loggers' info lines (device choice, each fallback) on stderr."""
    global _verbose
    _verbose = bool(verbose)
    logger = logging.getLogger("anymole_usd")
    if verbose:
        if not any(getattr(h, "_anymole_verbose", False) for h in logger.handlers):
            handler = _StderrHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            handler._anymole_verbose = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    else:  # a later command in the same process without -v is quiet again
        for handler in [h for h in logger.handlers if getattr(h, "_anymole_verbose", False)]:
            logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def verbose() -> bool:
    """True when the top-level `-v/--verbose` flag was given."""
    return _verbose


def check_fps(fps: float | None, option: str = "--fps", high: float | None = None) -> None:
    """A sampling rate from the command line: None, or finite, > 0 and <= ``high`` (default
    ``timeline.MAX_FPS``, every command's limit); InputError otherwise."""
    from anymole_usd.errors import InputError
    from anymole_usd.timeline import MAX_FPS

    high = MAX_FPS if high is None else high

    if fps is None:
        return
    if not (math.isfinite(fps) and 0 < fps <= high):
        raise InputError(f"{option} must be a number greater than 0 and at most {high:g}, got {fps:g}")


def check_output_writable(path: str | None, folder: bool = False) -> None:
    """InputError (exit 2, before any work) unless ``path`` can be written as an output.

    An existing output, or the nearest existing folder above it, that is marked read-only
    (``chmod a-w``) is refused even for root, as the shot itself is: the user said no.
    ``folder``: the output is a folder (render, video job, library) that may already exist.
    """
    from anymole_usd.errors import InputError
    from anymole_usd.layering import nearest_existing, writable

    if not path:
        return
    path = os.path.abspath(path)
    if os.path.isdir(path) and folder:
        probe = path  # written into
    else:
        if os.path.exists(path) and not writable(path):
            raise InputError("cannot write: Permission denied (the file is read-only; nothing was written)",
                             file=path)
        probe = nearest_existing(path)  # created or replaced by a rename there
        if not os.path.isdir(probe):  # a file where a folder must be made: failed only after the work
            raise InputError(f"cannot create the output's folder: {probe} is a file", file=path)
    if not writable(probe):
        raise InputError("cannot write: Permission denied (the folder is read-only; nothing was written)",
                         file=probe)


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=_jsonable))


def _jsonable(obj):
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return str(obj)


def progress(enabled: bool = True, heartbeat: float = 10.0):
    """Progress on stderr: a rich bar on a terminal; in a log (stderr not a terminal) one line per stage
    and a heartbeat line at most every ``heartbeat`` seconds (:class:`LogProgress`). Disabled for --json.

    Both take the same calls: ``with progress() as bar: task = bar.add_task("stage", total=1.0);
    bar.update(task, description=..., completed=...)``; also ``start()``/``stop()``.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    if enabled and not _stderr_is_terminal():
        return LogProgress(heartbeat=heartbeat)
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), disable=not enabled, transient=False,
    )


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class LogProgress:
    """Progress for logs (CI, render farms): plain lines on stderr, never a redrawn bar.

    A line is written when a task is added, whenever its description changes,
    and when it completes; while a task runs, a background heartbeat writes its
    description and fraction when nothing was written for ``heartbeat`` seconds,
    so a long stage that reports nothing still shows it is alive.
    """

    def __init__(self, heartbeat: float = 10.0) -> None:
        self.heartbeat = float(heartbeat)
        self._tasks: dict[int, dict] = {}
        self._next_id = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._last_line = self._t0

    # --- the rich.progress.Progress calls our commands make
    def __enter__(self) -> "LogProgress":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if self._thread is None and self.heartbeat > 0:
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name="anymole-progress", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def add_task(self, description: str, total: float | None = 100.0, completed: float = 0.0,
                 start: bool = True, visible: bool = True, **fields) -> int:
        with self._lock:
            task = self._next_id
            self._next_id += 1
            self._tasks[task] = {"description": str(description), "total": total, "completed": float(completed),
                                 "visible": visible, "done": False}
            if visible:
                self._write(task)
        return task

    def update(self, task: int, *, total: float | None = None, completed: float | None = None,
               advance: float | None = None, description: str | None = None, visible: bool | None = None,
               refresh: bool = False, **fields) -> None:
        with self._lock:
            t = self._tasks[task]
            changed = description is not None and str(description) != t["description"]
            if total is not None:
                t["total"] = total
            if completed is not None:
                t["completed"] = float(completed)
            if advance is not None:
                t["completed"] += float(advance)
            if description is not None:
                t["description"] = str(description)
            if visible is not None:
                t["visible"] = visible
            finished = t["total"] is not None and t["completed"] >= t["total"] and not t["done"]
            if finished:
                t["done"] = True
            if t["visible"] and (changed or finished):
                self._write(task, done=finished and not changed)

    def advance(self, task: int, advance: float = 1.0) -> None:
        self.update(task, advance=advance)

    def remove_task(self, task: int) -> None:
        with self._lock:
            self._tasks.pop(task, None)

    # --- output
    def _fraction(self, t: dict) -> str:
        total = t["total"]
        if not total:
            return ""
        return f" {min(max(t['completed'] / total, 0.0), 1.0) * 100:.0f}%"

    def _write(self, task: int, done: bool = False) -> None:
        t = self._tasks[task]
        now = time.monotonic()
        suffix = " done" if done else self._fraction(t)
        self._emit(f"[{_clock(now - self._t0)}] {t['description']}{suffix}")
        self._last_line = now

    def _emit(self, line: str) -> None:
        try:
            click.echo(line, err=True)
        except (BrokenPipeError, ValueError):  # the log went away: progress is not worth failing for
            pass

    def _beat(self) -> None:
        while True:
            with self._lock:
                wait = self._last_line + self.heartbeat - time.monotonic()
            if self._stop.wait(max(wait, 0.05)):
                return
            with self._lock:
                if time.monotonic() - self._last_line < self.heartbeat:
                    continue
                running = [k for k, t in self._tasks.items() if t["visible"] and not t["done"]]
                for k in running:
                    self._write(k)
                if not running:
                    self._last_line = time.monotonic()


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
