"""Composing a result over the user's animation without touching the original samples.

A sublayer is weaker than its parent layer's own opinions, so the strategy is
picked per animation (see docs/architecture.md):

- ``override``: the root layer holds no opinion on the animation's channels
  (samples live in a sublayer or a referenced file). The result layer, inserted
  first in the root's subLayerPaths, carries an ``over`` with every sample.
- ``retarget``: the root layer holds the samples. The result layer defines a
  new SkelAnimation beside the original and binds the Skeleton to it; the
  binding is authored in the result layer unless the root layer itself binds
  that Skeleton, in which case that one relationship is edited in place.
- ``wrapper``: the shot cannot be written (usdz, read-only). The output is a
  new root layer whose sublayers are [the shot]; it carries the result itself.
- ``inPlace`` (opt-in): samples go straight into the layer that holds them,
  after a backup copy of that layer.

Every in-place edit is recorded in the result layer's customLayerData so
``undo`` restores the original composition exactly.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from dataclasses import dataclass, field

MARKER = "anymole_usd"
CHANNEL_NAMES = ("translations", "rotations", "scales")


@dataclass
class LayerEdits:
    """What a run changed in the user's root layer (stored in the result layer)."""

    sublayer: str | None = None
    relationships: dict[str, list[str]] = field(default_factory=dict)  # prim path -> original targets

    def to_dict(self) -> dict:
        return {"sublayer": self.sublayer or "", "relationships": dict(self.relationships)}

    def to_layer_data(self) -> dict:
        """customLayerData form: USD dictionaries need typed arrays, not Python lists."""
        from pxr import Vt

        return {"sublayer": self.sublayer or "",
                "relationships": {k: Vt.StringArray(v) for k, v in self.relationships.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "LayerEdits":
        rels = {str(k): [str(x) for x in v] for k, v in dict(d.get("relationships", {})).items()}
        return cls(sublayer=d.get("sublayer") or None, relationships=rels)


def default_output(shot: str) -> str:
    base, _ = os.path.splitext(os.path.abspath(shot))
    return base + ".inbetween.usda"


def is_writable_layer(path: str) -> bool:
    ext = os.path.splitext(path)[1].lower()
    return ext != ".usdz" and os.access(path, os.W_OK) and os.access(os.path.dirname(os.path.abspath(path)), os.W_OK)


def sublayer_entry(root_path: str, output: str) -> str:
    rel = os.path.relpath(os.path.abspath(output), os.path.dirname(os.path.abspath(root_path)))
    return rel if rel.startswith(".") else "./" + rel


def atomic_export(layer, path: str) -> None:
    """Export a layer to ``path`` through a temporary file in the same folder, then rename."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    base, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=ext, dir=folder)
    os.close(fd)
    try:
        if not layer.Export(tmp):
            raise OSError(f"could not write {path}")
        if os.path.exists(path):
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    from pxr import Sdf

    cached = Sdf.Layer.Find(path)
    if cached is not None and cached is not layer:
        cached.Reload(force=True)


@contextlib.contextmanager
def shot_lock(path: str):
    """Exclusive advisory lock on the shot file: a second concurrent run fails clearly."""
    from .errors import InputError

    with open(path, "rb") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError("another anymole-usd run is writing this shot; try again when it ends",
                             file=path) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def result_layers_of(root) -> list[tuple[str, object]]:
    """(sublayer entry, layer) for every anymole-usd result layer sublayered into ``root``."""
    from pxr import Sdf

    found = []
    for entry in list(root.subLayerPaths):
        resolved = root.ComputeAbsolutePath(entry)
        layer = Sdf.Layer.FindOrOpen(resolved) if os.path.exists(resolved) else None
        if layer is not None and MARKER in dict(layer.customLayerData):
            found.append((entry, layer))
    return found


def strip_results(root) -> list[str]:
    """Undo, in memory, every earlier result composed into ``root``; returns their file paths."""
    removed = []
    for entry, layer in result_layers_of(root):
        edits = LayerEdits.from_dict(dict(layer.customLayerData)[MARKER].get("rootEdits", {}))
        _restore_relationships(root, edits)
        # The list proxy keeps subLayerOffsets in step with the paths.
        del root.subLayerPaths[list(root.subLayerPaths).index(entry)]
        removed.append(layer.realPath)
    return removed


def _restore_relationships(root, edits: LayerEdits) -> None:
    from pxr import Sdf

    for prim_path, targets in edits.relationships.items():
        spec = root.GetRelationshipAtPath(Sdf.Path(prim_path).AppendProperty("skel:animationSource"))
        if spec is not None:
            spec.targetPathList.explicitItems = [Sdf.Path(t) for t in targets]


def root_has_channel_opinion(root, prim_path: str) -> bool:
    from pxr import Sdf

    return any(root.GetAttributeAtPath(Sdf.Path(prim_path).AppendProperty(n)) is not None for n in CHANNEL_NAMES)


def root_binding_spec(root, skeleton_path: str):
    from pxr import Sdf

    return root.GetRelationshipAtPath(Sdf.Path(skeleton_path).AppendProperty("skel:animationSource"))


def retarget_path(stage, anim_path: str) -> str:
    """A fresh sibling path for the result animation: <name>_inbetween."""
    from pxr import Sdf

    base = Sdf.Path(anim_path)
    candidate = base.GetParentPath().AppendChild(base.name + "_inbetween")
    n = 1
    while stage.GetPrimAtPath(candidate) and stage.GetPrimAtPath(candidate).IsDefined():
        n += 1
        candidate = base.GetParentPath().AppendChild(f"{base.name}_inbetween{n}")
    return str(candidate)


def copy_stage_metadata(stage, layer) -> None:
    """Give a new layer the stage's timing and units (samples would be rescaled otherwise)."""
    from pxr import UsdGeom

    layer.timeCodesPerSecond = stage.GetTimeCodesPerSecond()
    layer.framesPerSecond = stage.GetFramesPerSecond()
    if stage.HasAuthoredMetadata("startTimeCode"):
        layer.startTimeCode = stage.GetStartTimeCode()
    if stage.HasAuthoredMetadata("endTimeCode"):
        layer.endTimeCode = stage.GetEndTimeCode()
    layer.pseudoRoot.SetInfo("upAxis", UsdGeom.GetStageUpAxis(stage))
    layer.pseudoRoot.SetInfo("metersPerUnit", UsdGeom.GetStageMetersPerUnit(stage))


def undo(shot: str, delete_result: bool = True) -> list[str]:
    """Remove every anymole-usd result composed into ``shot``; returns what was removed.

    Layered runs: the sublayer entry and any relationship retarget go away and
    the result layer file is deleted (unless ``delete_result`` is False).
    In-place runs: the backup copy is put back. Wrapper outputs are deleted.
    """
    from pxr import Sdf

    from .errors import InputError

    shot = os.path.abspath(shot)
    removed: list[str] = []
    if not os.path.exists(shot):
        raise InputError("no such file", file=shot)
    wrapper = default_output(shot)
    if is_writable_layer(shot):
        with shot_lock(shot):
            root = Sdf.Layer.FindOrOpen(shot)
            if root is None:
                raise InputError("not a readable USD file", file=shot)
            removed = strip_results(root)
            if removed:
                atomic_export(root, shot)
            for path in removed:
                if delete_result and os.path.exists(path):
                    os.remove(path)
            removed += _restore_backups(shot)
    elif os.path.exists(wrapper):
        layer = Sdf.Layer.FindOrOpen(wrapper)
        if layer is not None and dict(layer.customLayerData).get(MARKER, {}).get("wrapperOf"):
            os.remove(wrapper)
            removed.append(wrapper)
    return removed


def backup_path(layer_path: str) -> str:
    return layer_path + ".anymole-backup"


def make_backup(layer_path: str) -> str:
    """Keep the first backup: a second in-place run must not overwrite the true original."""
    dest = backup_path(layer_path)
    if not os.path.exists(dest):
        shutil.copy2(layer_path, dest)
    return dest


def _restore_backups(shot: str) -> list[str]:
    """Put back in-place backups of the shot and of the layers it uses directly."""
    from pxr import Sdf

    restored = []
    root = Sdf.Layer.FindOrOpen(shot)
    candidates = [shot] + [root.ComputeAbsolutePath(p) for p in root.subLayerPaths]
    candidates += [os.path.join(os.path.dirname(shot), ref) for ref in root.GetCompositionAssetDependencies()
                   if not os.path.isabs(ref)]
    for path in dict.fromkeys(os.path.abspath(c) for c in candidates):
        backup = backup_path(path)
        if os.path.exists(backup):
            os.replace(backup, path)
            layer = Sdf.Layer.Find(path)
            if layer is not None:
                layer.Reload(force=True)
            restored.append(path)
    return restored
