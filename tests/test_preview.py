"""`anymole-usd preview`: labelled panels (result / compared priors / reference), readable at 1,600 px, framed on
the character rather than on the whole path."""
import json

import numpy as np
import pytest
from anymole_usd.cli.main import cli
from click.testing import CliRunner


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def walk(tmp_path_factory, data_dir):
    """A Bandai Namco walk (BVH, cm) imported, and a shot of it whose frames 60-89 and 91-119 are filled by interp."""
    root = tmp_path_factory.mktemp("preview")
    bvh = data_dir / "bvh" / "humanoid" / "bandai_namco" / "dataset-1_walk_normal_001.bvh"
    truth = root / "walk.usda"
    assert run("import", bvh, "-o", truth, "--frames", "0:150").exit_code == 0
    shot = root / "shot.usda"
    assert run("import", bvh, "-o", shot, "--frames", "0:150").exit_code == 0
    r = run("inbetween", shot, "--context", "0:59", "--keys", "90,120", "--prior", "interp")
    assert r.exit_code == 0, r.output
    return shot, truth


def test_sheet_is_labelled_and_fits_1600_px(walk):
    import imageio.v3 as iio
    from anymole_usd.plugins.render.preview import ROLE_COLOURS

    shot, truth = walk
    out = shot.parent / "sheet.png"
    r = run("preview", shot, "--reference", truth, "--compare", "zero-velocity", "-o", out, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["panels"] == ["result (interp)", "zero-velocity", "reference"]
    assert s["counts"]["generated"] == 59 and s["counts"]["keyframe"] == 2
    sheet = iio.imread(out)
    assert sheet.shape[1] == s["width"] <= 1600
    h, w = 240, 192  # default tile
    columns = (sheet.shape[1] - 4) // (w + 4)
    assert columns >= 8 and s["shown"] == 24  # three strips of 8 frames, a row per panel in each
    strip = 3 * (h + 4) - 4
    assert sheet.shape[0] == 3 * (strip + 14) - 14 + 8
    # Every tile's top bar carries the colour of its frame's role: the first tile is the known sample before
    # the gap (context, blue), most are generated (orange), and the keyframes (green) are there.
    bars = sheet[6, 4 + (w + 4) * np.arange(columns) + w // 2]
    assert np.array_equal(bars[0], ROLE_COLOURS[1])
    right = 4 + (w + 4) * np.arange(columns) + w - 6
    tops = np.concatenate([sheet[4 + k * (strip + 14) + 2, right] for k in range(3)])
    assert (tops == ROLE_COLOURS[3]).all(1).sum() >= 18 and (tops == ROLE_COLOURS[2]).all(1).sum() == 2
    # Each panel row is labelled: a dark name box at the bottom left of every tile.
    for q in range(3):
        y = 4 + q * (h + 4) + h - 8
        assert (sheet[y, 10:14] < 60).all()


def test_framing_follows_the_character(walk):
    """The walk covers metres, but the character fills most of the tile height on every frame and never leaves it."""
    from anymole_usd.plugins.render.cameras import auto_cameras, facing_direction
    from anymole_usd.plugins.render.preview import framing_cameras
    from anymole_usd.plugins.render.scene import load_scene
    from anymole_usd.plugins.render.skinning import pose_character

    shot, truth = walk
    scene = load_scene(truth)
    ch = scene.character
    pose = pose_character(ch, scene.motion)
    forward = facing_direction(pose.joints, ch.sides, ch.up)
    cams = framing_cameras([pose.vertices], ch.up, forward, size=(240, 192), fps=scene.motion.fps)
    px, z = cams.project(pose.vertices)  # what is drawn (a trajectory root at the origin is not)
    heights = np.ptp(px[0, ..., 1], axis=1)
    assert (z > 0).all()
    assert px[0, ..., 0].min() >= 0 and px[0, ..., 0].max() <= 192
    assert px[0, ..., 1].min() >= 0 and px[0, ..., 1].max() <= 240
    assert heights.min() > 0.55 * 240
    # the whole-path framing it replaces: the same walk is a small figure
    fixed = auto_cameras(pose.vertices, ch.up, forward, views=("front",), width=192, height=240)
    assert np.ptp(fixed.project(pose.vertices)[0][0, ..., 1], axis=1).min() < 0.5 * heights.min()


def test_preview_mp4_side_by_side(walk):
    import imageio.v2 as iio2

    shot, truth = walk
    out = shot.parent / "clip.mp4"
    r = run("preview", shot, "--reference", truth, "-o", out, "--frames", "55:64", "--size", "64x48", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["panels"] == ["result (interp)", "reference"] and s["frames"] == 10
    with iio2.get_reader(str(out), format="FFMPEG") as reader:
        frames = [f for f in reader]  # list(reader) asks len(): inf for a stream
    assert len(frames) == 10 and frames[0].shape == (64, 2 * 48 + 4, 3)


def test_sheet_indices_focus_on_the_gaps():
    from anymole_usd.plugins.render.preview import sheet_indices

    roles = np.array([1] * 60 + [3] * 30 + [2] + [3] * 29 + [2] + [0] * 30)
    idx = sheet_indices(roles, max_tiles=12)
    assert 59 in idx and 90 in idx and 120 in idx  # the sample before the gap and both keys
    assert len(idx) <= 12 and set(roles[idx]) == {1, 2, 3}
    assert (roles[idx] == 3).sum() == len(idx) - 3
    dense = sheet_indices(np.ones(100, dtype=int), max_tiles=10)
    assert len(dense) == 10 and dense[0] == 0 and dense[-1] == 99


def test_preview_compare_needs_a_result(walk):
    shot, truth = walk
    r = run("preview", truth, "--compare", "interp")
    assert r.exit_code == 2 and "needs an in-between result" in r.output


def test_auto_view_sees_a_quadruped_from_the_side(walk, data_dir):
    from anymole_usd.plugins.render.cameras import facing_direction
    from anymole_usd.plugins.render.preview import auto_view
    from anymole_usd.plugins.render.scene import load_scene
    from anymole_usd.plugins.render.skinning import pose_character

    for path, expected in ((data_dir / "gltf" / "Fox.glb", "left"), (walk[1], "front")):
        scene = load_scene(path, frames=(0, 20))
        ch = scene.character
        pose = pose_character(ch, scene.motion)
        assert auto_view(pose.vertices, ch.up, facing_direction(pose.joints, ch.sides, ch.up)) == expected, path
