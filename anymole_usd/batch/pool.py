"""The local engine: one process per shot, ``workers`` at a time.

Each shot runs in its own process, forked from a forkserver that has already
imported USD, the runner and the prior, so a shot starts in milliseconds and a
crash or out-of-memory kill takes down only that shot (it is retried, then
reported). concurrent.futures.ThreadPoolExecutor does the scheduling; its
threads only start and watch the shot processes. A ProcessPoolExecutor is not
used because one dead worker breaks the whole pool and every shot in flight.

Ctrl-C: shot processes ignore SIGINT; the batch stops starting shots and sends
SIGTERM to the running ones, which unwinds the runner (temporary files removed,
lock released) so each shot is either done or untouched.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from concurrent.futures import wait as futures_wait
from multiprocessing.connection import wait
from typing import Callable, Sequence

from .. import interrupts
from .report import EXIT_INTERNAL, ShotResult, interrupted, left_behind

EventHook = Callable[..., None]


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def died(exitcode: int | None) -> str:
    """Words for how a worker process ended without a result."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory, or killed from outside)" if -exitcode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exited with code {exitcode} before reporting"


class ProcessPool:
    """Runs each shot in a fresh forked process; at most ``workers`` at once."""

    name = "pool"

    def __init__(self, workers: int | None = None, retries: int = 1, preload: Sequence[str] = (),
                 grace: float = 10.0):
        self.workers = max(1, workers or available_cpus())
        self.retries = max(0, retries)
        self.preload = list(preload)
        self.grace = grace  # seconds a stopped shot gets to unwind before SIGKILL
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._running: set = set()

    def prepare(self) -> None:
        """Start the forkserver now: it imports USD and the prior while the batch looks for shots."""
        from multiprocessing import forkserver

        self._context().set_forkserver_preload(["anymole_usd.batch.warm", "anymole_usd.batch.shot_task",
                                                *self.preload])
        forkserver.ensure_running()

    @staticmethod
    def _context():
        return multiprocessing.get_context("forkserver")

    def run(self, shots: list[str], options, on_event: EventHook | None = None) -> list[ShotResult]:
        """Fill ``shots``; returns one result per shot in the same order (interrupted ones included)."""
        on_event = on_event or (lambda *a, **k: None)
        if not shots:
            return []
        self.prepare()
        ctx = self._context()
        threads = max(1, available_cpus() // min(self.workers, len(shots)))
        self._stop.clear()
        results: dict[str, ShotResult] = {}
        with ThreadPoolExecutor(max_workers=min(self.workers, len(shots)),
                                thread_name_prefix="anymole-batch") as executor:
            futures = {executor.submit(self._shot, ctx, shot, options, threads, on_event): shot for shot in shots}
            try:
                for future in as_completed(futures):
                    result = future.result()
                    results[result.shot] = result
                    on_event("finished", result.shot, result=result)
            except KeyboardInterrupt:
                self._interrupt(futures)
                for future, shot in futures.items():
                    if shot not in results:
                        results[shot] = interrupted(shot, False) if future.cancelled() else future.result()
                        on_event("finished", shot, result=results[shot])
        return [results[s] for s in shots]

    def _interrupt(self, futures) -> None:
        """Start nothing more, SIGTERM the running shots, SIGKILL what has not ended after the grace time."""
        with self._lock:
            self._stop.set()
            for future in futures:
                future.cancel()
            self._signal_running(signal.SIGTERM)
        try:  # the worker threads reap their processes; only they may join them
            futures_wait(list(futures), timeout=self.grace)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            pass
        with self._lock:
            self._signal_running(signal.SIGKILL)

    def _signal_running(self, sig: int) -> None:
        for proc in self._running:  # a process leaves the set before it is reaped: its pid is still its own
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass

    def _shot(self, ctx, shot: str, options, threads: int, on_event: EventHook) -> ShotResult:
        from .shot_task import child_main

        seconds, reason = 0.0, ""
        for attempt in range(1, self.retries + 2):
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=child_main, args=(shot, options, send, threads, dict(os.environ),
                                                        logging.getLogger("anymole_usd").getEffectiveLevel()),
                               name=f"anymole-batch {os.path.basename(shot)}")
            with self._lock:
                if self._stop.is_set() or interrupts.requested():  # requested: a Ctrl-C/SIGTERM USD swallowed
                    return interrupted(shot, attempt > 1, seconds, attempt - 1)
                proc.start()
                self._running.add(proc)
            send.close()
            start = time.perf_counter()
            try:
                result = self._watch(proc, receive, shot, attempt, on_event)
            finally:
                with self._lock:
                    self._running.discard(proc)
                proc.join(30)
                if proc.exitcode is None:  # reported, then hung on exit
                    proc.kill()
                    proc.join()
                receive.close()
            seconds += time.perf_counter() - start
            if result is not None:
                result.attempts = attempt
                return result
            if self._stop.is_set():
                return interrupted(shot, True, seconds, attempt)
            reason = died(proc.exitcode)
            if attempt <= self.retries:
                on_event("retry", shot, attempt=attempt, error=f"worker {reason}")
        return ShotResult.failed(
            shot, f"worker process {reason} (tried {self.retries + 1} times); {left_behind(shot)}",
            EXIT_INTERNAL, seconds=seconds, attempts=self.retries + 1)

    @staticmethod
    def _watch(proc, receive, shot: str, attempt: int, on_event: EventHook) -> ShotResult | None:
        """Messages from one shot process until it ends; its result, or None if it died without one."""
        result = None
        while True:
            ready = wait([receive, proc.sentinel])
            if receive not in ready and not receive.poll():
                return result  # ended, nothing left to read
            try:
                kind, payload = receive.recv()
            except EOFError:
                return result
            if kind == "started":
                on_event("started", shot, pid=payload, attempt=attempt)
            elif kind == "result":
                result = payload
