"""The motion library on disk and its read API.

Layout of a library folder::

    LIB/manifest.json                       files (path, hash), clips, skeletons, tags
    LIB/skeletons/<key>.<gen>.npz           node arrays of one skeleton (features, clip, time, ...)
                                            and its index projection (the cKDTree is rebuilt on open)
    LIB/motion/<hash>.npz                   decoded clips of one source file (see .motion_cache)

Source files stay where they are. Each is recorded by its path relative to
the library folder (so a library moved together with its sources keeps
working) and its absolute path as a fallback, with a SHA-256 of its bytes and
of the local layers a USD file uses. :meth:`Library.motion` reads a clip's
decoded copy (or its source) and refuses a source whose content changed since
the build.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from anymole_usd.errors import InputError
from anymole_usd.motion import Motion

from . import features as feat
from . import motion_cache
from .index import FeatureIndex
from .sources import SourceClip, content_hash, read_clips

MANIFEST = "manifest.json"
FORMAT = "anymole-usd motion library"
FORMAT_VERSION = 1


@dataclass
class ClipInfo:
    id: int
    file: str  # key of the source file in the manifest (a path relative to the library, or absolute)
    label: str
    skeleton: str  # skeleton key
    fps: float
    frames: int
    duration: float  # seconds
    start: float  # seconds of the first sample in the source file
    size: float  # character size, file units
    meters_per_unit: float
    has_mesh: bool
    nodes: tuple[int, int]  # [first, end) rows in the skeleton's node arrays
    tags: list[dict] = field(default_factory=list)
    skeleton_prim: str | None = None

    @property
    def name(self) -> str:
        """``file#label`` as tags.csv and messages name it."""
        return f"{os.path.basename(self.file)}#{self.label}"

    def tag_names(self) -> list[str]:
        return sorted({t["tag"] for t in self.tags})


@dataclass
class SkeletonInfo:
    key: str
    name: str
    joint_names: list[str]
    up_axis: str
    frame: dict  # BodyFrame as a dict (features.body_frame_from_dict)
    pose_dims: int
    nodes: int
    arrays: str | None  # file name inside LIB/skeletons


@dataclass
class Nodes:
    """A skeleton's nodes: one row every 1 / NODE_RATE s of every clip, clips one after another."""

    features: np.ndarray  # (N, D) float32
    clip: np.ndarray  # (N,) clip id
    time: np.ndarray  # (N,) seconds from the clip's first sample
    speed: np.ndarray  # (N,) mean joint speed, sizes / s
    ground: np.ndarray  # (N, 2) sizes
    yaw: np.ndarray  # (N,) radians, unwrapped per clip
    knn: np.ndarray | None = None  # (N, k) nearest nodes (own clip within 0.5 s left out), from the build
    knn_distance: np.ndarray | None = None  # (N, k)

    @property
    def size(self) -> int:
        return len(self.clip)


@dataclass
class Hits:
    """Nearest library nodes of each query row (M rows, k hits each), nearest first."""

    node: np.ndarray  # (M, k) node rows
    clip: np.ndarray  # (M, k) clip ids
    time: np.ndarray  # (M, k) seconds from the clip's first sample
    frame: np.ndarray  # (M, k) nearest source frame of the clip
    distance: np.ndarray  # (M, k) RMS per feature joint, character sizes


def skeleton_key(joint_names: list[str], up_axis: str) -> str:
    import hashlib

    return hashlib.sha1(("\n".join(joint_names) + "|" + up_axis).encode()).hexdigest()[:12]


