"""Building and updating a motion library folder, incrementally.

Every build re-checks every file the library already knows and the inputs
given: a file whose content hash is unchanged is skipped; a changed one is
re-read and its clips replaced; a new one is added; a known file no longer
found is reported as missing and its clips leave the library (it comes back
when it reappears). Only skeletons whose clips changed get new node arrays
and a new index; a changed feature definition re-reads everything.

Node arrays and indices are written under new names, then the manifest is
replaced atomically, then stale arrays are removed: an interrupted build
leaves the previous library intact. An exclusive lock (``LIB/.lock``) keeps
two builds from interleaving.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from anymole_usd.blas import one_blas_thread
from anymole_usd.errors import InputError

from . import features as feat
from . import motion_cache
from .index import FeatureIndex, fit_projection, neighbours
from .sources import SourceClip, content_hash, find_inputs, read_clips
from .store import FORMAT, FORMAT_VERSION, MANIFEST, Library, skeleton_key
from .tags import apply_rows, read_tags_csv

Progress = Callable[[str, float], None]
GRAPH_K = 8  # nearest neighbours stored per node: the motion graph's transition candidates
GRAPH_EXCLUDE = 0.5  # s: a node's own clip within this is not a transition candidate


@dataclass
class BuildReport:
    library: str
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skeletons_updated: list[str] = field(default_factory=list)
    clips: int = 0
    frames: int = 0
    nodes: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@contextmanager
def _locked(folder: str):
    """Hold ``LIB/.lock``; a build that fails leaves no folder or lock file it made (nothing written)."""
    made = not os.path.isdir(folder)
    lock = os.path.join(folder, ".lock")
    had_lock = os.path.exists(lock)
    os.makedirs(folder, exist_ok=True)
    with open(lock, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError("another build is updating this library", file=folder) from None
        try:
            yield
        except BaseException:
            if not had_lock and not os.path.exists(os.path.join(folder, MANIFEST)):
                import shutil

                for sub in ("skeletons", motion_cache.FOLDER):  # arrays of this build only
                    shutil.rmtree(os.path.join(folder, sub), ignore_errors=True)
                with contextlib.suppress(OSError):
                    os.remove(lock)  # still held: a build starting now takes a new lock file
                if made:
                    with contextlib.suppress(OSError):
                        os.rmdir(folder)
            raise
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def display_path(path: str) -> str:
    """A path as messages show it: relative to the working folder when inside it, else absolute."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _file_key(lib: str, path: str) -> str:
    try:
        return os.path.relpath(path, lib).replace(os.sep, "/")
    except ValueError:  # another drive: no relative path exists
        return os.path.abspath(path)


def _empty_manifest() -> dict:
    from anymole_usd import __version__

    return {"format": FORMAT, "version": FORMAT_VERSION, "tool_version": __version__,
            "features": {"definition": feat.definition(), "node_rate": feat.NODE_RATE,
                         "velocity_weight": feat.VELOCITY_WEIGHT},
            "next_clip": 0, "files": {}, "clips": [], "skeletons": {}}


