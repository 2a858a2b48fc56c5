"""Layers as bytes: parse bytes of any USD encoding into a layer, and take anymole-usd's edits out of a layer.

The journal keeps files as exact bytes; the runner and undo work on Sdf
layers. These helpers cross between the two, and remove our own edits
(a sublayer entry, a binding retarget, in-place samples) from a layer the
user changed after a run, leaving every other opinion as the user left it.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

CHANNEL_NAMES = ("translations", "rotations", "scales")
CRATE_MAGIC = b"PXR-USDC"


def is_text(data: bytes) -> bool:
    return data.lstrip()[:5] == b"#usda"


def file_format(path: str) -> str:
    """'usda' or 'usdc', from the file's first bytes (a ``.usd`` file can be either)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    return "usdc" if head.startswith(CRATE_MAGIC) else "usda"


def layer_from_bytes(data: bytes, name: str = "layer"):
    """An anonymous Sdf layer holding the content of ``data`` (text or crate)."""
    from pxr import Sdf, Tf

    try:
        if is_text(data):
            layer = Sdf.Layer.CreateAnonymous(".usda")
            if not layer.ImportFromString(data.decode("utf-8")):
                raise ValueError(f"{name}: not a readable USD layer")
            return layer
        tmpdir = tempfile.mkdtemp(prefix="anymole-layer-")
        try:
            path = os.path.join(tmpdir, "layer.usdc")
            with open(path, "wb") as fh:
                fh.write(data)
            crate = Sdf.Layer.OpenAsAnonymous(path)
            if crate is None:
                raise ValueError(f"{name}: not a readable USD layer")
            layer = Sdf.Layer.CreateAnonymous(".usdc")
            layer.TransferContent(crate)  # copy now: the crate reader may map the file lazily
            return layer
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    except (Tf.ErrorException, UnicodeDecodeError) as exc:
        raise ValueError(f"{name}: not a readable USD layer ({str(exc).strip().splitlines()[-1]})") from None


def _match(values, targets, tol: float = 1e-6) -> np.ndarray:
    """Per value, the index of a time in ``targets`` within ``tol`` of it (the nearest), else -1."""
    values = np.asarray(values, dtype=float)
    targets = np.asarray(targets, dtype=float)
    if not len(values) or not len(targets):
        return np.full(len(values), -1)
    order = np.argsort(targets)
    ts = targets[order]
    i = np.clip(np.searchsorted(ts, values), 1, len(ts) - 1) if len(ts) > 1 else np.zeros(len(values), int)
    lo = np.maximum(i - 1, 0)
    pick = np.where(np.abs(values - ts[i]) <= np.abs(values - ts[lo]), i, lo)
    return np.where(np.abs(values - ts[pick]) <= tol, order[pick], -1)


def _near(values, targets, tol: float = 1e-6) -> np.ndarray:
    """Mask of ``values`` within ``tol`` of some time in ``targets``."""
    return _match(values, targets, tol) >= 0


def strip_edits(layer, edits: dict, original=None) -> list[str]:
    """Remove the edits a run recorded (see :class:`journal.FileRecord`) from ``layer``; returns what went.

    ``original`` (the layer as it was before the run) gives back the samples an in-place run
    overwrote: a generated time the user had authored gets its own value again, any other is erased.
    """
    from pxr import Sdf

    done = []
    entry = edits.get("sublayer")
    if entry and entry in list(layer.subLayerPaths):
        del layer.subLayerPaths[list(layer.subLayerPaths).index(entry)]
        done.append(f"sublayer {entry}")
    for skel_path, rel in edits.get("relationships", {}).items():
        spec = layer.GetRelationshipAtPath(Sdf.Path(skel_path).AppendProperty("skel:animationSource"))
        if spec is not None and [str(p) for p in spec.targetPathList.explicitItems] == list(rel["new"]):
            spec.targetPathList.explicitItems = [Sdf.Path(t) for t in rel["old"]]
            done.append(f"binding of {skel_path}")
    for prim_path, info in edits.get("in_place", {}).items():
        times = [float(t) for t in info.get("times", [])]
        for name in CHANNEL_NAMES:
            path = Sdf.Path(prim_path).AppendProperty(name)
            if layer.GetAttributeAtPath(path) is None:
                continue
            own = list(original.ListTimeSamplesForPath(path)) if original is not None else []
            present = np.asarray(layer.ListTimeSamplesForPath(path), dtype=float)
            ours = present[_near(present, times)]
            for t, k in zip(ours, _match(ours, own)):  # one sorted lookup, not one scan per sample
                if k >= 0:  # the user had a sample here that the run overwrote
                    layer.SetTimeSample(path, float(t), original.QueryTimeSample(path, own[k]))
                else:
                    layer.EraseTimeSample(path, float(t))
        prim = layer.GetPrimAtPath(prim_path)
        if prim is not None:
            for attr in [a for a in prim.attributes if a.name.startswith("anymole:")]:
                prim.RemoveProperty(attr)
            if prim.HasInfo("apiSchemas"):
                ops = prim.GetInfo("apiSchemas")
                ops.prependedItems = [s for s in ops.prependedItems if s != "AnyMoLeInbetweenAPI"]
                prim.SetInfo("apiSchemas", ops)
        done.append(f"{len(times)} in-place samples of {prim_path}")
    return done