class Library:
    """A motion library folder, opened read-only. Build or update one with :func:`build_library`."""

    def __init__(self, path: str, manifest: dict):
        self.path = os.path.abspath(path)
        self.manifest = manifest
        self._clips = {c["id"]: _clip_info(c) for c in manifest.get("clips", [])}
        self._nodes: dict[str, Nodes] = {}
        self._index: dict[str, FeatureIndex] = {}
        self._checked: dict[str, tuple] = {}
        self._sources: dict[str, list[SourceClip]] = {}  # files read in full
        self._decoded: dict[int, SourceClip] = {}  # clips from the motion cache

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Library":
        path = os.fspath(path)
        mpath = os.path.join(path, MANIFEST)
        if not os.path.isfile(mpath):
            raise InputError("not a motion library (no manifest.json): build one with `anymole-usd library build`",
                             file=path)
        try:
            with open(mpath, encoding="utf-8") as fh:
                manifest = json.load(fh)
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable library manifest ({exc})", file=mpath) from None
        if manifest.get("format") != FORMAT:
            raise InputError("not a motion library manifest", file=mpath)
        if int(manifest.get("version", 0)) > FORMAT_VERSION:
            raise InputError(f"library format {manifest.get('version')} is newer than this tool reads "
                             f"({FORMAT_VERSION})", file=mpath)
        return cls(path, manifest)

    @property
    def up_to_date(self) -> bool:
        """Whether the stored features were computed with this tool's feature definition."""
        return self.manifest.get("features", {}).get("definition") == feat.definition()

    def _require_current(self) -> None:
        if not self.up_to_date:
            raise InputError("the library's features were computed by another feature definition: run "
                             "`anymole-usd library build LIB` to update it", file=self.path)

    # ------------------------------------------------------------------ catalogue

    def skeletons(self) -> list[SkeletonInfo]:
        return [_skeleton_info(k, s) for k, s in self.manifest.get("skeletons", {}).items()]

    def skeleton(self, name: str | None = None) -> SkeletonInfo:
        """A skeleton by name, key, or the name of a file or clip on it; default: the one with most clip time."""
        sks = self.skeletons()
        if not sks:
            raise InputError("the library has no clips", file=self.path)
        if name is None:
            return max(sks, key=lambda s: (sum(c.duration for c in self.clips(s.key)), s.name))
        for s in sks:
            if name in (s.name, s.key):
                return s
        owners = {c.skeleton for c in self.clips() if name in (os.path.basename(c.file), c.file, c.label, c.name,
                                                                  os.path.splitext(os.path.basename(c.file))[0])}
        if len(owners) == 1:
            return next(s for s in sks if s.key in owners)
        known = ", ".join(s.name for s in sks)
        what = "several skeletons" if owners else "no skeleton"
        raise InputError(f"--skeleton {name!r} matches {what} of the library (skeletons: {known})", file=self.path)

    def skeleton_for(self, joint_names: list[str], up_axis: str = "Y") -> SkeletonInfo | None:
        """The library skeleton with exactly these joint names (same names = same skeleton), if any."""
        key = skeleton_key(list(joint_names), up_axis)
        data = self.manifest.get("skeletons", {}).get(key)
        return _skeleton_info(key, data) if data else None

    def clips(self, skeleton: str | None = None) -> list[ClipInfo]:
        """Clips of one skeleton (key or name), or of all."""
        key = None if skeleton is None else self.skeleton(skeleton).key
        return [c for c in self._clips.values() if key is None or c.skeleton == key]

    def clip(self, clip_id: int) -> ClipInfo:
        try:
            return self._clips[int(clip_id)]
        except KeyError:
            raise InputError(f"no clip {clip_id} in the library", file=self.path) from None

    def files(self) -> dict[str, dict]:
        return dict(self.manifest.get("files", {}))

    # ------------------------------------------------------------------ sources

    def source_path(self, file_key: str) -> str | None:
        """Where a source file is now: relative to the library first, then its recorded absolute path."""
        rec = self.manifest["files"][file_key]
        for p in (os.path.join(self.path, rec["path"]), rec.get("absolute")):
            if p and os.path.isfile(p):
                return os.path.abspath(p)
        return None

    def _dependencies(self, file_key: str, root: str) -> list[str]:
        rec = self.manifest["files"][file_key]
        base = os.path.dirname(root)
        return [os.path.normpath(os.path.join(base, d)) for d in rec.get("dependencies", [])]

    def source(self, clip: ClipInfo | int) -> SourceClip:
        """A clip's rig and samples: the build's decoded copy (:mod:`.motion_cache`) once its source is found
        unchanged, else re-read from the source (hash checked; each file read once per Library). Skinned
        meshes come with a re-read only: use :meth:`character` for them."""
        c = clip if isinstance(clip, ClipInfo) else self.clip(clip)
        if c.file not in self._sources:
            cached = self._cached(c)
            if cached is not None:
                return cached
        for s in self._read(c.file):
            if s.label == c.label:
                return s
        raise InputError(f"clip {c.label!r} is no longer in the file", file=self.source_path(c.file))

    def _cached(self, c: ClipInfo) -> SourceClip | None:
        if c.id in self._decoded:
            return self._decoded[c.id]
        rec = self.manifest["files"][c.file]
        name, ids = rec.get("motion"), rec.get("clips", [])
        if not isinstance(name, str) or os.path.basename(name) != name or not name.endswith(".npz"):
            name = None  # a manifest names a file of its own motion folder, nothing else
        path = self.source_path(c.file) if name and c.id in ids else None
        if path is None:  # no copy, or a missing source: source() says which
            return None
        self._check_hash(c.file, path)
        got = motion_cache.read(os.path.join(self.path, motion_cache.FOLDER, name), ids.index(c.id), c.fps)
        if got is None or got[1].num_frames != c.frames:
            return None
        skel = self.manifest.get("skeletons", {}).get(c.skeleton, {})
        tags = [t["tag"] for t in c.tags if t.get("source") == "customData"]
        self._decoded[c.id] = SourceClip(label=c.label, skeleton=got[0], motion=got[1],
                                         up_axis=skel.get("up_axis", "Y"), meters_per_unit=c.meters_per_unit,
                                         start=c.start, tags=tags, has_mesh=c.has_mesh, skeleton_prim=c.skeleton_prim)
        return self._decoded[c.id]

    def _read(self, file_key: str) -> list[SourceClip]:
        if file_key not in self._sources:
            path = self.source_path(file_key)
            if path is None:
                raise InputError("library source file is missing (run `anymole-usd library build LIB` to update)",
                                 file=os.path.join(self.path, self.manifest["files"][file_key]["path"]))
            self._check_hash(file_key, path)
            self._sources[file_key] = read_clips(path)[0]
        return self._sources[file_key]

    def motion(self, clip: ClipInfo | int) -> Motion:
        """The clip's samples (Y-up, source rate, times 0..frames-1), see :meth:`source`."""
        return self.source(clip).motion

    def character(self, clip: ClipInfo | int):
        """(Skeleton, skinned meshes) of the character a clip animates, Y-up like its motion
        (meshes: those of its USD SkelRoot or its glTF file; none for BVH)."""
        c = clip if isinstance(clip, ClipInfo) else self.clip(clip)
        if not c.has_mesh:
            return self.source(c).skeleton, []
        if c.skeleton_prim is None:  # glTF: the importer reads the meshes with the clips
            src = next((s for s in self._read(c.file) if s.label == c.label), None) or self.source(c)
            return src.skeleton, list(src.meshes)
        from anymole_usd.plugins.io.axes import convert_scene
        from anymole_usd.plugins.io.usd_scene import read_usd_scene

        src = self.source(c)
        scene = read_usd_scene(self.source_path(c.file), c.skeleton_prim)
        if scene.up_axis in ("Y", "Z"):
            scene = convert_scene(scene, "Y")
        return src.skeleton, list(scene.meshes)

    def _check_hash(self, file_key: str, path: str) -> None:
        rec = self.manifest["files"][file_key]
        deps = self._dependencies(file_key, path)
        stamp = tuple((p, os.path.getmtime(p), os.path.getsize(p)) for p in [path] + deps if os.path.isfile(p))
        if self._checked.get(file_key) == stamp:
            return
        if content_hash([path] + [d for d in deps if os.path.isfile(d)]) != rec["hash"]:
            raise InputError("library source changed since the library was built (run `anymole-usd library "
                             "build LIB` to update)", file=path)
        self._checked[file_key] = stamp

    # ------------------------------------------------------------------ nodes and queries

    def nodes(self, skeleton: str) -> Nodes:
        """Node arrays of a skeleton (key or name)."""
        s = self.skeleton(skeleton)
        self._require_current()
        if s.key not in self._nodes:
            if not s.arrays:
                raise InputError(f"skeleton {s.name} has no node arrays", file=self.path)
            with np.load(os.path.join(self.path, "skeletons", s.arrays)) as z:
                self._nodes[s.key] = Nodes(z["features"], z["clip"], z["time"], z["speed"], z["ground"], z["yaw"],
                                           z["knn"] if "knn" in z else None,
                                           z["knn_distance"] if "knn_distance" in z else None)
        return self._nodes[s.key]

    def index(self, skeleton: str) -> FeatureIndex:
        """The nearest-neighbour index of a skeleton (stored projection, tree built on first use)."""
        s = self.skeleton(skeleton)
        if s.key not in self._index:
            nodes = self.nodes(s.key)
            with np.load(os.path.join(self.path, "skeletons", s.arrays)) as z:
                mean, basis = z["index_mean"], z["index_basis"]
            self._index[s.key] = FeatureIndex.from_projection(nodes.features, len(s.frame["joints"]), mean, basis)
        return self._index[s.key]

    def features(self, skeleton: str, skel, motion: Motion, dense: bool = True) -> np.ndarray:
        """Query features of any samples (a shot on the same joints) in the skeleton's body frame."""
        s = self.skeleton(skeleton)
        return feat.query_features(s.frame, skel, motion, dense=dense)

    def query(self, skeleton: str, features: np.ndarray, k: int = 8, exclude_clips=None) -> Hits:
        """The ``k`` nearest library nodes of each row of ``features`` (from :meth:`features`)."""
        s = self.skeleton(skeleton)
        nodes = self.nodes(s.key)
        index = self.index(s.key)
        q = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if q.shape[1] != nodes.features.shape[1]:
            raise InputError(f"query features have {q.shape[1]} columns, skeleton {s.name} has "
                             f"{nodes.features.shape[1]}", file=self.path)
        k = max(1, min(int(k), nodes.size))
        if exclude_clips is None:
            node, dist = index.query(nodes.features, q, k)
        else:  # a tree over the nodes left (e.g. leave-one-out): exact however many are excluded
            keep = np.flatnonzero(~np.isin(nodes.clip, np.asarray(list(exclude_clips))))
            if len(keep) == 0:
                raise InputError("every clip of the skeleton is excluded", file=self.path)
            sub = index.subset(nodes.features, keep)
            node, dist = sub.query(nodes.features[keep], q, min(k, len(keep)))
            node = keep[node]
        clip = nodes.clip[node]
        time = nodes.time[node].astype(np.float64)
        fps = np.array([self._clips[int(c)].fps for c in clip.ravel()]).reshape(clip.shape)
        return Hits(node, clip, time, np.rint(time * fps).astype(np.int64), dist)


def _clip_info(c: dict) -> ClipInfo:
    return ClipInfo(id=int(c["id"]), file=c["file"], label=c["label"], skeleton=c["skeleton"], fps=float(c["fps"]),
                    frames=int(c["frames"]), duration=float(c["duration"]), start=float(c.get("start", 0.0)),
                    size=float(c["size"]), meters_per_unit=float(c["meters_per_unit"]),
                    has_mesh=bool(c.get("has_mesh")), nodes=tuple(c["nodes"]), tags=list(c.get("tags", [])),
                    skeleton_prim=c.get("skeleton_prim"))


def _skeleton_info(key: str, s: dict) -> SkeletonInfo:
    return SkeletonInfo(key=key, name=s["name"], joint_names=list(s["joint_names"]), up_axis=s.get("up_axis", "Y"),
                        frame=s["frame"], pose_dims=int(s["pose_dims"]), nodes=int(s.get("nodes", 0)),
                        arrays=s.get("arrays"))
