"""Motion libraries: build once over your own clips, retrieve poses in milliseconds, compose.

A library is a folder (see :mod:`.store` for the layout): a JSON manifest of
source files (path relative to the library + content hash), clips, tags and
skeletons; per skeleton, pose features sampled every 1/30 s (*nodes*) with
the projection of a nearest-neighbour index; per source file, its decoded
clips (:mod:`.motion_cache`). Source motion stays where it is (hash checked
on every use). Same joint names = same skeleton.

Python API::

    from anymole_usd.library import Library, build_library

    report = build_library("lib", ["mocap/", "horse.glb"], tags="tags.csv")  # incremental
    lib = Library.open("lib")
    sk = lib.skeleton("bandai_namco")          # by name, key, or a file/clip on it; None: the largest
    lib.skeletons(); lib.clips(sk.key)         # SkeletonInfo / ClipInfo records (tags, fps, frames...)
    motion = lib.motion(clip)                  # the decoded copy (source hash checked), Y-up, frames 0..n-1
    nodes = lib.nodes(sk.key)                  # Nodes: features, clip, time, speed, ground, yaw
    skel, motion, up = to_y_up(shot_skeleton, shot_motion, up)   # a Z-up shot in the library's axes
    q = lib.features(sk.key, skel, motion)     # a shot's frames in the library's feature space
    hits = lib.query(sk.key, q, k=8)           # Hits: node, clip, time (s), frame, distance (M, k)
    lib.skeleton_for(joint_names)              # the library skeleton of a shot, or None

Modules: :mod:`.sources` (finding and reading files through the project's
readers), :mod:`.features` (the graph prior's pose features at one node
rate), :mod:`.index` (PCA + cKDTree), :mod:`.tags` (tags.csv, customData,
compose spans), :mod:`.store` (reading), :mod:`.building` (incremental
build), and for ``compose``: :mod:`.synthesis` (motion graph + dynamic
programming), :mod:`.music` (beats), :mod:`.assembly` (segments -> Motion),
:mod:`.compose` (the whole request, written to a new stage).
"""
from __future__ import annotations

from anymole_usd.lazy import lazy_attributes

_LAZY = {
    "Library": ".store",
    "ClipInfo": ".store",
    "SkeletonInfo": ".store",
    "Nodes": ".store",
    "Hits": ".store",
    "build_library": ".building",
    "BuildReport": ".building",
    "to_y_up": ".sources",
    "compose": ".compose",
    "ComposeRequest": ".compose",
}

__all__ = list(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
