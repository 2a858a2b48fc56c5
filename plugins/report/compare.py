"""Other priors on the gaps a result filled, run in memory for side-by-side review (nothing is written).

The shot's own runner plans the job (:func:`anymole_usd.pipeline.plan`) with
the context and keyframes recorded in the result's provenance, so each
compared prior sees exactly the known samples and fills exactly the times the
result's prior did; :func:`anymole_usd.pipeline.fill` runs it. The composed
motion of each prior is returned on the scene's frames (known samples from the
shot, the prior's frames in the gaps).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from anymole_usd.errors import InputError
from anymole_usd.motion import Motion


@dataclass
class CompareRun:
    name: str
    motion: Motion | None  # on the scene's frames; None when the prior failed
    seconds: float = 0.0
    parameters: dict = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict:
        return {"prior": self.name, "seconds": round(self.seconds, 3), "parameters": self.parameters,
                "error": self.error}


def parse_names(text: str | Sequence[str] | None) -> list[str]:
    """'interp,graph' -> ['interp', 'graph'] (order kept, duplicates dropped); unknown names fail clearly."""
    from anymole_usd import registry

    if not text:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    names = list(dict.fromkeys(n.strip() for n in items if n.strip()))
    known = registry.names("priors")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"--compare: no prior named {unknown[0]!r} (available: {', '.join(known)})")
    return names


def generated_step(generated: np.ndarray) -> float:
    """Spacing of the generated samples (1 timecode unless the run used --fps)."""
    g = np.sort(np.asarray(generated, dtype=np.float64))
    d = np.diff(g)
    d = d[d > 1e-6]
    return float(d.min()) if len(d) else 1.0


def compare_priors(scene, provenance, names: Sequence[str], *, seed: int | None = None,
                   progress: Callable[[str, float], None] | None = None) -> list[CompareRun]:
    """Run each prior of ``names`` on the gaps ``provenance`` records for ``scene``'s animation.

    A prior that raises is reported in its run's ``error`` (the others still
    run); bad input (an unknown prior, a shot without a result) raises InputError.
    """
    from anymole_usd.pipeline import InbetweenOptions, fill, plan

    names = parse_names(names)
    if not names:
        return []
    if provenance is None or not provenance.generated_times:
        raise InputError("--compare needs an in-between result composed in the shot (run `anymole-usd "
                         "inbetween` first)", file=scene.file, prim=scene.animation_path)
    stage = scene.stage
    step = generated_step(provenance.generated_times)
    base = InbetweenOptions(prim=scene.animation_path, context=tuple(provenance.context_range),
                            keys=list(provenance.keyframes), fps=stage.GetTimeCodesPerSecond() / step,
                            seed=provenance.seed if seed is None else seed)
    _, jobs = plan(scene.file, base, stage)
    job = jobs[0]
    expected = np.sort(np.asarray(provenance.generated_times))
    got = job.timeline.generated_times
    if len(got) != len(expected) or not np.allclose(np.sort(got), expected, atol=1e-3):
        raise InputError(f"the result's provenance (context {provenance.context_range}, keys "
                         f"{list(provenance.keyframes)}) does not give back its {len(expected)} generated times",
                         file=scene.file, prim=scene.animation_path)
    runs = []
    for i, name in enumerate(names):
        if progress:
            progress(f"prior {name}", i / len(names))
        t0 = time.perf_counter()
        try:
            done = fill(replace(job, result=None), replace(base, prior=name), stage)
        except InputError:
            raise
        except Exception as exc:  # one failing prior must not lose the report
            runs.append(CompareRun(name, None, time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}"))
            continue
        runs.append(CompareRun(name, on_frames(scene.motion, done.result), time.perf_counter() - t0,
                               dict(done.parameters)))
    if progress:
        progress("priors", 1.0)
    return runs


def on_frames(frames: Motion, filled: Motion) -> Motion:
    """``frames`` with every sample that ``filled`` has replaced by it (the prior's output on the scene's frames)."""
    out = frames.copy()
    idx = out.index_of(filled.times)
    ok = idx >= 0
    out.rotations[idx[ok]] = filled.rotations[ok]
    out.translations[idx[ok]] = filled.translations[ok]
    out.scales[idx[ok]] = filled.scales[ok]
    return out
