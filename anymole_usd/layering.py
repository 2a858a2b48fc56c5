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
- ``inPlace`` (opt-in): samples go straight into the layer that holds them.

Every file a run writes goes through a :class:`transaction.Transaction`: the
exact bytes it replaces are kept beside the shot with their digest, so
``undo`` restores them byte for byte (see transaction.py and
docs/architecture.md).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

MARKER = "anymole_usd"
CHANNEL_NAMES = ("translations", "rotations", "scales")


@dataclass
class LayerEdits:
    """What a run changed in the user's root layer: a sublayer entry and binding retargets."""

    sublayer: str | None = None
    relationships: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # prim -> {"old", "new"} targets

    def to_dict(self) -> dict:
        out: dict = {"relationships": {k: dict(v) for k, v in self.relationships.items()}}
        if self.sublayer:
            out["sublayer"] = self.sublayer
        return out


def default_output(shot: str, command: str = "inbetween") -> str:
    """``<shot>.<command>.usda`` beside the shot (``shot.inbetween.usda``, ``shot.retarget.usda``)."""
    base, _ = os.path.splitext(os.path.abspath(shot))
    return f"{base}.{command}.usda"


def writable(path: str) -> bool:
    """Writable by us *and* not marked read-only: root may write a chmod a-w file, but the user said no."""
    try:
        marked = os.stat(path).st_mode & 0o222
    except OSError:
        return False
    return bool(marked) and os.access(path, os.W_OK)


def is_writable_layer(path: str) -> bool:
    ext = os.path.splitext(path)[1].lower()
    return ext != ".usdz" and writable(path) and writable(os.path.dirname(os.path.abspath(path)))


def sublayer_entry(root_path: str, output: str) -> str:
    rel = os.path.relpath(os.path.abspath(output), os.path.dirname(os.path.abspath(root_path)))
    return rel if rel.startswith(".") else "./" + rel


def nearest_existing(path: str) -> str:
    """The nearest ancestor of ``path`` that exists (a folder, or a file standing where one must be made)."""
    probe = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    return probe


def nearest_folder(path: str) -> str:
    """The existing folder a new file at ``path`` is made in: its nearest existing ancestor folder (missing
    folders between them are created by the writer, so that one decides whether it can be written)."""
    probe = nearest_existing(path)
    while not os.path.isdir(probe):
        probe = os.path.dirname(probe)
    return probe


def root_has_channel_opinion(root, prim_path: str) -> bool:
    from pxr import Sdf

    return any(root.GetAttributeAtPath(Sdf.Path(prim_path).AppendProperty(n)) is not None for n in CHANNEL_NAMES)


def root_binding_spec(root, skeleton_path: str):
    from pxr import Sdf

    return root.GetRelationshipAtPath(Sdf.Path(skeleton_path).AppendProperty("skel:animationSource"))


def fresh_sibling(stage, path: str, suffix: str = "_inbetween") -> str:
    """A sibling path no prim is defined at: <name><suffix>, <name><suffix>2, ..."""
    from pxr import Sdf

    base = Sdf.Path(path)
    n = 1
    candidate = base.GetParentPath().AppendChild(base.name + suffix)
    while stage.GetPrimAtPath(candidate) and stage.GetPrimAtPath(candidate).IsDefined():
        n += 1
        candidate = base.GetParentPath().AppendChild(f"{base.name}{suffix}{n}")
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


def undo(shot: str, output: str | None = None, keep_created: bool = False, command: str = "inbetween") -> dict:
    """Undo ``command``'s runs on ``shot`` from its journal (see transaction.undo).

    Returns ``{"actions": [{"path", "action": restored|removed|stripped|recovered}], "notes": [...]}``.
    ``output``: where a read-only shot's result went (its journal lives there). ``keep_created``: leave
    the files the runs made (result layers) in place, no longer tracked.
    """
    from . import transaction
    from .errors import InputError

    shot = os.path.abspath(shot)
    homes = (os.path.dirname(os.path.abspath(output)),) if output else ()
    report = transaction.undo(shot, homes, keep_created, command)
    if not report["actions"] and not os.path.exists(shot):
        raise InputError("no such file", file=shot)
    legacy = shot + ".anymole-backup"
    if not report["actions"] and os.path.exists(legacy):
        report["notes"].append(f"{legacy} was not made by this version of anymole-usd for this shot (no record of "
                               "it): left alone")
    return report


def result_is_current(shot: str, options_digest: str, output: str | None = None, command: str = "inbetween") -> bool:
    """True when the shot's last run used ``options_digest`` and nothing it read or wrote changed since."""
    from . import transaction

    homes = (os.path.dirname(os.path.abspath(output)),) if output else ()
    return transaction.result_is_current(os.path.abspath(shot), options_digest, homes, command)
