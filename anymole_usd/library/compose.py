"""``compose``: new animation of a requested length from a motion library (Video Motion Graphs).

A request names a duration and optionally tag spans, keyframes from a shot,
music and a transition prior. :func:`compose` picks the library skeleton,
builds its motion graph (:mod:`.synthesis`), turns the request into per-node
costs, searches the path, assembles it (:mod:`.assembly`), lets a prior
re-fill the frames around each jump when asked, and returns the Motion with
its segments; :func:`write_composition` writes it as a new USD stage.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from anymole_usd.blas import one_blas_thread
from anymole_usd.errors import InputError
from anymole_usd.motion import Motion
from anymole_usd.skeleton import Skeleton
from anymole_usd.timeline import MAX_FPS

from . import features as feat
from . import music as beats
from .assembly import Piece, assemble, meet_keys
from .footing import lock_stances
from .store import Library, SkeletonInfo
from .synthesis import Costs, build_graph, search, segments
from .tags import TagSpan, node_mask, parse_spans

BLOCK_SECONDS = 0.15  # shortest piece of a clip the path plays
BLEND_SECONDS = 0.3  # inertialisation of each jump
KEY_WINDOW = 1.0  # s: how far a keyframe's displacement reaches
W_TAG, W_KEY, W_BEAT, W_STILL = 3.0, 4.0, 2.0, 0.3


@dataclass
class ComposeRequest:
    library: str
    duration: float  # seconds
    skeleton: str | None = None
    tags: str | None = None  # "walk:0-6,run:6-12"
    keys: str | None = None  # a shot whose authored samples are keyframes
    music: str | None = None  # audio file
    seed: int = 0
    fps: float | None = None
    transition_prior: str | None = None


@dataclass
class Composition:
    motion: Motion
    skeleton: Skeleton
    meshes: list
    meters_per_unit: float
    fps: float
    segments: list[dict]
    skeleton_name: str
    size: float  # character size of the output, its units
    source: Motion | None = None  # the played source frames, root-aligned, before blending (for figures)
    jumps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # output frames starting a piece
    music_beats: np.ndarray = field(default_factory=lambda: np.zeros(0))
    key_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"fps": self.fps, "frames": self.motion.num_frames, "skeleton": self.skeleton_name,
                "segments": self.segments, "notes": self.notes}


def _skeleton_for_request(lib: Library, name: str | None, spans: list[TagSpan]) -> SkeletonInfo:
    if name is not None or not spans:
        return lib.skeleton(name)
    wanted = {s.tag for s in spans}
    fits = [s for s in lib.skeletons() if wanted <= {t for c in lib.clips(s.key) for t in c.tag_names()}]
    if not fits:
        known = sorted({t for c in lib.clips() for t in c.tag_names()})
        raise InputError(f"--tags: no skeleton of the library carries every requested tag "
                         f"({', '.join(sorted(wanted))}; library tags: {', '.join(known) or 'none'})", file=lib.path)
    return max(fits, key=lambda s: sum(c.duration for c in lib.clips(s.key)))


def compose(request: ComposeRequest, progress: Callable[[str, float], None] | None = None) -> Composition:
    """Search, assemble and return the composition a request asks for (nothing is written)."""
    with one_blas_thread():
        return _compose(request, progress)


MAX_FRAMES = 2_000_000  # output (and graph) frames one compose may make: hours at any real rate


def _compose(request: ComposeRequest, progress: Callable[[str, float], None] | None) -> Composition:
    report = progress or (lambda msg, frac: None)
    if not (np.isfinite(request.duration) and request.duration > 0):
        raise InputError(f"--duration must be a positive number of seconds, got {request.duration:g}")
    if request.fps is not None and not (np.isfinite(request.fps) and 0 < request.fps <= MAX_FPS):
        raise InputError(f"--fps must be a number greater than 0 and at most {MAX_FPS:g}, got {request.fps:g}")
    for rate, what in ((feat.NODE_RATE, "the motion graph's node rate"), (request.fps, "--fps")):
        if rate and request.duration * rate > MAX_FRAMES:  # the search and output arrays grow with it
            raise InputError(f"--duration {request.duration:g} s at {what} ({rate:g}/s) is over {MAX_FRAMES:,} "
                             "frames; compose shorter pieces")
    if request.transition_prior:
        from .transitions import load_prior

        load_prior(request.transition_prior)  # a bad name fails before any work
    lib = Library.open(request.library)
    spans = parse_spans(request.tags, request.duration)
    sk = _skeleton_for_request(lib, request.skeleton, spans)
    clips = {c.id: c for c in lib.clips(sk.key)}
    fps = float(request.fps) if request.fps else _common_rate(clips.values())
    nodes = lib.nodes(sk.key)
    rate = feat.NODE_RATE
    frames = int(round(request.duration * rate)) + 1
    costs = Costs(frames=frames, block=max(2, int(round(BLOCK_SECONDS * rate))),
                  tag_of_frame=np.full(frames, -1, np.int64), tag_miss_prefix=np.zeros((nodes.size + 1, 0)),
                  w_tag=W_TAG)
    notes: list[str] = []
    has = _tag_costs(costs, spans, nodes, clips, rate, sk)
    report("motion graph", 0.05)
    graph = build_graph(nodes, lib.index(sk.key), targets=[has[:, i] for i in range(has.shape[1])])
    rng = np.random.default_rng(request.seed)  # variations: start preference and transition costs jittered
    costs.start_cost = 0.5 * rng.random(nodes.size)
    graph.cost = graph.cost + 0.2 * rng.random(len(graph.cost)) * (graph.cost > 0)
    keys = None
    if request.keys:
        report("keyframes", 0.1)
        keys = _read_keys(request.keys, lib, sk, request.duration)
        _key_costs(costs, keys, lib, sk, nodes, graph.threshold, rate)
    music_beats = np.zeros(0)
    if request.music:
        report("music beats", 0.15)
        music_beats, tempo = beats.music_beats(request.music)
        music_beats = music_beats[music_beats <= request.duration + 1e-6]
        notes.append(f"music: {len(music_beats)} beats in {request.duration:g} s, tempo {tempo:.1f} BPM")
        _music_costs(costs, music_beats, nodes, rate, fps)

    report("path search", 0.2)
    segs = segments(search(graph, costs), costs.block, frames, nodes.clip)
    report("assembly", 0.5)
    motion, pieces, primary, source = _assemble(lib, sk, segs, nodes, fps, request.duration, clips)
    skeleton, meshes, mpu = _character(lib, primary)
    r, t, s = motion.rotations, motion.translations, motion.scales
    jumps = np.array([p.first for p in pieces[1:]], dtype=np.int64)
    key_frames = np.rint(keys[1] * fps).astype(np.int64) if keys else np.zeros(0, np.int64)
    if request.transition_prior:
        report(f"transitions by prior '{request.transition_prior}'", 0.7)
        from .transitions import refill

        r, t, s = refill(request.transition_prior, skeleton, r, t, s, fps, jumps, key_frames, request.seed, mpu)
    if keys:
        key_motion, _, key_mpu = keys
        pose = (key_motion.rotations, key_motion.translations * (key_mpu / mpu), key_motion.scales)
        r, t, s = meet_keys(feat.body_frame_from_dict(sk.frame), skeleton.parents, r, t, s, key_frames, pose,
                            int(round(KEY_WINDOW * fps)))
    out = Motion(times=motion.times, rotations=r, translations=t, scales=s, fps=fps, joints=list(skeleton.joints))
    report("done", 1.0)
    return Composition(out, skeleton, meshes, mpu, fps, _segment_records(pieces, lib, fps, request.duration),
                       sk.name, primary.size, source, jumps, music_beats,
                       keys[1] if keys else np.zeros(0), notes)


def _key_costs(costs: Costs, keys, lib: Library, sk: SkeletonInfo, nodes, threshold: float, rate: float) -> None:
    """Pose distance (pose columns: keys have no velocity) of every node to every key, at its time."""
    key_motion, key_times, _ = keys
    kf = lib.features(sk.key, _skeleton_of(lib, sk), key_motion, dense=False)
    pose = sk.pose_dims
    d = nodes.features[:, :pose].astype(np.float64)[None] - kf[:, None, :pose]
    dist = np.sqrt(np.einsum("knd,knd->kn", d, d) / len(sk.frame["joints"]))
    costs.key_frames = np.rint(key_times * rate).astype(np.int64)
    costs.key_cost = W_KEY * (dist / threshold) ** 2


def _music_costs(costs: Costs, music_beats: np.ndarray, nodes, rate: float, fps: float) -> None:
    """A cost where a music beat falls on a node far from a kinematic beat, and one for stillness."""
    dist = beats.node_beat_distance(nodes.speed, nodes.clip, rate)
    sigma = max(beats.BAS_SIGMA_FRAMES * rate / fps, 1.0)  # in nodes; at least one
    costs.beat_frames = np.rint(music_beats * rate).astype(np.int64)
    costs.beat_cost = W_BEAT * (1.0 - np.exp(-dist ** 2 / (2 * sigma ** 2)))
    # Music asks for motion: nodes slower than the skeleton's median speed cost a little each, so
    # beats are met by moving on them, not by a still pose's wobbles.
    still = W_STILL * np.clip(1.0 - nodes.speed / max(float(np.median(nodes.speed)), 1e-9), 0.0, 1.0)
    costs.frame_cost_prefix = np.concatenate([[0.0], np.cumsum(still)])


def _common_rate(clips) -> float:
    by_rate: dict[float, float] = {}
    for c in clips:
        by_rate[c.fps] = by_rate.get(c.fps, 0.0) + c.duration
    return max(by_rate.items(), key=lambda kv: (kv[1], kv[0]))[0]


def _tag_costs(costs: Costs, spans: list[TagSpan], nodes, clips: dict, rate: float,
               sk: SkeletonInfo) -> np.ndarray:
    """Fill the tag part of ``costs``; returns (N, T) which node carries which requested tag."""
    if not spans:
        return np.zeros((nodes.size, 0), dtype=bool)
    tags = list(dict.fromkeys(s.tag for s in spans))
    has = np.zeros((nodes.size, len(tags)), dtype=bool)
    starts = np.flatnonzero(np.concatenate([[True], nodes.clip[1:] != nodes.clip[:-1]]))
    ends = np.concatenate([starts[1:], [nodes.size]])
    for a, b in zip(starts, ends):  # per clip
        c = clips[int(nodes.clip[a])]
        for i, tag in enumerate(tags):
            has[a:b, i] = node_mask(c.tags, tag, nodes.time[a:b])
    missing = [tag for i, tag in enumerate(tags) if not has[:, i].any()]
    if missing:
        known = sorted({t for c in clips.values() for t in c.tag_names()})
        raise InputError(f"--tags: no clip of skeleton {sk.name} carries {', '.join(missing)} "
                         f"(its tags: {', '.join(known) or 'none'})")
    for span in spans:  # later spans win where spans overlap
        a = int(np.ceil(span.start * rate - 1e-6))
        b = int(np.floor(span.end * rate + 1e-6))
        costs.tag_of_frame[a:b + 1] = tags.index(span.tag)
    costs.tag_miss_prefix = np.concatenate([np.zeros((1, len(tags))), np.cumsum(~has, axis=0)])
    return has


def _skeleton_of(lib: Library, sk: SkeletonInfo) -> Skeleton:
    first = min(lib.clips(sk.key), key=lambda c: c.id)
    return lib.source(first).skeleton


def _read_keys(shot: str, lib: Library, sk: SkeletonInfo, duration: float):
    """The shot's authored samples on the library skeleton's joints (library joint order, Y-up) and
    their times in seconds."""
    from pxr import UsdGeom

    from anymole_usd.reading import authored_times, find_bindings, open_stage, read_motion, skel_space_up

    from .sources import to_y_up

    stage = open_stage(shot)
    names = list(sk.joint_names)
    for b in find_bindings(stage, shot):
        if not b.animation_path or sorted(b.skeleton.short_names) != sorted(names):
            continue
        times = authored_times(stage.GetPrimAtPath(b.animation_path))
        m = read_motion(stage, b, times=times, file=shot)
        skel, m, _ = to_y_up(b.skeleton, m, skel_space_up(stage, b.skeleton_path))
        order = [skel.short_names.index(n) for n in names]
        m = m.select(np.arange(m.num_frames))
        m.rotations, m.translations, m.scales = m.rotations[:, order], m.translations[:, order], m.scales[:, order]
        seconds = times / stage.GetTimeCodesPerSecond()
        if seconds.max() > duration + 1e-6:
            bad = float(times[np.argmax(seconds > duration + 1e-6)])
            raise InputError(f"keyframe at {seconds.max():g} s lies after --duration {duration:g} s",
                             file=shot, prim=b.animation_path, time=bad)
        if seconds.min() < -1e-6:
            raise InputError("keyframes before time 0 cannot be composed", file=shot, prim=b.animation_path,
                             time=float(times[0]))
        return m, seconds, float(UsdGeom.GetStageMetersPerUnit(stage))
    raise InputError(f"no animated Skeleton with the joints of library skeleton {sk.name}", file=shot)


def _assemble(lib: Library, sk: SkeletonInfo, segs, nodes, fps: float, duration: float, clips: dict):
    n_out = int(round(duration * fps)) + 1
    times = np.arange(n_out, dtype=np.float64)
    bounds = [int(np.ceil(s.out_start / feat.NODE_RATE * fps - 1e-6)) for s in segs] + [n_out]
    sources = {}
    used = [s.clip for s in segs]
    primary = next((c for c in used if clips[c].has_mesh), used[0])
    mpu = clips[primary].meters_per_unit
    pieces = []
    for s, a, b in zip(segs, bounds[:-1], bounds[1:]):
        if b <= a:
            continue
        c = clips[s.clip]
        if c.id not in sources:
            sources[c.id] = lib.motion(c)
        src0 = float(nodes.time[s.first_node]) + (a / fps - s.out_start / feat.NODE_RATE)
        pieces.append(Piece(sources[c.id], c.meters_per_unit / mpu, src0, a, b - a, c.id))
    frame = feat.body_frame_from_dict(sk.frame)
    parents = lib.source(clips[primary]).skeleton.parents  # same joint names: one hierarchy
    r, t, s, jumps, raw = assemble(pieces, frame, parents, fps, BLEND_SECONDS)
    r = lock_stances(lib.source(clips[primary]).skeleton, frame, clips[primary].size, fps, raw, (r, t, s), jumps,
                     BLEND_SECONDS)
    motion = Motion(times=times, rotations=r, translations=t, scales=s, fps=fps)
    source = Motion(times=times, rotations=raw[0], translations=raw[1], scales=raw[2], fps=fps)
    return motion, pieces, clips[primary], source


def _character(lib: Library, clip):
    """Skeleton, skinned meshes and metersPerUnit of the clip whose character the output shows."""
    skeleton, meshes = lib.character(clip)
    return skeleton, meshes, clip.meters_per_unit


def _segment_records(pieces, lib: Library, fps: float, duration: float) -> list[dict]:
    out = []
    for i, p in enumerate(pieces):
        c = lib.clip(p.clip)
        start = p.first / fps
        end = pieces[i + 1].first / fps if i + 1 < len(pieces) else duration
        out.append({"clip": c.name, "tags": c.tag_names(),
                    "source": [round(p.source_start, 6), round(p.source_start + end - start, 6)],
                    "output": [round(start, 6), round(end, 6)]})
    return out