def build_library(path: str | os.PathLike, inputs: list[str], tags: str | None = None,
                  progress: Progress | None = None) -> BuildReport:
    """Create or update the library at ``path`` with ``inputs`` (files or folders) and a tags.csv."""
    lib_dir = os.path.abspath(os.fspath(path))
    if os.path.exists(lib_dir) and not os.path.isdir(lib_dir):
        raise InputError("library path exists and is not a folder", file=lib_dir)
    exists = os.path.isfile(os.path.join(lib_dir, MANIFEST))
    if os.path.isdir(lib_dir) and not exists and any(not n.startswith(".") for n in os.listdir(lib_dir)):
        raise InputError("folder is not empty and holds no library manifest: refusing to build a library in it",
                         file=lib_dir)
    tag_rows = read_tags_csv(tags) if tags else None  # a bad tags file fails before any work
    if not exists:
        found, _ = find_inputs(list(inputs))
        if not found:
            raise InputError(f"no motion file found in {', '.join(inputs)}: nothing to build a library from",
                             file=lib_dir)
    report_cb = progress or (lambda msg, frac: None)
    with _locked(lib_dir), one_blas_thread():
        manifest = Library.open(lib_dir).manifest if exists else _empty_manifest()
        old = Library(lib_dir, manifest)
        rebuild_all = manifest["features"].get("definition") != feat.definition()
        files, notes = find_inputs(list(inputs)) if inputs else ([], [])
        report = BuildReport(library=lib_dir, notes=notes)
        new_manifest = json.loads(json.dumps(manifest))
        new_manifest["features"] = _empty_manifest()["features"]
        keys = {_file_key(lib_dir, f): f for f in files}
        for key in manifest["files"]:
            if key not in keys:
                keys[key] = old.source_path(key)
        updater = _Updater(lib_dir, manifest, new_manifest, rebuild_all)
        removed_files: set[str] = set()
        for i, (key, where) in enumerate(keys.items()):
            report_cb(f"reading {os.path.basename(key)}", 0.8 * i / max(len(keys), 1))
            rec = manifest["files"].get(key)
            if where is None:
                if rec is not None and not rec.get("missing"):
                    report.missing.append(rec.get("absolute") or key)
                removed_files.add(key)
                new_manifest["files"][key] = {**rec, "missing": True, "clips": []}
                continue
            deps_prev = [os.path.normpath(os.path.join(os.path.dirname(where), d))
                         for d in (rec or {}).get("dependencies", [])]
            digest = content_hash([where] + [d for d in deps_prev if os.path.isfile(d)])
            if rec is not None and rec["hash"] == digest and not rec.get("missing") and not rebuild_all:
                report.unchanged.append(display_path(where))
                cached = rec.get("motion") and os.path.isfile(os.path.join(lib_dir, motion_cache.FOLDER, rec["motion"]))
                if rec.get("clips") and not cached:  # a library built before decoded copies were kept
                    _keep_decoded(lib_dir, new_manifest["files"][key], read_clips(where)[0], digest)
                continue
            clips, file_notes, deps = read_clips(where)
            if deps != deps_prev:
                digest = content_hash([where] + deps)
            report.notes.extend(f"{display_path(where)}: {n}" for n in file_notes)
            fresh = rec is None or rec.get("missing")
            (report.added if fresh else report.replaced).append(display_path(where))
            removed_files.add(key)
            new_manifest["files"][key] = {
                "path": key if not os.path.isabs(key) else where, "absolute": where, "hash": digest,
                "bytes": os.path.getsize(where), "missing": False, "notes": file_notes,
                "dependencies": [os.path.relpath(d, os.path.dirname(where)).replace(os.sep, "/") for d in deps],
                "clips": []}
            if clips:  # the decoded clips, so queries read arrays instead of parsing the file again
                _keep_decoded(lib_dir, new_manifest["files"][key], clips, digest)
            updater.add(key, clips)  # features now: a file's motion is dropped once read
        updater.finish(removed_files, report, report_cb)
        if tag_rows is not None:
            lib_new = Library(lib_dir, new_manifest)
            apply_rows(tag_rows, tags, new_manifest["clips"], lambda c: lib_new.source_path(c["file"]) or "")
            new_manifest["tags_file"] = os.path.abspath(tags)
        _write_manifest(lib_dir, new_manifest)
        _remove_stale(lib_dir, new_manifest)
        report.clips = len(new_manifest["clips"])
        report.frames = int(sum(c["frames"] for c in new_manifest["clips"]))
        report.nodes = int(sum(s["nodes"] for s in new_manifest["skeletons"].values()))
        report_cb("library written", 1.0)
        return report


