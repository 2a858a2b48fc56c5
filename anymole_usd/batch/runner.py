"""`run_batch`: find the shots, leave out the up-to-date ones, hand the rest to an engine, report."""
from __future__ import annotations

import time
from typing import Callable

from ..errors import InputError, PluginError
from ..pipeline import InbetweenOptions
from .discovery import discover
from .report import BatchReport, ShotResult


def run_batch(inputs: list[str], options: InbetweenOptions | None = None, *, workers: int | None = None,
              ray: str | None = None, use_ray: bool = False, resume: bool = False, retries: int = 1,
              on_event: Callable[..., None] | None = None) -> BatchReport:
    """Fill every shot found in ``inputs`` (files, folders, glob patterns), each in its own worker.

    ``use_ray`` picks the Ray engine, with ``ray`` as its address ("local", a
    cluster address, or None for Ray's default); otherwise a local process pool
    of ``workers`` processes runs the shots. ``on_event(kind, shot, **info)``
    is called with kind "discovered" (info: total), "started" (pid, attempt;
    from a worker thread, pool only), "retry" (attempt, error) and "finished"
    (result). A shot's bad input fails that shot only; a bad option for every
    shot (unknown prior, bad --param, not a library) raises InputError before anything runs.

    The pool starts shot processes with multiprocessing's forkserver, so a
    script calling this must guard its entry point with
    ``if __name__ == "__main__":`` (each shot process imports the main module).
    """
    options = options or InbetweenOptions()
    on_event = on_event or (lambda *a, **k: None)
    begin = time.perf_counter()
    prior = check_prior(options)
    if options.library:  # a wrong library would fail every shot alike: say so once
        from ..library.store import Library

        Library.open(options.library)
    engine = _engine(use_ray, ray, workers, retries, prior)  # a bad Ray address fails before the search
    if not resume:  # with --resume most shots usually need no worker at all
        engine.prepare()
    found = discover(inputs, fps=options.fps)
    if not found.shots and not found.result_layers:
        raise InputError(f"no shots found in {', '.join(inputs)} (a shot binds a SkelAnimation with gaps)")
    results: dict[str, ShotResult] = {
        path: ShotResult.skipped(path, "an anymole-usd result layer, not a shot") for path in found.result_layers}
    todo = list(found.shots)
    if resume:
        todo = [s for s in todo if not _up_to_date(s, options, results)]
    on_event("discovered", "", total=len(found.shots) + len(found.result_layers), todo=len(todo))
    for shot, result in results.items():
        on_event("finished", shot, result=result)
    ran = engine.run(todo, options, on_event)
    results.update((r.shot, r) for r in ran)
    ordered = [results[s] for s in found.result_layers + found.shots]
    return BatchReport(shots=ordered, engine=engine.name, workers=getattr(engine, "workers", None) or 0,
                       seconds=time.perf_counter() - begin, interrupted=any(r.interrupted for r in ran),
                       ignored=found.ignored)


def check_prior(options: InbetweenOptions) -> type:
    """Load the prior once and check its parameters here (exit 2 for the whole batch); returns its class."""
    from .. import registry
    from ..pipeline import default_prior

    name = options.prior or default_prior(options.video_model)
    params = dict(options.params)
    if name == "video" and options.video_model:
        params.setdefault("video_model", options.video_model)
    try:
        cls = registry.load("priors", name)
    except PluginError as exc:
        raise InputError(str(exc)) from None
    cls(**params)  # a bad --param raises InputError naming the parameter
    return cls


def uses_gpu(prior: type) -> bool:
    """Rendering priors (the video prior: diffusion, estimator, mimicking) are the ones that want a GPU."""
    return bool(getattr(prior, "needs_character", False))


def _up_to_date(shot: str, options: InbetweenOptions, results: dict) -> bool:
    from ..layering import result_is_current
    from ..pipeline import options_digest

    if not result_is_current(shot, options_digest(options), options.output):
        return False
    results[shot] = ShotResult.skipped(shot, "up to date (--resume: same options, inputs unchanged)")
    return True


def _engine(use_ray: bool, address: str | None, workers: int | None, retries: int, prior: type):
    if use_ray:
        from .ray_engine import RayEngine

        return RayEngine(address=address, workers=workers, retries=retries, gpu_prior=uses_gpu(prior))
    from .pool import ProcessPool

    # One GPU prior at a time unless asked: each loads a video model that fills a GPU.
    return ProcessPool(workers=workers or (1 if uses_gpu(prior) else None), retries=retries,
                       preload=[prior.__module__])
