"""BVH import/export on the real files in ../shared/data/bvh.

The reference joint positions are computed here, independently of the USD
path and of the importer's own rotation code: per joint, a scipy Rotation
from the raw channel values in the order they are listed, composed down the
hierarchy from the parsed OFFSETs. The USD side is UsdSkel's own
``SkeletonQuery.ComputeJointSkelTransforms`` on the written stage.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from anymole_usd.errors import InputError
from anymole_usd.plugins.io.base import ImportOptions
from anymole_usd.plugins.io.bvh import BvhClip, read_bvh, write_bvh
from anymole_usd.plugins.io.convert import export_from_usd, import_to_usd

DATA = Path(os.environ.get("ANYMOLE_USD_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
BVH_FILES = sorted((DATA / "bvh").rglob("*.bvh")) if (DATA / "bvh").is_dir() else []
CMU = DATA / "bvh" / "humanoid" / "cmu" / "01_01.bvh"
ELEPHANT = DATA / "bvh" / "nonhumanoid" / "truebones" / "Elephant_idle1.bvh"
TOL = 1e-4  # x skeleton height

needs_data = pytest.mark.skipif(not BVH_FILES, reason=f"no BVH files under {DATA} (set ANYMOLE_USD_DATA)")


def reference_positions(clip: BvhClip) -> np.ndarray:
    """World joint positions (F, J, 3) straight from offsets and channels (scipy, per joint)."""
    n_f = len(clip.values)
    world_rot: list[Rotation] = []
    pos = np.zeros((n_f, len(clip.names), 3))
    for j, (chans, cols) in enumerate(zip(clip.channels, clip.channel_columns)):
        local_t = np.tile(clip.offsets[j], (n_f, 1))
        axes, angles = "", []
        for name, col in zip(chans, cols):
            if name.endswith("position"):
                local_t[:, "XYZ".index(name[0])] = clip.values[:, col]
            else:
                axes += name[0]
                angles.append(clip.values[:, col])
        local_r = Rotation.from_euler(axes, np.stack(angles, 1), degrees=True) if axes else Rotation.identity(n_f)
        p = clip.skeleton.parents[j]
        if p < 0:
            world_rot.append(local_r)
            pos[:, j] = local_t
        else:
            world_rot.append(world_rot[p] * local_r)
            pos[:, j] = pos[:, p] + world_rot[p].apply(local_t)
    return pos


def usd_positions(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """(times, skel-space joint positions (F, J, 3), timeCodesPerSecond) as UsdSkel composes them."""
    from pxr import Usd, UsdSkel

    stage = Usd.Stage.Open(str(path))
    cache = UsdSkel.Cache()
    root = next(p for p in stage.Traverse() if p.IsA(UsdSkel.Root))
    cache.Populate(UsdSkel.Root(root), Usd.PrimDefaultPredicate)
    skel = next(p for p in stage.Traverse() if p.IsA(UsdSkel.Skeleton))
    query = cache.GetSkelQuery(UsdSkel.Skeleton(skel))
    anim = UsdSkel.Animation(query.GetAnimQuery().GetPrim())
    times = np.array(anim.GetRotationsAttr().GetTimeSamples())
    pos = np.stack([np.asarray(query.ComputeJointSkelTransforms(t))[:, 3, :3] for t in times])
    return times, pos, stage.GetTimeCodesPerSecond()


@needs_data
@pytest.mark.parametrize("path", BVH_FILES, ids=[p.name for p in BVH_FILES])
def test_usdskel_positions_match_bvh_on_every_frame(path, tmp_path):
    clip = read_bvh(path)
    out = tmp_path / "clip.usdc"
    import_to_usd(path, out)
    times, got, tcps = usd_positions(out)
    want = reference_positions(clip)
    assert len(times) == len(clip.values)
    np.testing.assert_allclose(times, np.arange(len(times)))
    assert tcps == pytest.approx(1.0 / clip.frame_time, rel=1e-4)
    err = np.abs(got - want).max() / clip.skeleton.height()
    assert err < TOL, f"{path.name}: max position error {err:.2e} x height"


@needs_data
@pytest.mark.parametrize("path", BVH_FILES, ids=[p.name for p in BVH_FILES])
def test_round_trip_bvh_usd_bvh(path, tmp_path):
    import_to_usd(path, tmp_path / "clip.usdc")
    export_from_usd(tmp_path / "clip.usdc", tmp_path / "back.bvh")
    original, back = read_bvh(path), read_bvh(tmp_path / "back.bvh")
    assert back.names == original.names
    assert back.channels == original.channels  # the layout survives through customData
    assert len(back.end_sites) == len(original.end_sites)
    assert back.frame_time == pytest.approx(original.frame_time, rel=1e-4)
    err = np.abs(reference_positions(back) - reference_positions(original)).max() / original.skeleton.height()
    assert err < TOL, f"{path.name}: round-trip error {err:.2e} x height"


@needs_data
def test_cmu_clip_shape_and_rate():
    clip = read_bvh(CMU)
    assert clip.motion.rotations.shape == (2752, 31, 4)
    assert clip.motion.fps == 120.0  # 'Frame Time: .0083333' snaps to 120
    assert clip.skeleton.joints[2] == "Hips/LHipJoint/LeftUpLeg"
    assert clip.rotation_orders[0] == "ZYX"
    np.testing.assert_allclose(clip.motion.times, np.arange(2752))
    # root position channels land in the root translation, offsets in the rest
    np.testing.assert_allclose(clip.motion.translations[0, 0], clip.values[0, :3])
    np.testing.assert_allclose(clip.skeleton.rest_transforms[2, 3, :3], [1.36306, -1.79463, 0.83929])


@needs_data
def test_crlf_tabs_and_mixed_whitespace_parse_identically(tmp_path):
    text = ELEPHANT.read_text()
    messy = tmp_path / "messy.bvh"
    lines = text.splitlines()
    # CRLF endings, tabs and runs of spaces between values, blank line before MOTION data
    lines = [ln.replace(" ", " \t  ") if i % 2 else "   " + ln.replace("\t", "  ") for i, ln in enumerate(lines)]
    messy.write_bytes(("\r\n".join(lines) + "\r\n\r\n").encode())
    a, b = read_bvh(ELEPHANT), read_bvh(messy)
    assert a.channels == b.channels and a.names == b.names
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.offsets, b.offsets)


SYNTHETIC = """HIERARCHY
ROOT root:Hips
{
  OFFSET 0 10 0
  CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation
  JOINT Spine
  {
    OFFSET 0 5 0
    CHANNELS 2 Yrotation Xrotation
    JOINT Head
    {
      OFFSET 0 4 1
      CHANNELS 4 Zrotation Yposition Xrotation Yrotation
      End Site
      {
        OFFSET 0 2 0
      }
    }
  }
  JOINT Tail
  {
    OFFSET 0 -1 -3
    CHANNELS 0
    End Site
    {
      OFFSET 0 0 -2
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.0416667
1 10 2 10 20 30 15 -40 5 6 70 -80
2 11 3 40 -20 80 -15 60 -95 5 10 120
3 12 4 90 45 -170 25 -10 30 4 -60 45
"""


def test_per_joint_channel_lists_orders_and_partial_channels(tmp_path):
    path = tmp_path / "synthetic.bvh"
    path.write_text(SYNTHETIC)
    clip = read_bvh(path)
    assert clip.names == ["root:Hips", "Spine", "Head", "Tail"]
    assert clip.skeleton.joints == ["root_Hips", "root_Hips/Spine", "root_Hips/Spine/Head", "root_Hips/Tail"]
    assert clip.rotation_orders == ["XYZ", "YX", "ZXY", ""]
    assert clip.motion.fps == 24.0
    # the Head's Yposition channel replaces its OFFSET's y, x and z stay
    np.testing.assert_allclose(clip.motion.translations[:, 2], [[0, 6, 1], [0, 5, 1], [0, 4, 1]])
    out = tmp_path / "synthetic.usda"
    import_to_usd(path, out)
    _, got, tcps = usd_positions(out)
    assert tcps == 24.0
    np.testing.assert_allclose(got, reference_positions(clip), atol=1e-4 * clip.skeleton.height())


def test_write_bvh_default_layout_round_trips(tmp_path):
    path = tmp_path / "synthetic.bvh"
    path.write_text(SYNTHETIC)
    clip = read_bvh(path)
    write_bvh(tmp_path / "out.bvh", clip.skeleton, clip.motion)  # no layout given: defaults
    back = read_bvh(tmp_path / "out.bvh")
    assert back.rotation_orders == ["ZXY"] * 4
    assert back.channels[2][:3] == ["Xposition", "Yposition", "Zposition"]  # animated translation kept
    assert len(back.end_sites) == 2
    np.testing.assert_allclose(reference_positions(back), reference_positions(clip), atol=1e-5)


def test_end_sites_as_joints(tmp_path):
    path = tmp_path / "synthetic.bvh"
    path.write_text(SYNTHETIC)
    clip = read_bvh(path, end_sites=True)
    assert clip.skeleton.joints[-2:] == ["root_Hips/Spine/Head/Head_End", "root_Hips/Tail/Tail_End"]
    assert clip.motion.num_joints == 6
    np.testing.assert_allclose(clip.skeleton.rest_transforms[-1, 3, :3], [0, 0, -2])


@needs_data
def test_frames_slice_fps_resample_and_up_axis(tmp_path):
    from pxr import Usd, UsdGeom

    out = tmp_path / "slice.usda"
    summary = import_to_usd(CMU, out, ImportOptions(frames=slice(120, 480), fps=30.0, up_axis="Z"))
    stage = Usd.Stage.Open(str(out))
    assert stage.GetTimeCodesPerSecond() == 30.0 and UsdGeom.GetStageUpAxis(stage) == "Z"
    times, got, _ = usd_positions(out)
    # source frames 120..479 at 120 fps = seconds 1.0..3.9917 -> 30 fps timecodes 30..119
    np.testing.assert_allclose(times, np.arange(30, 120))
    assert summary["animations"][0]["frames"] == 90
    clip = read_bvh(CMU)
    want = reference_positions(clip)[120:480:4]  # every 4th 120-fps frame is a 30-fps frame
    y_to_z = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    err = np.abs(got - want @ y_to_z.T).max() / clip.skeleton.height()
    assert err < TOL


@needs_data
def test_scale_and_meters_per_unit(tmp_path):
    from pxr import Usd, UsdGeom

    out = tmp_path / "scaled.usda"
    import_to_usd(ELEPHANT, out, ImportOptions(scale=100.0))
    stage = Usd.Stage.Open(str(out))
    assert UsdGeom.GetStageMetersPerUnit(stage) == pytest.approx(1e-2)  # guessed metres / 100
    _, got, _ = usd_positions(out)
    np.testing.assert_allclose(got, 100.0 * reference_positions(read_bvh(ELEPHANT)), atol=1e-3)
    import_to_usd(ELEPHANT, tmp_path / "metres.usda", ImportOptions(meters_per_unit=1.0))
    assert UsdGeom.GetStageMetersPerUnit(Usd.Stage.Open(str(tmp_path / "metres.usda"))) == 1.0


@needs_data
@pytest.mark.parametrize("rel, unit", [
    ("humanoid/bandai_namco/dataset-1_kick_normal_001.bvh", 0.01),  # centimetres
    ("humanoid/bandai_namco/dataset-1_walk_normal_001.bvh", 0.01),
    ("humanoid/cmu/01_01.bvh", 0.0254 / 0.45),  # CMU's converted unit
    ("nonhumanoid/truebones/Elephant_idle1.bvh", 1.0),  # metres
    ("nonhumanoid/truebones/Crabnew_Crab-dance-long.bvh", 1.0),
])
def test_meters_per_unit_guess_from_character_size(rel, unit):
    from anymole_usd.kinematics import global_positions
    from anymole_usd.plugins.io.bvh import BvhImporter

    path = DATA / "bvh" / rel
    if not path.is_file():
        pytest.skip(f"{path} missing")
    scene = BvhImporter().read(str(path), ImportOptions(frames=slice(0, 60)))
    assert scene.meters_per_unit == pytest.approx(unit)
    motion = next(iter(scene.animations.values()))
    pos = global_positions(scene.skeleton.parents, motion.rotations, motion.translations, motion.scales)
    tall = np.ptp(pos[..., 1], axis=1).max() * scene.meters_per_unit  # Y up: the tallest frame, metres
    assert 0.25 < tall < 4.0  # a crab to an elephant, never 2 cm or 20 m


def test_meters_per_unit_guess_is_scale_consistent():
    from anymole_usd.plugins.io.bvh import guess_meters_per_unit

    assert guess_meters_per_unit(180.0) == 0.01  # a person in centimetres
    assert guess_meters_per_unit(70.0) == pytest.approx(0.0254)  # ... in inches
    assert guess_meters_per_unit(1800.0) == 0.001  # ... in millimetres
    assert guess_meters_per_unit(1.8) == 1.0  # ... in metres
    assert guess_meters_per_unit(0.0) == 0.01  # nothing to measure: the common case


# ----------------------------------------------------------------------------- bad input


def _mutated(tmp_path, name, old, new, count=1):
    text = SYNTHETIC.replace(old, new, count)
    assert text != SYNTHETIC
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("old,new,message", [
    ("Frames: 3", "Frames: 4", "line 35: file ends after 3 motion lines but line 31 declares 'Frames: 4' (truncated?)"),
    ("Frames: 3", "Frames: 2", "line 35: 3 motion lines but line 31 declares 'Frames: 2'"),
    ("2 11 3 40", "2 11 40", "line 34: 11 values but the hierarchy declares 12 channels"),
    ("Yrotation Xrotation\n", "Yrotation Wrotation\n", "line 9: unknown channel 'Wrotation' on joint 'Spine'"),
    ("CHANNELS 2 Yrotation", "CHANNELS 3 Yrotation", "line 10: CHANNELS of 'Spine' declares 3 channels but lists 2"),
    ("3 12 4 90", "3 12 x4 90", "line 35: 'x4' is not a finite number"),
    ("3 12 4 90", "3 12 nan 90", "line 35: 'nan' is not a finite number"),
    ("OFFSET 0 5 0", "OFFSET 0 5", "line 9: OFFSET of 'Spine': 'CHANNELS' is not a number"),
    ("Frame Time: 0.0416667", "Frame Time: 0", "line 32: frame time must be a positive number"),
    ("Frames: 3\nFrame Time: 0.0416667\n1 10 2 10 20 30 15 -40 5 6 70 -80\n2 11 3 40 -20 80 -15 60 -95 5 10 120\n"
     "3 12 4 90 45 -170 25 -10 30 4 -60 45\n", "", "line 30: file ends before 'Frames:' and 'Frame Time:'"),
    ("MOTION\n", "", "line 30: expected 'ROOT' or 'MOTION', found 'Frames:'"),
    ("HIERARCHY", "HIERARCHX", "line 1: not a BVH file"),
    ("    CHANNELS 2 Yrotation Xrotation\n", "    CHANNELS 2 Yrotation Xrotation\n    OFFSET 1 1 1\n",
     "line 10: joint 'Spine' has two OFFSET lines"),
])
def test_bad_input_names_file_and_line(tmp_path, old, new, message):
    path = _mutated(tmp_path, "bad.bvh", old, new)
    with pytest.raises(InputError) as info:
        read_bvh(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path)) and message in text, text


@needs_data
def test_truncated_real_file(tmp_path):
    data = CMU.read_bytes()
    cut_mid_line = tmp_path / "cut_mid_line.bvh"
    cut_mid_line.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut_mid_line.bvh: line 1562: file ends in the middle of motion line "
                                         r"1375 \(\d+ of 96 values\); line 186 declares 'Frames: 2752' "
                                         r"\(truncated\?\)"):
        read_bvh(cut_mid_line)
    lines = data.split(b"\n")
    cut_at_line = tmp_path / "cut_at_line.bvh"
    cut_at_line.write_bytes(b"\n".join(lines[:1000]) + b"\n")
    with pytest.raises(InputError, match=r"line 1000: file ends after 813 motion lines but line 186 declares "
                                         r"'Frames: 2752' \(truncated\?\)"):
        read_bvh(cut_at_line)
    cut_in_hierarchy = tmp_path / "cut_in_hierarchy.bvh"
    cut_in_hierarchy.write_bytes(b"\n".join(lines[:60]))
    with pytest.raises(InputError, match=r"line 60: file ends inside the HIERARCHY block"):
        read_bvh(cut_in_hierarchy)


@needs_data
def test_bad_input_writes_nothing(tmp_path):
    bad = tmp_path / "truncated.bvh"
    bad.write_bytes(CMU.read_bytes()[:50000])
    with pytest.raises(InputError):
        import_to_usd(bad, tmp_path / "out.usda")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["truncated.bvh"]