class _Updater:
    """Clip records and node rows of a build, computed file by file so no source motion is kept.

    A skeleton new to the library gets its body frame from its first ``FRAME_SAMPLES`` frames
    (its clips wait until then); clips of known skeletons get their nodes as soon as they are read.
    """

    def __init__(self, lib_dir: str, manifest: dict, new_manifest: dict, rebuild_all: bool):
        self.lib_dir, self.manifest, self.new = lib_dir, manifest, new_manifest
        self.rebuild_all = rebuild_all
        self.next_id = int(manifest.get("next_clip", 0))
        self.rows: dict[str, list[tuple[dict, dict]]] = {}
        self.pending: dict[str, list[tuple[dict, SourceClip]]] = {}
        self.files: dict[str, set] = {}  # skeleton -> files of this build
        self.prims: dict[str, str | None] = {}
        self.info: dict[str, dict] = {} if rebuild_all else {k: v for k, v in manifest["skeletons"].items()}
        # csv tags survive a re-read of their clip (same file and label)
        self.old_csv = {(c["file"], c["label"]): [t for t in c.get("tags", []) if t.get("source") == "csv"]
                        for c in manifest["clips"]}

    def add(self, key: str, clips: list[SourceClip]) -> None:
        for sc in clips:
            skey = skeleton_key(sc.skeleton.short_names, sc.up_axis)
            self.files.setdefault(skey, set()).add(key)
            self.prims.setdefault(skey, sc.skeleton_prim)
            rec = {"id": self.next_id, "file": key, "label": sc.label, "skeleton": skey, "fps": float(sc.motion.fps),
                   "frames": int(sc.motion.num_frames),
                   "duration": float((sc.motion.num_frames - 1) / sc.motion.fps), "start": sc.start,
                   "meters_per_unit": sc.meters_per_unit, "up_axis": sc.up_axis, "has_mesh": sc.has_mesh,
                   "skeleton_prim": sc.skeleton_prim,
                   "tags": [{"tag": t, "start": None, "end": None, "source": "customData"} for t in sc.tags]
                   + self.old_csv.get((key, sc.label), [])}
            self.next_id += 1
            self.new["files"][key]["clips"].append(rec["id"])
            if skey in self.info:
                self._nodes(skey, rec, sc)
                continue
            self.pending.setdefault(skey, []).append((rec, sc))
            if sum(p[1].motion.num_frames for p in self.pending[skey]) >= feat.FRAME_SAMPLES:
                self._settle(skey)

    def _settle(self, skey: str) -> None:
        waiting = self.pending.pop(skey)
        first = waiting[0][1]
        frame = feat.find_frame(first.skeleton, [sc.motion for _, sc in waiting], first.up_axis)
        old = self.manifest["skeletons"].get(skey, {})
        self.info[skey] = {"name": old.get("name"), "joint_names": first.skeleton.short_names,
                           "up_axis": first.up_axis, "frame": feat.body_frame_to_dict(frame),
                           "joints": len(first.skeleton.joints)}
        for rec, sc in waiting:
            self._nodes(skey, rec, sc)

    def _nodes(self, skey: str, rec: dict, sc: SourceClip) -> None:
        info = self.info[skey]
        cn = feat.clip_nodes(feat.body_frame_from_dict(info["frame"]), sc.skeleton, sc.motion)
        rec["size"] = cn.size
        info["pose_dims"] = cn.pose_dims
        self.rows.setdefault(skey, []).append((rec, {
            "features": cn.features, "clip": np.full(len(cn.time), rec["id"], np.int64),
            "time": cn.time.astype(np.float32), "speed": cn.speed, "ground": cn.ground, "yaw": cn.yaw}))

    def finish(self, removed_files: set, report: BuildReport, report_cb: Progress) -> None:
        for skey in list(self.pending):
            self._settle(skey)
        manifest, skeletons = self.manifest, self.new["skeletons"]
        kept = [c for c in manifest["clips"] if c["file"] not in removed_files]
        touched = set(self.rows) | {c["skeleton"] for c in manifest["clips"] if c["file"] in removed_files}
        old_lib = Library(self.lib_dir, manifest)
        generation = manifest.get("generation", 0) + 1
        all_clips = list(kept)
        for n, skey in enumerate(sorted(touched)):
            report_cb(f"index of skeleton {n + 1}/{len(touched)}", 0.8 + 0.15 * n / max(len(touched), 1))
            new_rows = self.rows.get(skey, [])
            keep_s = [c for c in kept if c["skeleton"] == skey]
            if not new_rows and not keep_s:
                skeletons.pop(skey, None)
                continue
            info = self.info[skey]
            if not info.get("name"):
                info["name"] = _skeleton_name(skeletons, self.files.get(skey, {"skeleton"}), self.prims.get(skey))
            skeletons[skey] = info
            parts = _kept_arrays(old_lib, skey, keep_s) if keep_s and not self.rebuild_all else {}
            rows = [(c, parts[c["id"]]) for c in keep_s] + new_rows
            all_clips.extend(rec for rec, _ in new_rows)
            _write_skeleton(self.lib_dir, skey, info, rows, generation)
            report.skeletons_updated.append(info["name"])
        self.new["next_clip"] = self.next_id
        self.new["clips"] = sorted(all_clips, key=lambda c: c["id"])
        self.new["generation"] = generation


