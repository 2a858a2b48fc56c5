"""Decoded clips of a library's source files, kept beside the library so a query reads arrays, not files.

``Library.motion`` is on the hot path of ``inbetween --library`` and ``compose``:
parsing a 4 MB BVH takes 0.2-0.35 s, a glTF with meshes up to 10 s (pygltflib),
while the stretch a gap plays is a few hundred samples, and bridging to
another skeleton needs only its rig and a few frames. A build already decodes
every clip, so it also writes them here, one ``.npz`` per source file named by
the file's content hash (identical files share one):

    LIB/motion/<hash[:24]>.npz    per clip i: rot_i (F, J, 4), rest_i (J, 3) translations of the first
                                  frame, moving_i (M,) joints whose translation changes, trans_i (F, M, 3),
                                  scales_i (F, J, 3) when not all 1, joints_i (J,) names,
                                  and its rig: sk_joints_i, sk_parents_i, sk_rest_i (J, 4, 4), sk_bind_i,
                                  sk_info_i (JSON: name, joint_names, meta)

The source stays the reference: ``Library.motion`` still checks its content
hash and refuses a changed or missing file; only the parsing is skipped.
Skinned meshes are not kept: ``Library.character`` reads them from the source.
The arrays are float64 and give back exactly what reading the source gives
(float32 rotations, 1e-7 off, were enough to flip a borderline retrieval
decision in tests/test_library_inbetween.py); only constant joint offsets
are stored once. About 1 KB per frame of a 30-joint clip.
"""
from __future__ import annotations

import json
import os

import numpy as np

from anymole_usd.motion import Motion
from anymole_usd.skeleton import Skeleton

FOLDER = "motion"


def cache_name(digest: str) -> str:
    return f"{digest[:24]}.npz"


def arrays_of(clips: list) -> dict[str, np.ndarray]:
    """The arrays stored for the clips (``SourceClip``) of one file, in clip order."""
    out: dict[str, np.ndarray] = {}
    for i, clip in enumerate(clips):
        m, sk = clip.motion, clip.skeleton
        tr = np.asarray(m.translations, np.float64)
        moving = np.flatnonzero(np.abs(tr - tr[:1]).max(axis=(0, 2), initial=0.0) > 0.0)
        out[f"rot_{i}"] = np.asarray(m.rotations, np.float64)
        out[f"rest_{i}"] = tr[0] if len(tr) else np.zeros((m.rotations.shape[1], 3))
        out[f"moving_{i}"] = moving.astype(np.int32)
        out[f"trans_{i}"] = tr[:, moving]
        if not np.all(m.scales == 1.0):
            out[f"scales_{i}"] = np.asarray(m.scales, np.float64)
        out[f"joints_{i}"] = np.asarray(list(m.joints), dtype=str)
        out[f"sk_joints_{i}"] = np.asarray(list(sk.joints), dtype=str)
        out[f"sk_parents_{i}"] = np.asarray(sk.parents, np.int64)
        out[f"sk_rest_{i}"] = np.asarray(sk.rest_transforms, np.float64)
        if sk.bind_transforms is not None:
            out[f"sk_bind_{i}"] = np.asarray(sk.bind_transforms, np.float64)
        info = {"name": sk.name, "joint_names": sk.joint_names, "meta": sk.meta}
        out[f"sk_info_{i}"] = np.asarray(json.dumps(info, default=str))
    return out


def read(path: str, index: int, fps: float) -> tuple[Skeleton, Motion] | None:
    """Rig and samples of clip ``index`` of a cache file (times 0..F-1 at ``fps``), or None when the file
    or clip is not there or unreadable."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if f"rot_{index}" not in z.files:
                return None
            r = z[f"rot_{index}"]
            rest, moving, moved = z[f"rest_{index}"], z[f"moving_{index}"], z[f"trans_{index}"]
            scales = z[f"scales_{index}"] if f"scales_{index}" in z.files else None
            joints = [str(j) for j in z[f"joints_{index}"]]
            info = json.loads(str(z[f"sk_info_{index}"]))
            skeleton = Skeleton([str(j) for j in z[f"sk_joints_{index}"]], z[f"sk_parents_{index}"],
                                z[f"sk_rest_{index}"], z[f"sk_bind_{index}"] if f"sk_bind_{index}" in z.files else None,
                                name=info["name"], joint_names=info["joint_names"], meta=info["meta"])
    except (OSError, ValueError, KeyError):  # a damaged cache is ignored: the source is read instead
        return None
    f, j = r.shape[:2]
    tr = np.broadcast_to(rest, (f, j, 3)).copy()
    tr[:, moving] = moved
    if scales is None:
        scales = np.ones((f, j, 3))
    return skeleton, Motion(np.arange(f, dtype=np.float64), r, tr, scales, fps=float(fps), joints=joints)
