"""Writing SkelAnimation samples into Sdf specs: the fast, low-level path for bulk time samples."""
from __future__ import annotations

import numpy as np

from . import rotations as rot
from .motion import Motion

# UsdSkel attribute -> (Sdf value type, numpy dtype, Vt array class name, Motion field)
CHANNELS = {
    "translations": ("float3[]", np.float32, "Vec3fArray", "translations"),
    "rotations": ("quatf[]", np.float32, "QuatfArray", "rotations"),
    "scales": ("half3[]", np.float16, "Vec3hArray", "scales"),
}


def align_signs(motion: Motion, reference: Motion) -> Motion:
    """Flip generated quaternions onto the hemisphere of the nearest earlier reference sample.

    q and -q are the same rotation, but USD interpolates between samples and
    neighbours in opposite hemispheres would spin the long way round.
    """
    if not motion.num_frames or not reference.num_frames:
        return motion
    src = np.clip(np.searchsorted(reference.times, motion.times, side="right") - 1, 0, reference.num_frames - 1)
    out = motion.copy()
    out.rotations = rot.make_continuous(out.rotations, axis=0)
    # Each run of frames after the same reference sample (one gap) is flipped as a whole,
    # decided by the run's first frame against that reference.
    starts = np.flatnonzero(np.concatenate([[True], src[1:] != src[:-1]]))
    first = np.repeat(starts, np.diff(np.concatenate([starts, [len(src)]])))
    dots = np.sum(out.rotations[first] * reference.rotations[src], axis=-1)
    out.rotations *= np.where(dots < 0, -1.0, 1.0)[..., None]
    return out


def to_animation_order(motion: Motion, anim_to_skel: np.ndarray, original: dict[str, np.ndarray] | None = None):
    """Skeleton-order Motion -> per-channel (F, N_anim, C) arrays in the animation's joint order.

    Animation joints missing from the skeleton keep ``original`` values when given.
    """
    mapped = anim_to_skel >= 0
    out = {}
    for name, (_, _, _, field) in CHANNELS.items():
        data = getattr(motion, field)
        arr = np.zeros((motion.num_frames, len(anim_to_skel), data.shape[-1]))
        arr[:, mapped] = data[:, anim_to_skel[mapped]]
        if original is not None and not mapped.all():
            arr[:, ~mapped] = original[name][:, ~mapped]
        out[name] = arr
    return out


def write_channels(layer, prim_path, times: np.ndarray, channels: dict[str, np.ndarray],
                   time_scale: float = 1.0, time_offset: float = 0.0, define: bool = False) -> None:
    """Author translations/rotations/scales time samples on ``prim_path`` in ``layer``.

    Existing samples of those attributes in this layer are replaced (value
    resolution takes all samples from the strongest layer, so the layer must
    carry the complete set). ``time_scale``/``time_offset`` map stage times to
    this layer's times when it sits behind a layer offset.
    """
    from pxr import Sdf, Vt

    prim_spec = layer.GetPrimAtPath(prim_path) or Sdf.CreatePrimInLayer(layer, prim_path)
    if define:
        prim_spec.specifier = Sdf.SpecifierDef
        prim_spec.typeName = "SkelAnimation"
    layer_times = (np.asarray(times, dtype=np.float64) - time_offset) / time_scale
    for name, data in channels.items():
        type_name, dtype, vt_name, _ = CHANNELS[name]
        attr_path = prim_spec.path.AppendProperty(name)
        spec = layer.GetAttributeAtPath(attr_path) or Sdf.AttributeSpec(
            prim_spec, name, Sdf.ValueTypeNames.Find(type_name))
        spec.ClearInfo("timeSamples")
        vt_type = getattr(Vt, vt_name)
        values = np.ascontiguousarray(data, dtype=dtype)
        for t, v in zip(layer_times.tolist(), values):
            layer.SetTimeSample(attr_path, t, vt_type.FromNumpy(v))


def read_channels(attr_getters, times: np.ndarray) -> dict[str, np.ndarray]:
    """Raw composed values of the three channels at ``times`` (animation joint order)."""
    out = {}
    for name, attr in attr_getters.items():
        out[name] = np.stack([np.asarray(attr.Get(t), dtype=np.float64) for t in times])
    return out


def copy_attribute(src_attr, dst_prim_spec) -> None:
    """Copy a composed attribute (default and all time samples) onto a prim spec."""
    from pxr import Sdf

    if not src_attr or not src_attr.HasAuthoredValue():
        return
    layer = dst_prim_spec.layer
    spec = Sdf.AttributeSpec(dst_prim_spec, src_attr.GetName(), src_attr.GetTypeName(),
                             src_attr.GetVariability())
    default = src_attr.Get()
    samples = src_attr.GetTimeSamples()
    if default is not None and not samples:
        spec.default = default
    for t in samples:
        layer.SetTimeSample(spec.path, t, src_attr.Get(t))
