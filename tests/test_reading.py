"""Every real USD file opens, skeletons and bound animations are found, FK (numpy) matches UsdSkel."""
import numpy as np
import pytest
from pxr import Usd, UsdSkel

from anymole_usd.kinematics import forward_kinematics, global_positions
from anymole_usd.reading import authored_times, find_bindings, open_stage, read_motion

EXPECTED = {  # file -> [(joints, animation samples or None)]
    "AnimLabSimpleMale.usd": [(23, None)],
    "CesiumMan.usdz": [(19, 48)],
    "RiggedFigure.usdz": [(19, 2)],
    "RiggedSimple.usdz": [(2, 50)],
    "SoC-ElephantWithMonochord.usdc": [(27, 3023), (2, 3023)],
    "lbs.usda": [(3, 30)],
    "lbs.baked.usda": [(3, 30)],
    "skeleton.usda": [(66, 3)],
    "skinnedArm.usda": [(3, 2)],
    "tinyusdz_skintest-blender-4.1.usda": [(2, None)],
}


def _skel_query(stage, path):
    cache = UsdSkel.Cache()
    for prim in stage.Traverse():
        if prim.IsA(UsdSkel.Root):
            cache.Populate(UsdSkel.Root(prim), Usd.TraverseInstanceProxies())
    return cache.GetSkelQuery(UsdSkel.Skeleton(stage.GetPrimAtPath(path)))


def test_every_file_is_described(usd_files):
    assert {p.name for p in usd_files} == set(EXPECTED)
    for path in usd_files:
        stage = open_stage(path)
        bindings = find_bindings(stage, str(path))
        got = [(b.skeleton.num_joints, len(authored_times(stage.GetPrimAtPath(b.animation_path)))
                if b.animation_path else None) for b in bindings]
        assert got == EXPECTED[path.name], path.name


def test_animation_bound_on_ancestor_skelroot(data_dir):
    path = data_dir / "usd" / "SoC-ElephantWithMonochord.usdc"
    stage = open_stage(path)
    for b in find_bindings(stage):
        skel_prim = stage.GetPrimAtPath(b.skeleton_path)
        own = UsdSkel.BindingAPI(skel_prim).GetAnimationSourceRel()
        assert not (own and own.HasAuthoredTargets())  # so it really is inherited
        assert b.animation_path.endswith("/_anim")


def test_numpy_fk_matches_usdskel_on_every_animated_file(usd_files):
    for path in usd_files:
        stage = open_stage(path)
        for b in find_bindings(stage):
            if not b.animation_path:
                continue
            m = read_motion(stage, b)
            sel = np.linspace(0, m.num_frames - 1, min(m.num_frames, 200)).astype(int)
            ours = forward_kinematics(b.skeleton.parents, m.rotations[sel], m.translations[sel], m.scales[sel])
            q = _skel_query(stage, b.skeleton_path)
            ref = np.stack([np.asarray(q.ComputeJointSkelTransforms(t)) for t in m.times[sel]])
            tol = 1e-5 * b.skeleton.height()
            assert np.abs(ours[..., 3, :3] - ref[..., 3, :3]).max() < max(tol, 5e-6 * np.abs(ref).max()), path.name
            assert np.abs(ours[..., :3, :3] - ref[..., :3, :3]).max() < 1e-4, path.name


def test_sparse_animation_uses_rest_for_missing_joints(data_dir):
    # skinnedArm's animation covers 1 of 3 joints: the AnimMapper + rest fill the rest.
    stage = open_stage(data_dir / "usd" / "synthetic" / "skinnedArm.usda")
    (b,) = find_bindings(stage)
    m = read_motion(stage, b)
    q = _skel_query(stage, b.skeleton_path)
    for i, t in enumerate(m.times):
        ref = np.asarray(q.ComputeJointLocalTransforms(t))
        ours = forward_kinematics(-np.ones(3, int), m.rotations[i:i + 1], m.translations[i:i + 1], m.scales[i:i + 1])[0]
        # 1e-4: the file's (0.7071, 0.7071) quaternion is not unit; UsdSkel uses it as is, we normalise.
        assert np.allclose(ours, ref, atol=1e-4)


def test_near_integer_times_are_kept_exact(data_dir):
    stage = open_stage(data_dir / "usd" / "SoC-ElephantWithMonochord.usdc")
    b = find_bindings(stage)[0]
    t = authored_times(stage.GetPrimAtPath(b.animation_path))
    assert t[0] == pytest.approx(1.0000000521540642, abs=0)
    assert len(t) == 3023


def test_global_positions_shape(data_dir):
    stage = open_stage(data_dir / "usd" / "CesiumMan.usdz")
    (b,) = find_bindings(stage)
    m = read_motion(stage, b)
    p = global_positions(b.skeleton.parents, m.rotations, m.translations, m.scales)
    assert p.shape == (48, 19, 3) and np.isfinite(p).all()


def test_read_write_read_roundtrips_exactly(usd_files, tmp_path):
    """Motion -> Sdf samples -> Motion gives the same float32/half values, bit for bit."""
    from pxr import Sdf

    from anymole_usd.animation_specs import to_animation_order, write_channels

    for path in usd_files:
        stage = open_stage(path)
        for b in find_bindings(stage):
            if not b.animation_path:
                continue
            m = read_motion(stage, b)
            out = tmp_path / f"{path.stem}_{len(list(tmp_path.iterdir()))}.usda"
            layer = Sdf.Layer.CreateNew(str(out))
            layer.timeCodesPerSecond = stage.GetTimeCodesPerSecond()
            prim = Sdf.CreatePrimInLayer(layer, b.animation_path)
            joints = stage.GetPrimAtPath(b.animation_path).GetAttribute("joints")
            Sdf.AttributeSpec(prim, "joints", joints.GetTypeName(), Sdf.VariabilityUniform).default = joints.Get()
            with Sdf.ChangeBlock():
                write_channels(layer, b.animation_path, m.times, to_animation_order(m, b.anim_to_skel), define=True)
            layer.Save()
            back_stage = open_stage(out)
            back = read_motion(back_stage, b, anim_path=b.animation_path)
            np.testing.assert_array_equal(back.times, m.times)
            for field in ("rotations", "translations", "scales"):
                np.testing.assert_array_equal(getattr(back, field), getattr(m, field), err_msg=path.name)
