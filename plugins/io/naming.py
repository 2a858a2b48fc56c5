"""UsdSkel joint paths from names found in files (BVH joints, glTF nodes)."""
from __future__ import annotations

import re

import numpy as np


def _identifier(name: str) -> str:
    """A valid USD path element (joint token component) for a joint or node name."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not ident or ident[0].isdigit():
        ident = "_" + ident
    return ident


def joint_paths(names: list[str], parents: np.ndarray) -> list[str]:
    """UsdSkel joint paths ("Hips/Spine") with names made valid and unique among siblings."""
    paths: list[str] = []
    taken: set[str] = set()
    for name, parent in zip(names, parents):
        prefix = paths[parent] + "/" if parent >= 0 else ""
        base = prefix + _identifier(name)
        path, k = base, 2
        while path in taken:
            path, k = f"{base}_{k}", k + 1
        taken.add(path)
        paths.append(path)
    return paths
