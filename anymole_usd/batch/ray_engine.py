"""The Ray engine: each shot a Ray task with one CPU (and a GPU for the video prior when the cluster has one).

``address`` is ``"local"`` (start a private local instance), ``None`` (Ray's
own choice: $RAY_ADDRESS, a cluster started on this machine with `ray start`,
else a new local instance) or a cluster address such as ``ray://head:10001``
or ``head:6379``. Tasks write their results next to the shots, so every node
must see the shots at the same path (a shared filesystem); see docs/cluster.md.
A task whose worker dies (a crash, out of memory) is retried ``retries`` times.
Ctrl-C cancels every task: a running one gets KeyboardInterrupt (the runner
unwinds and leaves its shot untouched), then is killed after the grace time.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

from ..errors import InputError
from .report import EXIT_INPUT, EXIT_INTERNAL, ShotResult, interrupted, left_behind

POLL_SECONDS = 0.5  # ray.wait is called with a timeout so Ctrl-C reaches the driver between calls


def _ray_shot(shot: str, options, cpus: float) -> ShotResult:
    """The task body (runs on a Ray worker)."""
    from .shot_task import committed_anyway, deferring, limit_threads, run_shot

    if not os.path.exists(shot):
        return ShotResult.failed(shot, f"{shot}: not found on Ray node {socket.gethostname()} (a batch on a cluster "
                                       f"needs the shots on a shared filesystem at the same path)", EXIT_INPUT,
                                 attempts=1)
    limit_threads(max(1, int(cpus)))
    if threading.current_thread() is not threading.main_thread():
        return run_shot(shot, options)
    # ray.cancel interrupts the task through the SIGINT handler: hold it off while the run commits.
    previous = signal.signal(signal.SIGINT, deferring(KeyboardInterrupt))
    start = time.perf_counter()
    try:
        return run_shot(shot, options)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        done = committed_anyway(shot, options, time.perf_counter() - start)
        if done is None:
            raise
        return done
    finally:
        signal.signal(signal.SIGINT, previous)


def import_ray():
    try:
        import ray
    except ImportError:
        raise InputError('--ray needs Ray: pip install "anymole-usd[ray]"') from None
    return ray


class RayEngine:
    """Runs shots as Ray tasks; at most ``workers`` in flight when given, else as many as the cluster fits."""

    name = "ray"

    def __init__(self, address: str | None = "local", workers: int | None = None, retries: int = 1,
                 gpu_prior: bool = False, grace: float = 10.0):
        self.address = address
        self.workers = workers
        self.retries = max(0, retries)
        self.gpu_prior = gpu_prior  # shots ask for a GPU, when the cluster has any
        self.grace = grace
        import_ray()  # not installed: say so before searching for shots
        if address not in (None, "local"):
            _check_reachable(address)

    def prepare(self) -> None:
        """Nothing to warm up before the search: Ray starts (or is joined) when there are shots to run."""

    def run(self, shots: list[str], options, on_event=None) -> list[ShotResult]:
        on_event = on_event or (lambda *a, **k: None)
        if not shots:
            return []
        ray = import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            self._init(ray)
        try:
            return self._run(ray, shots, options, on_event)
        finally:
            if started_here:
                ray.shutdown()

    def _init(self, ray) -> None:
        from .pool import available_cpus

        quiet = os.environ.get("ANYMOLE_USD_DEBUG", "") in ("", "0")
        kwargs = dict(include_dashboard=False, log_to_driver=not quiet,
                      logging_level=logging.ERROR if quiet else logging.INFO)
        if self.address == "local":
            kwargs.update(address="local", num_cpus=self.workers or available_cpus())
        elif self.address:
            kwargs.update(address=self.address)
        try:
            ray.init(**kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise InputError(f"cannot start or join Ray at {self.address or 'the default address'}: "
                             f"{' '.join(str(exc).split())[:300]}") from None

    def _gpus(self, ray) -> float:
        return 1.0 if self.gpu_prior and ray.cluster_resources().get("GPU", 0) > 0 else 0.0

    def _run(self, ray, shots, options, on_event) -> list[ShotResult]:
        cpus = 1.0
        task = ray.remote(_ray_shot)
        resources = dict(num_cpus=cpus, num_gpus=self._gpus(ray), max_retries=self.retries,
                         retry_exceptions=False)
        options_ref = ray.put(options)
        window = self.workers if self.address != "local" and self.workers else len(shots)
        queue = list(shots)
        flight: dict = {}  # ObjectRef -> (shot, submitted at)
        results: dict[str, ShotResult] = {}

        def submit():
            while queue and len(flight) < window:
                shot = queue.pop(0)
                ref = task.options(name=f"anymole-batch:{os.path.basename(shot)}", **resources).remote(
                    shot, options_ref, cpus)
                flight[ref] = (shot, time.perf_counter())

        try:
            submit()
            while flight:
                ready, _ = ray.wait(list(flight), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    shot, submitted = flight.pop(ref)
                    results[shot] = self._collect(ray, ref, shot, submitted)
                    on_event("finished", shot, result=results[shot])
                submit()
        except KeyboardInterrupt:
            self._cancel(ray, flight, results, on_event)
            for shot in queue:
                results[shot] = interrupted(shot, False)
                on_event("finished", shot, result=results[shot])
        return [results[s] for s in shots]

    def _collect(self, ray, ref, shot: str, submitted: float) -> ShotResult:
        try:
            return ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            return interrupted(shot, True, time.perf_counter() - submitted, attempts=1)
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError,
                ray.exceptions.NodeDiedError) as exc:
            what = type(exc).__name__
            return ShotResult.failed(shot, f"Ray worker lost ({what}, tried {self.retries + 1} times); "
                                           f"{left_behind(shot)}", EXIT_INTERNAL,
                                     seconds=time.perf_counter() - submitted, attempts=self.retries + 1)
        except ray.exceptions.RayError as exc:
            message = " ".join(str(exc).split())[:300]
            return ShotResult.failed(shot, f"internal error: Ray: {message}", EXIT_INTERNAL,
                                     seconds=time.perf_counter() - submitted, attempts=1)

    def _cancel(self, ray, flight: dict, results: dict, on_event) -> None:
        """Cancel every task in flight: KeyboardInterrupt in the running ones, then kill after the grace time."""
        for ref in flight:
            ray.cancel(ref, force=False)
        deadline = time.monotonic() + self.grace
        pending = list(flight)
        try:
            while pending and time.monotonic() < deadline:
                _, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_SECONDS)
        except KeyboardInterrupt:
            pass
        for ref in pending:
            ray.cancel(ref, force=True)
        for ref, (shot, submitted) in flight.items():
            result = self._collect(ray, ref, shot, submitted) if ref not in pending else None
            if result is None or result.exit_code == EXIT_INTERNAL:
                result = interrupted(shot, True, time.perf_counter() - submitted, attempts=1)
            results[shot] = result
            on_event("finished", shot, result=result)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, with one line, when nothing listens at a cluster address (Ray itself retries for minutes)."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--ray {address}: expected HOST:PORT or ray://HOST:PORT, 'local' or 'auto'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise InputError(f"cannot reach Ray at {address}: {exc.strerror or exc} (is `ray start --head` running "
                         f"there, and the port open?)") from None