def _keep_decoded(lib_dir: str, record: dict, clips: list[SourceClip], digest: str) -> None:
    """Write a file's decoded clips (:mod:`.motion_cache`) and name them in its manifest record."""
    name = motion_cache.cache_name(digest)
    arrays = motion_cache.arrays_of(clips)
    os.makedirs(os.path.join(lib_dir, motion_cache.FOLDER), exist_ok=True)
    _atomic(os.path.join(lib_dir, motion_cache.FOLDER, name), lambda fh: np.savez(fh, **arrays))
    record["motion"] = name


def _skeleton_name(skeletons: dict, files: set, prim: str | None) -> str:
    """A readable unique name: the folder of the files that brought it, or the one file's stem."""
    first = sorted(files)[0]
    if len(files) > 1:
        base = os.path.basename(os.path.dirname(os.path.abspath(first))) or "skeleton"
    else:
        base = os.path.splitext(os.path.basename(first))[0]
    if any(s.get("name") == base for s in skeletons.values()) and prim:
        base = f"{base}:{prim.rsplit('/', 1)[-1]}"
    name, k = base, 2
    while any(s.get("name") == name for s in skeletons.values()):
        name, k = f"{base}-{k}", k + 1
    return name


def _kept_arrays(old_lib: Library, skey: str, keep: list[dict]) -> dict[int, dict]:
    nodes = old_lib.nodes(skey) if old_lib.up_to_date else None
    out = {}
    for c in keep:
        a, b = c["nodes"]
        out[c["id"]] = {"features": nodes.features[a:b], "clip": nodes.clip[a:b], "time": nodes.time[a:b],
                        "speed": nodes.speed[a:b], "ground": nodes.ground[a:b], "yaw": nodes.yaw[a:b]}
    return out


def _write_skeleton(lib_dir: str, skey: str, info: dict, rows: list[tuple[dict, dict]], generation: int) -> None:
    folder = os.path.join(lib_dir, "skeletons")
    os.makedirs(folder, exist_ok=True)
    arrays = {k: np.concatenate([r[k] for _, r in rows]) for k in ("features", "clip", "time", "speed", "ground",
                                                                   "yaw")}
    start = 0
    for rec, r in rows:
        rec["nodes"] = [start, start + len(r["clip"])]
        start += len(r["clip"])
    mean, basis = fit_projection(arrays["features"])
    index = FeatureIndex.from_projection(arrays["features"], len(info["frame"]["joints"]), mean, basis)
    knn, dist = neighbours(index, arrays["features"], arrays["clip"], arrays["time"], GRAPH_K, GRAPH_EXCLUDE)
    arrays.update(index_mean=mean, index_basis=basis, knn=knn.astype(np.int32), knn_distance=dist.astype(np.float32))
    name = f"{skey}.{generation}.npz"
    _atomic(os.path.join(folder, name), lambda fh: np.savez(fh, **arrays))
    info.update({"arrays": name, "nodes": int(start), "feature_dims": int(arrays["features"].shape[1]),
                 "index": {"kind": "pca-cKDTree", "dims": int(basis.shape[1])}})


def _atomic(path: str, write) -> None:
    from anymole_usd.atomic_files import new_file_mode

    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, new_file_mode())  # mkstemp makes 0600: a library is shared like any file the user makes
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_manifest(lib_dir: str, manifest: dict) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=False).encode()
    _atomic(os.path.join(lib_dir, MANIFEST), lambda fh: fh.write(text))


def _remove_stale(lib_dir: str, manifest: dict) -> None:
    live_arrays = {s.get("arrays") for s in manifest["skeletons"].values()}
    live_motion = {f.get("motion") for f in manifest["files"].values() if not f.get("missing")}
    for sub, live in (("skeletons", live_arrays), (motion_cache.FOLDER, live_motion)):
        folder = os.path.join(lib_dir, sub)
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if name not in live:
                try:
                    os.remove(os.path.join(folder, name))
                except OSError:
                    pass
