"""The armature side: keyed frames and poses of an action out of Blender, in-between poses back in as a new action.

Poses leave Blender as joint-local matrices (each bone's pose relative to its
parent's, armature space) sampled where the action has keys, with the scene
evaluated at each of those frames (constraints and drivers included). They
come back as each bone's ``matrix_basis`` (the channels Blender keys):
``basis = rest_local^-1 @ local`` where ``rest_local`` is the bone's rest
matrix relative to its parent's, which holds for bones that inherit rotation
and scale (Blender's default).
"""
import numpy as np

from .transforms import continuous, from_trs, to_trs

MARKER = "anymole_usd"  # custom property on the actions the add-on writes


def bone_order(armature):
    """Bones parents-first (depth-first from each root, in Blender's order) and their parent indices."""
    bones = list(armature.bones)
    order, stack = [], [b for b in reversed(bones) if b.parent is None]
    while stack:
        b = stack.pop()
        order.append(b)
        stack.extend(reversed([c for c in bones if c.parent is not None and c.parent.name == b.name]))
    position = {b.name: i for i, b in enumerate(order)}
    parents = [position[b.parent.name] if b.parent is not None else -1 for b in order]
    return order, parents


def _matrices(mats):
    return np.array([[list(row) for row in m] for m in mats], dtype=np.float64)


def rest_matrices(bones, parents):
    """(J, 4, 4) joint-local rest matrices and (J, 4, 4) armature-space rest matrices."""
    bind = _matrices([b.matrix_local for b in bones])
    parent_bind = np.stack([bind[p] if p >= 0 else np.eye(4) for p in parents])
    return np.linalg.inv(parent_bind) @ bind, bind


def bone_of(data_path):
    """'pose.bones["Hips"].location' -> 'Hips' (None for curves that are not a bone channel)."""
    if not data_path.startswith('pose.bones["'):
        return None
    return data_path[len('pose.bones["'):data_path.index('"]')].replace('\\"', '"')


def keyed_frames(action):
    """Sorted frames at which any bone channel of ``action`` has a key."""
    frames = set()
    for fc in action.fcurves:
        if bone_of(fc.data_path) is None:
            continue
        co = np.zeros(2 * len(fc.keyframe_points))
        fc.keyframe_points.foreach_get("co", co)
        frames.update(np.round(co[0::2], 4).tolist())
    return np.array(sorted(frames))


def sample_poses(scene, obj, bones, parents, frames):
    """(F, J, 4, 4) joint-local pose matrices at ``frames`` (the scene is evaluated at each; frame restored)."""
    current = (scene.frame_current, scene.frame_subframe)
    pose_bones = [obj.pose.bones[b.name] for b in bones]
    out = np.empty((len(frames), len(bones), 4, 4))
    try:
        for i, f in enumerate(frames):  # Blender evaluates one frame at a time
            whole = int(np.floor(f))
            scene.frame_set(whole, subframe=float(f - whole))
            out[i] = _matrices([pb.matrix for pb in pose_bones])
    finally:
        scene.frame_set(current[0], subframe=current[1])
    parent_pose = np.concatenate([out[:, [p]] if p >= 0 else np.broadcast_to(np.eye(4), (len(frames), 1, 4, 4))
                                  for p in parents], axis=1)
    return np.linalg.inv(parent_pose) @ out


def _rotation_channels(pose_bone, q):
    """Rotation keys in the bone's rotation mode: (data path suffix, (T, n) values)."""
    from mathutils import Euler, Quaternion

    mode = pose_bone.rotation_mode
    if mode == "QUATERNION":
        return "rotation_quaternion", continuous(q)
    if mode == "AXIS_ANGLE":
        q = continuous(q)
        angle = 2 * np.arccos(np.clip(q[:, 0], -1, 1))
        axis = q[:, 1:] / np.maximum(np.linalg.norm(q[:, 1:], axis=1, keepdims=True), 1e-12)
        axis[np.linalg.norm(q[:, 1:], axis=1) < 1e-12] = (0, 1, 0)
        return "rotation_axis_angle", np.concatenate([angle[:, None], axis], 1)
    values, previous = np.empty((len(q), 3)), Euler((0, 0, 0), mode)
    for i, quat in enumerate(q):  # compatible Euler angles need the previous frame's
        previous = Quaternion(quat).to_euler(mode, previous)
        values[i] = previous[:]
    return "rotation_euler", values


def write_action(obj, name, bones, rest_local, times, local, source):
    """A new action ``name`` on ``obj``'s bones keyed at every time of ``times`` from joint-local poses
    ``local`` (T, J, 4, 4); the non-bone curves of ``source`` are copied as they are. Replaces an action of
    that name that the add-on wrote before; returns the action."""
    import bpy

    old = bpy.data.actions.get(name)
    if old is not None and old.get(MARKER):
        bpy.data.actions.remove(old)
    action = bpy.data.actions.new(name)
    action[MARKER] = source.name
    basis = np.linalg.inv(rest_local)[None] @ local
    t, q, s = to_trs(basis)
    frames = np.asarray(times, dtype=np.float64)

    def key(data_path, values, group):
        for k in range(values.shape[1]):
            fc = action.fcurves.new(data_path, index=k, action_group=group)
            fc.keyframe_points.add(len(frames))
            co = np.empty(2 * len(frames))
            co[0::2], co[1::2] = frames, values[:, k]
            fc.keyframe_points.foreach_set("co", co)
            fc.keyframe_points.foreach_set("interpolation", np.full(len(frames), 1, dtype=np.int32))  # LINEAR
            fc.update()

    for j, bone in enumerate(bones):
        pb = obj.pose.bones[bone.name]
        path = f'pose.bones["{bone.name}"]'
        key(f"{path}.location", t[:, j], bone.name)
        suffix, values = _rotation_channels(pb, q[:, j])
        key(f"{path}.{suffix}", values, bone.name)
        key(f"{path}.scale", s[:, j], bone.name)
    for fc in source.fcurves:  # object-level curves (not in-betweened) come along unchanged
        if bone_of(fc.data_path) is None:
            copy = action.fcurves.new(fc.data_path, index=fc.array_index)
            copy.keyframe_points.add(len(fc.keyframe_points))
            co = np.zeros(2 * len(fc.keyframe_points))
            fc.keyframe_points.foreach_get("co", co)
            copy.keyframe_points.foreach_set("co", co)
            copy.update()
    return action


def local_from_samples(t, q, s):
    """Joint-local matrices (T, J, 4, 4) from translation, rotation (w, x, y, z) and scale samples."""
    return from_trs(t, q, s)
