"""Benchmark protocols, running priors on identical windows, and `anymole-usd eval` on real files."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from anymole_usd.cli.main import cli
from anymole_usd.evaluation import aggregate, evaluate_result, gap_runs, gap_windows, make_request, run_benchmark
from anymole_usd.metric import load_metrics
from anymole_usd.protocols import Window, anymole_windows, lafan1_windows, load_clips, skel_space_up

BANDAI = "bvh/humanoid/bandai_namco"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def walk(data_dir):
    return load_clips([data_dir / BANDAI / "dataset-1_walk_normal_001.bvh"])[0]


def test_anymole_protocol_windows(walk, data_dir):
    assert walk.motion.num_frames == 195 and walk.motion.fps == 30
    (w,) = anymole_windows(walk)
    assert w.context == (0, 60) and w.keys == [90, 120, 150, 180, 194]  # last frame: 14 frames after 180
    cmu = load_clips([data_dir / "bvh/humanoid/cmu/01_01.bvh"])[0]
    assert cmu.motion.fps == 30 and cmu.motion.num_frames == 688  # 120 fps decimated to 30
    ws = anymole_windows(cmu)
    assert [w.context for w in ws] == [(0, 60), (240, 300), (480, 540)]
    assert ws[0].keys == [90, 120, 150, 180, 210, 240]


def test_lafan1_protocol_windows(walk):
    ws = lafan1_windows(walk)
    starts = sorted({w.context[0] for w in ws})
    assert starts == list(range(0, 195 - 65 + 1, 40))
    for w in ws:
        n = int(w.setting.split("-")[1])
        assert w.context[1] - w.context[0] == 9 and w.keys == [w.context[0] + 10 + n]


def test_requests_hold_only_context_and_keys(walk):
    w = Window(walk, (0, 60), [90, 120], "t")
    req = make_request(w)
    assert req.known.num_frames == 63
    assert np.allclose(req.target_times, np.r_[61:90, 91:120])
    assert req.up_axis == "Y" and not req.references


def test_groups_and_tags(data_dir):
    clips = load_clips([data_dir / "bvh", data_dir / "usd"])
    by = {c.name: c for c in clips}
    assert by["dataset-1_walk_normal_001"].group == "humanoid" and "locomotion" in by["dataset-1_walk_normal_001"].tags
    assert by["Crabnew_Crab-dance-long"].group == "non-humanoid"
    assert "locomotion" not in by["dataset-1_kick_normal_001"].tags
    assert not [c for c in clips if c.skeleton.num_joints < 4]  # props are not characters
    cesium = [c for c in clips if c.name.startswith("CesiumMan")][0]
    assert cesium.up_axis == "Z"  # the stage is Y-up, the skeleton sits under a Z-up transform
    from pxr import Usd

    stage = Usd.Stage.Open(str(data_dir / "usd" / "CesiumMan.usdz"))
    assert skel_space_up(stage, "/CesiumMan/Geom/Z_UP/Armature/Skeleton_torso_joint_1_3/Skeleton") == "Z"


def test_benchmark_rows_are_identical_windows(walk):
    metrics = load_metrics(["l2p-norm", "foot-skate", "keyframe-hit"])
    scores = run_benchmark([walk], ["zero-velocity", "interp"], "anymole", metrics)
    rows = {s.prior: s for s in scores}
    assert set(rows) == {"ground-truth", "zero-velocity", "interp"}
    assert len({(s.windows, s.frames) for s in scores}) == 1  # every prior filled the same frames
    assert rows["ground-truth"].values["l2p-norm"] == 0.0
    assert all(s.values["keyframe-hit"] == 1.0 for s in scores)
    agg = aggregate(scores)
    assert agg[("anymole", "interp")]["clips"] == 1


def test_gap_runs():
    runs = gap_runs(np.array([2.0, 3.0, 5.0, 6.0, 7.0]), np.arange(1.0, 9.0))
    assert [r.tolist() for r in runs] == [[1, 2, 3, 4], [4, 5, 6, 7, 8]]


@pytest.fixture(scope="module")
def filled_shot(tmp_path_factory, data_dir):
    """The CesiumMan test shot (context 1-24, keys 36 and 48) filled by the interp prior."""
    import shots

    from anymole_usd.pipeline import InbetweenOptions, run_inbetween

    tmp = tmp_path_factory.mktemp("eval")
    shot = shots.shot_root(tmp, data_dir)
    run_inbetween(str(shot), InbetweenOptions(prior="interp"))
    return shot


def test_eval_result_matches_the_benchmark_path(filled_shot, data_dir):
    truth = data_dir / "usd" / "CesiumMan.usdz"
    metrics = load_metrics(["l2q", "l2p-norm", "npss", "keyframe-hit", "key-jump"])
    (row,) = evaluate_result(str(filled_shot), str(truth), metrics=metrics)
    assert row.generated_frames == 22 and row.gaps == 2
    assert row.values["keyframe-hit"] == 1.0
    # Same numbers through the protocol machinery on the clip read directly (times shifted by 1).
    clip = load_clips([truth])[0]
    from anymole_usd import registry
    from anymole_usd.evaluation import compose

    req = make_request(Window(clip, (0, 23), [35, 47], "x"))
    out = registry.load("priors", "interp")().fill(req)
    evals = gap_windows(clip, compose(req.known, out, req.timeline), req.timeline)
    for m in metrics[:3]:
        assert row.values[m.name] == pytest.approx(m.compute(evals), rel=1e-6), m.name


def test_eval_cli(filled_shot, data_dir):
    truth = data_dir / "usd" / "CesiumMan.usdz"
    res = run("eval", filled_shot, "--reference", truth, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    (anim,) = data["animations"]
    assert anim["generated_frames"] == 22 and anim["keyframe-hit"] == 1.0 and anim["l2p-norm"] > 0
    text = run("eval", filled_shot, "--reference", truth)
    assert text.exit_code == 0 and "npss" in text.output
    missing = run("eval", filled_shot, "--reference", filled_shot.parent / "nope.usda")
    assert missing.exit_code == 2 and "no such file" in missing.output
    assert run("eval", filled_shot).exit_code == 2  # no reference


def test_eval_benchmark_cli(data_dir):
    clip = data_dir / BANDAI / "dataset-2_run_normal_021.bvh"
    res = run("eval", "--benchmark", clip, "--protocol", "anymole", "--priors", "zero-velocity,interp,graph",
              "--metrics", "l2p-norm,npss,foot-skate", "--json")
    assert res.exit_code == 0, res.output
    scores = json.loads(res.output)["scores"]
    assert {s["prior"] for s in scores} == {"ground-truth", "zero-velocity", "interp", "graph"}
    table = run("eval", "--benchmark", clip, "--metrics", "l2p-norm")
    assert table.exit_code == 0 and "| anymole | graph |" in table.output
