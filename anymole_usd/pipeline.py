"""The in-betweening runner: USD -> Motion -> prior -> Motion -> result layer.

The runner is the only piece that touches the stage. Priors receive arrays
(an :class:`InbetweenRequest`) and return a Motion; the runner checks it,
puts the authored samples back untouched and hands the result to writing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import __version__, registry
from .errors import InputError, PluginError
from .motion import Motion
from .prior import InbetweenRequest
from .reading import SkelBinding, authored_times, find_bindings, open_stage, read_motion, skel_space_up
from .schema import Provenance, read_provenance
from .timeline import Timeline, TimelineError, build_timeline


@dataclass
class InbetweenOptions:
    prim: str | None = None
    context: tuple[float, float] | None = None
    keys: list[float] | None = None
    prior: str | None = None
    output: str | None = None
    fps: float | None = None
    in_place: bool = False
    seed: int = 0
    params: dict = field(default_factory=dict)
    references: list[str] = field(default_factory=list)
    library: str | None = None  # a motion library folder the prior retrieves from (library/retrieval.py)
    # "same": only library clips on the shot's skeleton (same joint names); "all": also other humanoid
    # skeletons through the retarget mapping (library/cross_skeleton.py: seconds more per shot, rarely chosen).
    library_skeletons: str = "same"
    video_model: str | None = None
    force: bool = False  # replace an existing -o file that is not this shot's result (its bytes are kept)


@dataclass
class AnimationJob:
    """One SkelAnimation to fill: what was read and what the prior produced."""

    binding: SkelBinding
    anim_path: str
    timeline: Timeline
    authored: Motion  # every authored sample, skeleton order, raw values
    result: Motion | None = None  # every output sample
    prior: str = ""
    parameters: dict = field(default_factory=dict)
    in_place_generated: np.ndarray | None = None
    details: dict = field(default_factory=dict)  # provenance details: library, references, per-gap sources
    notes: list[str] = field(default_factory=list)


def cache_dir() -> str:
    """Content-addressed artifact cache: $ANYMOLE_USD_CACHE or ~/.cache/anymole-usd."""
    return os.environ.get("ANYMOLE_USD_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "anymole-usd")


def default_prior(video_model: str | None = None) -> str:
    """`video` when a video model is configured and the plugin exists, else `graph`, else `interp`."""
    available = registry.names("priors")
    from .settings import video_model_setting

    if (video_model or video_model_setting()) and "video" in available:
        return "video"
    return "graph" if "graph" in available else "interp"


def plan(shot: str, options: InbetweenOptions, stage=None) -> tuple[object, list[AnimationJob]]:
    """Open the shot and work out, per bound animation, the context, keys and gaps."""
    stage = stage or open_stage(shot)
    bindings = [b for b in find_bindings(stage, shot) if b.animation_path]
    if options.prim:
        bindings = _select_prim(stage, shot, bindings, options.prim)
    if not bindings:
        if not find_bindings(stage, shot):
            raise InputError("stage has no UsdSkel Skeleton", file=shot)
        raise InputError("no Skeleton in the stage has a bound SkelAnimation", file=shot)
    jobs = [AnimationJob(b, b.animation_path, timeline, read_motion(stage, b, times=times, file=shot),
                         in_place_generated=generated)
            for b, times, generated, timeline in timelines(stage, shot, bindings, options)]
    return stage, jobs


def timelines(stage, shot: str, bindings: list[SkelBinding], options: InbetweenOptions
              ) -> list[tuple[SkelBinding, np.ndarray, np.ndarray | None, Timeline]]:
    """Per bound animation (each once): (binding, authored times, times an earlier in-place run
    generated or None, timeline). The samples themselves are not read (batch discovery asks this of
    every file in a folder)."""
    step = stage.GetTimeCodesPerSecond() / options.fps if options.fps else 1.0
    out, seen = [], set()
    for b in bindings:
        if not b.animation_path or b.animation_path in seen:  # one animation on several skeletons: once
            continue
        seen.add(b.animation_path)
        prim = stage.GetPrimAtPath(b.animation_path)
        times = authored_times(prim)
        prov = read_provenance(prim)
        generated = None
        if prov is not None and prov.mode == "inPlace" and prov.generated_times:
            # An earlier in-place run filled these: they are not authored input.
            generated = np.asarray(prov.generated_times)
            times = times[~np.any(np.abs(times[:, None] - generated[None]) < 1e-3, axis=1)]
        if len(times) == 0:
            raise InputError("SkelAnimation has no time samples", file=shot, prim=b.animation_path)
        try:
            timeline = build_timeline(times, options.context, options.keys, step=step)
        except TimelineError as exc:
            raise InputError(str(exc), file=shot, prim=b.animation_path) from None
        out.append((b, times, generated, timeline))
    return out


def _select_prim(stage, shot, bindings, prim_path):
    from pxr import Sdf, UsdSkel

    if not Sdf.Path.IsValidPathString(prim_path):  # USD would print a warning and find nothing
        raise InputError("not a valid prim path", file=shot, prim=prim_path)
    prim = stage.GetPrimAtPath(prim_path)
    if not prim:
        raise InputError("no such prim", file=shot, prim=prim_path)
    if prim.IsA(UsdSkel.Skeleton):
        chosen = [b for b in bindings if b.skeleton_path == prim_path]
        if not chosen:
            raise InputError("Skeleton has no bound SkelAnimation", file=shot, prim=prim_path)
        return chosen
    if not prim.IsA(UsdSkel.Animation):
        raise InputError(f"is a {prim.GetTypeName() or 'typeless prim'}, not a SkelAnimation", file=shot,
                         prim=prim_path)
    chosen = [b for b in bindings if b.animation_path == prim_path]
    if not chosen:
        raise InputError("SkelAnimation is not bound to any Skeleton", file=shot, prim=prim_path)
    return chosen


def _load_prior(name: str, params: dict):
    try:
        cls = registry.load("priors", name)
    except PluginError as exc:
        raise InputError(str(exc)) from None
    return cls(**params)


def _load_references(paths: list[str], job: AnimationJob) -> tuple[list[Motion], list[dict]]:
    """Motions from other files/prims whose joints match this skeleton (for the graph prior), and a
    label per motion for provenance."""
    refs, labels = [], []
    for path in paths:
        stage = open_stage(path)
        for b in find_bindings(stage, path):
            if b.animation_path and b.skeleton.joints == job.binding.skeleton.joints:
                refs.append(read_motion(stage, b, file=path))
                labels.append({"source": "reference", "file": os.path.abspath(path), "prim": b.animation_path,
                               "fps": float(refs[-1].fps)})
    return refs, labels


def _retrieve(job: AnimationJob, options: InbetweenOptions, known: Motion, up_axis: str, library=None):
    """What the motion library contributes to this animation (library/retrieval.py), or None.

    ``library``: the run's open Library (its arrays, index and decoded clips then load once for every
    animation of the shot); opened here when not given."""
    if not options.library:
        return None
    from .blas import one_blas_thread
    from .library.retrieval import retrieve
    from .library.store import Library

    with one_blas_thread():
        got = retrieve(library or Library.open(options.library), job.binding.skeleton, known, job.timeline,
                       up_axis, other_skeletons=options.library_skeletons == "all")
    if got.note:
        job.notes.append(f"{job.anim_path}: {got.note}")
    return got


def _details(prior, options: InbetweenOptions, labels: list[dict], retrieval) -> dict:
    """Provenance details of a run with references or a library: what was offered, and per gap what
    filled it (clip and source frames of every library or reference stretch the prior played)."""
    if not options.library and not options.references:
        return {}
    from .library.retrieval import gap_provenance

    details: dict = {}
    if retrieval is not None:
        details["library"] = retrieval.library
        details["library_skeleton"] = retrieval.skeleton
        details["library_skeletons"] = options.library_skeletons
        bridged = getattr(retrieval, "bridged", None)
        if bridged:
            details["library_bridged_skeletons"] = list(bridged)
        details["library_clips_offered"] = [{k: lab[k] for k in ("clip", "frames")} for lab in labels
                                            if lab.get("source") == "library"]
    if options.references:
        details["references"] = [{k: lab[k] for k in ("file", "prim")} for lab in labels
                                 if lab.get("source") == "reference"]
    gaps = getattr(prior, "gaps", None)
    if isinstance(gaps, list):
        details["gaps"] = gap_provenance(gaps, labels)
    else:
        details["note"] = f"prior '{prior.name}' does not use reference motion or a library"
    return details


def fill(job: AnimationJob, options: InbetweenOptions, stage, progress: Callable | None = None,
         library=None) -> AnimationJob:
    """Run the prior on one animation and assemble every output sample."""
    from pxr import UsdGeom

    tl = job.timeline
    name = options.prior or default_prior(options.video_model)
    params = dict(options.params)
    if name == "video" and options.video_model:
        params.setdefault("video_model", options.video_model)
    prior = _load_prior(name, params)
    known = job.authored.at_times(tl.known_times)
    up_axis = skel_space_up(stage, job.binding.skeleton_path)  # skeleton space, not stage
    references, labels = _load_references(options.references, job)
    retrieval = _retrieve(job, options, known, up_axis, library)
    if retrieval is not None:
        references, labels = references + retrieval.references, labels + retrieval.labels
    request = InbetweenRequest(
        skeleton=job.binding.skeleton, known=known, timeline=tl, seed=options.seed,
        references=references, reference_labels=labels, up_axis=up_axis,
        meters_per_unit=UsdGeom.GetStageMetersPerUnit(stage),
        name=job.anim_path, progress=progress,
    )
    if progress is not None:
        progress(f"{job.anim_path}: prior '{name}'", 0.0)
    if getattr(prior, "needs_character", False):
        # Rendering priors get the character as arrays; they never see the stage.
        request.character = registry.load("stages", "render").read_character(stage, job.binding)
        request.cache_dir = cache_dir()
    try:
        generated = prior.fill(request)
    except InputError as exc:  # a prior sees arrays, not the stage: name the shot file and prim here
        if exc.file and exc.prim:
            raise
        layer = stage.GetRootLayer()
        raise type(exc)(exc.message, file=exc.file or layer.realPath or layer.identifier,
                        prim=exc.prim or job.anim_path, time=exc.time) from None
    _check_generated(generated, tl, job)
    kept = job.authored.at_times(np.setdiff1d(tl.output_times, tl.generated_times))
    from .animation_specs import align_signs

    generated = align_signs(generated, known)
    job.result = Motion.concatenate([kept, generated])
    job.prior = name
    job.parameters = prior.parameters()
    job.details = _details(prior, options, labels, retrieval)
    return job


def _check_generated(m: Motion, tl: Timeline, job: AnimationJob) -> None:
    expected = tl.generated_times
    if m.num_frames != len(expected) or not np.allclose(m.times, expected, atol=1e-6):
        raise RuntimeError(f"prior returned {m.num_frames} samples for {len(expected)} requested times")
    if m.num_joints != job.binding.skeleton.num_joints:
        raise RuntimeError(f"prior returned {m.num_joints} joints for a {job.binding.skeleton.num_joints}-joint skeleton")
    m.rotations = m.rotations / np.linalg.norm(m.rotations, axis=-1, keepdims=True)
    m.validate(where=f"prior output for {job.anim_path}")


def options_digest(options: InbetweenOptions) -> str:
    """A digest of everything in ``options`` that changes the result (for ``batch --resume``)."""
    import hashlib
    import json

    fields = {k: v for k, v in vars(options).items() if k not in ("output", "force")}
    fields["references"] = [_file_sha(p) for p in options.references]
    # A library changed by `library build` (its manifest records every source's hash) changes the result.
    fields["library"] = _file_sha(os.path.join(options.library, "manifest.json")) if options.library else None
    fields["tool"] = __version__
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _file_sha(path: str) -> str:
    from .atomic_files import digest

    return digest(path)["sha256"] if os.path.isfile(path) else f"missing:{path}"


def _provenance(job: AnimationJob, shot: str, options: InbetweenOptions) -> Provenance:
    tl = job.timeline
    return Provenance(
        prior=job.prior, parameters=job.parameters, tool_version=__version__, source_layer=os.path.basename(shot),
        source_prim=job.anim_path, context_range=tl.context, keyframes=[float(k) for k in tl.keys],
        generated_times=[float(t) for t in tl.generated_times], seed=options.seed, tool="inbetween",
        details=job.details,
    )


def run_inbetween(shot: str, options: InbetweenOptions | None = None, progress: Callable | None = None) -> dict:
    """Fill every gap of every bound animation in ``shot`` and compose the result. Returns a report.

    The run reads the shot as the user authored it (earlier results of this
    shot set aside by the transaction), so a re-run replaces, never stacks,
    and every file it writes is committed at once (see transaction.py).
    """
    from .writing import ResultAnimation, WriteOptions, preflight, session, write_result

    options = options or InbetweenOptions()
    shot = os.path.abspath(shot)
    with session(shot, "inbetween", options.output) as (tx, stage):
        stage, jobs = plan(shot, options, stage)
        tx.record_inputs(stage)
        tx.options_digest = options_digest(options)
        todo = [j for j in jobs if j.timeline.gaps]
        write_options = WriteOptions(options.output, options.in_place, options.force)
        if todo:
            preflight(shot, stage, [j.anim_path for j in todo], write_options, tx)
        library = None
        if todo and options.library:
            from .library.store import Library

            library = Library.open(options.library)
        for job in todo:
            fill(job, options, stage, progress, library)
        report = {"shot": shot, "animations": [], "output": None, "edits": None}
        if todo:
            from .transaction import checkpoint

            checkpoint("planned")
            animations = [ResultAnimation(j.binding, j.anim_path, j.result, _provenance(j, shot, options),
                                          generated_times=j.timeline.generated_times) for j in todo]
            report = write_result(shot, stage, animations, write_options, tx)
        for job, entry in zip(todo, report["animations"]):
            entry.update(prim=job.anim_path, skeleton=job.binding.skeleton_path, prior=job.prior,
                         parameters=job.parameters, **job.timeline.to_dict())
            if job.details:
                entry["details"] = job.details
        report["skipped"] = [{"prim": j.anim_path, "reason": "no gaps to fill"} for j in jobs if not j.timeline.gaps]
        report["notes"] = list(tx.notes) + [n for j in todo for n in j.notes]
        return report
