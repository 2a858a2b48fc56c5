"""`inbetween --video-dir`: frames from an external generator lifted to the shot's skeleton, end to end.

The "generator" here is the ground truth itself: CesiumMan's real in-between
poses rendered by `video prepare --from TRUTH` (the CLI-only perfect-frame round
trip). The result must compose like any other prior's, hit the keys exactly, and
land far closer to the truth than holding the last pose does.
"""
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # two intra-op threads are many times slower on a shared 2-core machine

from anymole_usd.cli.main import cli  # noqa: E402
from anymole_usd.kinematics import global_positions  # noqa: E402
from anymole_usd.reading import find_bindings, open_stage, read_motion  # noqa: E402

from shots import CONTEXT, KEYS, shot_root  # noqa: E402

SIZE = (96, 96)


def test_video_dir_end_to_end(tmp_path, data_dir):
    (tmp_path / "truth").mkdir()
    truth_path = shot_root(tmp_path / "truth", data_dir, times=list(range(1, 49)))
    shot = shot_root(tmp_path, data_dir)
    r = CliRunner().invoke(cli, ["video", "prepare", str(shot), "-o", str(tmp_path / "job"), "--from", str(truth_path),
                                 "--size", f"{SIZE[0]}x{SIZE[1]}"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, [
        "inbetween", str(shot), "--video-dir", str(tmp_path / "job"), "--json",
        "--param", "lambda_img=0", "--param", "estimator_steps=300",
    ], catch_exceptions=False, env={"ANYMOLE_USD_CACHE": str(tmp_path / "cache")})
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output[r.output.index("{"):])
    (a,) = rep["animations"]
    assert a["prior"] == "video" and a["frames_to_fill"] == 22

    stage = open_stage(shot)
    (b,) = find_bindings(stage)
    skeleton = b.skeleton
    result = read_motion(stage, b)
    truth_stage = open_stage(truth_path)
    (tb,) = find_bindings(truth_stage)
    truth = read_motion(truth_stage, tb)
    known = CONTEXT + KEYS
    np.testing.assert_array_equal(result.at_times(known).rotations, truth.at_times(known).rotations)
    gen = [t for t in range(1, 49) if t not in known]
    err = {}
    pos_t = global_positions(skeleton.parents, *(getattr(truth.at_times(gen), f)
                                                 for f in ("rotations", "translations", "scales")))
    pos_r = global_positions(skeleton.parents, *(getattr(result.at_times(gen), f)
                                                 for f in ("rotations", "translations", "scales")))
    err["video"] = np.linalg.norm(pos_r - pos_t, axis=-1).mean() / skeleton.height()
    hold = truth.at_times([24 if t < 36 else 36 for t in gen])
    pos_h = global_positions(skeleton.parents, hold.rotations, hold.translations, hold.scales)
    err["hold"] = np.linalg.norm(pos_h - pos_t, axis=-1).mean() / skeleton.height()
    assert np.isfinite(err["video"]) and err["video"] < 0.5 * err["hold"], err


def test_video_dir_missing_frames_is_bad_input(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    (tmp_path / "frames").mkdir()
    r = CliRunner().invoke(cli, ["inbetween", str(shot), "--video-dir", str(tmp_path / "frames"),
                                 "--param", "lambda_img=0"])
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and not (tmp_path / "shot.inbetween.usda").exists()


@pytest.mark.parametrize("param, word", [("depth_term=sideways", "depth_term"), ("lr=fast", "lr"),
                                         ("estimator_distance=guess", "estimator_distance"), ("size=big", "size"),
                                         ("rate=0", "rate"), ("no_such=1", "no_such")])
def test_video_prior_bad_parameter_is_bad_input(tmp_path, data_dir, param, word):
    shot = shot_root(tmp_path, data_dir)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    (tmp_path / "frames").mkdir()
    r = CliRunner().invoke(cli, ["inbetween", str(shot), "--video-dir", str(tmp_path / "frames"), "--param", param])
    assert r.exit_code == 2, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and word in errors[0], r.output  # one line, naming the parameter
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before  # nothing written


def test_mirrored_poses_reach_the_estimator_only_when_asked(tmp_path, data_dir, monkeypatch):
    """`--param estimator_mirror=true` trains the estimator on the known poses mirrored as well (one render
    per known pose and training view); the default trains on the known renders alone."""
    from anymole_usd.plugins.mimicking import estimation

    shot = shot_root(tmp_path, data_dir)
    r = CliRunner().invoke(cli, ["video", "prepare", str(shot), "-o", str(tmp_path / "job"), "--from", str(shot),
                                 "--size", f"{SIZE[0]}x{SIZE[1]}"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    seen = []
    real = estimation.estimator_targets

    def spy(*args, extra=None, **kw):
        seen.append(extra)
        return real(*args, extra=extra, **kw)

    monkeypatch.setattr(estimation, "estimator_targets", spy)
    for value in ("false", "true"):
        shutil.copy(shot, tmp_path / f"{value}.usda")
        r = CliRunner().invoke(cli, [
            "inbetween", str(tmp_path / f"{value}.usda"), "--video-dir", str(tmp_path / "job"), "--param",
            "lambda_img=0", "--param", "estimator_steps=2", "--param", "iterations=2", "--param",
            f"estimator_mirror={value}"], catch_exceptions=False, env={"ANYMOLE_USD_CACHE": str(tmp_path / "cache")})
        assert r.exit_code == 0, r.output
    assert seen[0] is None
    known = len(CONTEXT) + len(KEYS)
    assert seen[1].num_samples == 3 * known and sorted(set(seen[1].views)) == ["front", "left", "right"]
