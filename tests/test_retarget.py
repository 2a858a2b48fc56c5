"""Retargeting end to end: the solver, identity on the same skeleton, contacts on a real walk, and the
result composed over the target with byte-identical undo (binary usd, usdz wrapper, --in-place)."""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from anymole_usd import kinematics
from anymole_usd import rotations as rot
from anymole_usd.cli.main import cli
from anymole_usd.plugins.io.base import ImportOptions
from anymole_usd.plugins.io.convert import import_to_usd
from anymole_usd.plugins.retarget.adapt import Adapted
from anymole_usd.plugins.retarget.quality import evaluate
from anymole_usd.plugins.retarget.retarget import load_source, retarget, select_binding
from anymole_usd.plugins.retarget.solve import SolveSettings, exp_and_vjp, solve
from anymole_usd.reading import find_bindings, open_stage, read_motion
from anymole_usd.schema import read_provenance

WALK = "bvh/humanoid/bandai_namco/dataset-1_walk_normal_001.bvh"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _folder_bytes(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            out[os.path.relpath(path, folder)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def walk_usd(tmp_path_factory, data_dir):
    """Two seconds of the Bandai walk as a USD stage (source and, copied, an animated target)."""
    folder = tmp_path_factory.mktemp("walk")
    path = folder / "walk.usda"
    import_to_usd(str(data_dir / WALK), str(path), ImportOptions(frames=slice(0, 61)))
    return path


def test_rotation_vector_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    for scale in (1e-6, 0.4, 2.5):
        v, g = rng.normal(size=(6, 3)) * scale, rng.normal(size=(6, 4))
        _, vjp = exp_and_vjp(v)
        num = np.zeros_like(v)
        for i in range(6):
            for k in range(3):
                d = np.zeros_like(v)
                d[i, k] = 1e-6
                num[i, k] = (np.sum(exp_and_vjp(v + d)[0] * g) - np.sum(exp_and_vjp(v - d)[0] * g)) / 2e-6
        assert np.allclose(vjp(g), num, atol=1e-7)


def test_solver_reaches_consistent_targets(data_dir):
    stage = open_stage(data_dir / "usd" / "AnimLabSimpleMale.usd")
    sk = select_binding(find_bindings(stage), None, "t", need_animation=False).skeleton
    rng = np.random.default_rng(1)
    r0, t0, s0 = kinematics.decompose_matrices(sk.rest_transforms)
    n = 6
    turn = rot.exp_map(rng.normal(size=(n, sk.num_joints, 3)) * 0.3)
    truth = rot.multiply(np.broadcast_to(r0, (n,) + r0.shape), turn)
    t = np.broadcast_to(t0, (n,) + t0.shape).copy()
    s = np.broadcast_to(s0, (n,) + s0.shape).copy()
    targets = kinematics.global_positions(sk.parents, truth, t, s)
    start = rot.multiply(truth, rot.exp_map(rng.normal(size=truth.shape[:-1] + (3,)) * 0.15))
    size = sk.height()
    adapted = Adapted(start, t, s, targets, np.ones((n, sk.num_joints)), np.ones(sk.num_joints, bool),
                      np.zeros(sk.num_joints, bool), 1.0, (1.0, 1.0), {}, np.eye(3), np.zeros(3))
    before = np.abs(kinematics.global_positions(sk.parents, start, t, s) - targets).max() / size
    q, _, stats = solve(sk.parents, adapted, size, SolveSettings(iterations=200, prior=0.0, smooth=0.0))
    after = np.abs(kinematics.global_positions(sk.parents, q, t, s) - targets).max() / size
    assert before > 0.05 and after < 2e-3, (before, after)
    assert stats.loss_end < 1e-3 * stats.loss_start


def test_identity_on_the_same_skeleton(walk_usd, tmp_path):
    """A clip retargeted onto its own skeleton comes back within 1e-4 of the character's size."""
    target = tmp_path / "target.usda"
    shutil.copy(walk_usd, target)
    r = run("retarget", walk_usd, "--to", target, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    stage = open_stage(target)
    (b,) = find_bindings(stage)
    assert b.animation_path.endswith("_retarget")
    result = read_motion(stage, b)
    src_stage = open_stage(walk_usd)
    (sb,) = find_bindings(src_stage)
    source = read_motion(src_stage, sb)
    assert np.allclose(result.times, source.times)
    ps = kinematics.global_positions(sb.skeleton.parents, source.rotations, source.translations, source.scales)
    pt = kinematics.global_positions(b.skeleton.parents, result.rotations, result.translations, result.scales)
    assert np.abs(ps - pt).max() < 1e-4 * sb.skeleton.height()
    assert all(c["confidence"] == 1.0 for c in report["mapping"]["chains"])


def test_contacts_held_on_a_real_walk(data_dir):
    clip = load_source(str(data_dir / WALK))
    stage = open_stage(data_dir / "usd" / "AnimLabSimpleMale.usd")
    b = select_binding(find_bindings(stage), None, "t", need_animation=False)
    times = np.arange(73, dtype=np.float64)  # 3 s at the target's 24 time codes per second
    res = retarget(clip.motion, clip.skeleton, b.skeleton, times=times, fps=24.0, source_up=clip.up, target_up="Y")
    q = evaluate(res)
    assert q["contact_f1"] >= 0.9
    assert q["skate_target"] <= 1.2 * q["skate_source"]
    assert abs(q["path_target"] / q["path_source"] - 1) < 0.1
    assert q["effector_error_mean"] < 0.05
    assert q["jump_target"] <= q["jump_source"] + 1e-6
    # each planted foot of the target stays put (up to the source's own slip, scaled)
    pt = kinematics.global_positions(b.skeleton.parents, res.motion.rotations, res.motion.translations,
                                     res.motion.scales)
    ps = kinematics.global_positions(clip.skeleton.parents, res.source.rotations, res.source.translations,
                                     res.source.scales)
    from anymole_usd.plugins.priors.motion_graph.footlock import intervals

    up = np.array([0.0, 1.0, 0.0])
    feet = [i for i, k in enumerate(res.holds.kinds) if k == "foot"]
    assert len(feet) == 2
    for i in feet:
        for a, z in intervals(res.holds.labels[:, i]):
            if z - a < 3:
                continue
            drift_t = pt[a:z + 1, res.holds.target[i]] - pt[a, res.holds.target[i]]
            drift_s = ps[a:z + 1, res.holds.source[i]] - ps[a, res.holds.source[i]]
            flat = lambda d: np.linalg.norm(d - (d @ up)[:, None] * up, axis=-1).max()  # noqa: E731
            assert flat(drift_t) <= res.adapted.root_scale * flat(drift_s) + 5e-3 * res.target_body.size


def test_quadruped_onto_a_fox_holds_contacts_without_larger_jumps(data_dir, tmp_path):
    """The horse's walk onto the Fox: hind legs too short for the horse's stance (the body is lowered
    so they reach), paws standing for two horse joints (their turns spread): the issue's figures."""
    clip = load_source(str(data_dir / "library/gltf/nonhumanoid/mesh2motion/horse-animations.glb"),
                       animation="Walk")
    fox = tmp_path / "fox.usda"
    import_to_usd(str(data_dir / "gltf/Fox.glb"), str(fox), ImportOptions(animation="Walk"))
    stage = open_stage(fox)
    b = select_binding(find_bindings(stage), None, "t", need_animation=False)
    fps = stage.GetTimeCodesPerSecond()
    span = clip.motion.seconds[-1] - clip.motion.seconds[0]
    times = np.arange(int(np.floor(span * fps + 1e-6)) + 1, dtype=np.float64)
    res = retarget(clip.motion, clip.skeleton, b.skeleton, times=times, fps=fps, source_up=clip.up,
                   target_up="Y", target_motion=read_motion(stage, b, file=str(fox)))
    q = evaluate(res)
    assert q["contact_f1"] >= 0.9
    assert q["skate_target"] <= 1.2 * q["skate_source"]
    assert abs(q["path_target"] / q["path_source"] - 1) < 0.1
    assert q["jump_target"] <= q["jump_source"] + 1e-6


def test_leaf_turns_spread_to_the_limit():
    from anymole_usd.plugins.retarget.leaves import limit_leaf_turns

    n = 40
    angle = np.concatenate([np.zeros(15), np.linspace(0.0, 1.2, 5), np.full(20, 1.2)])  # 0.3 rad steps
    q = np.zeros((n, 2, 4))
    q[..., 3] = 1.0
    q[:, 1] = rot.exp_map(np.stack([np.zeros(n), np.zeros(n), angle], axis=-1))
    out = limit_leaf_turns(q, np.array([1]), 0.2)
    steps = rot.angle_between(out[1:, 1], out[:-1, 1])
    assert steps.max() <= 0.2 + 1e-9
    assert np.allclose(out[:, 0], q[:, 0])  # other joints untouched
    assert rot.angle_between(out[[0, -1], 1], q[[0, -1], 1]).max() < 1e-12  # the ends stay
    assert rot.angle_between(out[:, 1], q[:, 1]).max() < 0.35  # spread, not flattened


def test_layer_over_binary_usd_and_undo_restores_bytes(walk_usd, data_dir, tmp_path):
    target = tmp_path / "male.usd"
    shutil.copyfile(data_dir / "usd" / "AnimLabSimpleMale.usd", target)
    before = _folder_bytes(tmp_path)
    r = run("retarget", walk_usd, "--to", target, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["output"] == str(tmp_path / "male.retarget.usda")
    assert report["animations"][0]["mode"] == "new" and report["frames"] == 49  # 2 s at 24/s
    stage = open_stage(target)
    (b,) = find_bindings(stage)
    assert b.animation_path == "/AnimLabSimpleMale/SkelGroup/Root_retarget"
    prov = read_provenance(stage.GetPrimAtPath(b.animation_path))
    assert prov.tool == "retarget" and prov.source_layer == "walk.usda" and "mapping" in prov.details
    assert read_motion(stage, b).num_frames == 49
    # the only change to the user's file is the sublayer entry
    assert list(stage.GetRootLayer().subLayerPaths) == ["./male.retarget.usda"]
    # a second run replaces the first, never stacks
    assert run("retarget", walk_usd, "--to", target).exit_code == 0
    assert list(open_stage(target).GetRootLayer().subLayerPaths) == ["./male.retarget.usda"]
    r = run("retarget", "--undo", "--to", target)
    assert r.exit_code == 0, r.output
    assert _folder_bytes(tmp_path) == before


def test_usdz_target_gets_a_wrapper(walk_usd, data_dir, tmp_path):
    target = tmp_path / "CesiumMan.usdz"
    shutil.copy(data_dir / "usd" / "CesiumMan.usdz", target)
    before = _folder_bytes(tmp_path)
    out = tmp_path / "cesium_walk.usda"
    r = run("retarget", walk_usd, "--to", target, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["wrapper"] and report["animations"][0]["mode"] == "wrapper"
    assert _folder_bytes(tmp_path)[target.name] == before[target.name]
    stage = open_stage(out)
    (b,) = find_bindings(stage)
    assert b.animation_path.endswith("_retarget") and read_motion(stage, b).num_frames >= 48
    assert run("retarget", "--undo", "--to", target, "-o", out).exit_code == 0
    assert _folder_bytes(tmp_path) == before


def test_in_place_and_undo(walk_usd, tmp_path):
    target = tmp_path / "walk.usda"
    shutil.copy(walk_usd, target)
    before = _folder_bytes(tmp_path)
    r = run("retarget", walk_usd, "--to", target, "--in-place", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["animations"][0]["mode"] == "inPlace"
    assert not (tmp_path / "walk.retarget.usda").exists()
    stage = open_stage(target)
    (b,) = find_bindings(stage)
    assert read_provenance(stage.GetPrimAtPath(b.animation_path)).tool == "retarget"
    assert run("retarget", "--undo", "--to", target).exit_code == 0
    assert _folder_bytes(tmp_path) == before


@pytest.mark.parametrize("args, words", [
    (["{walk}"], ["missing --to"]),
    (["{male}", "--to", "{male}"], ["no Skeleton here has a bound SkelAnimation"]),
    (["{walk}", "--to", "{walk}", "--fps", "0"], ["--fps must be a number greater than 0"]),
    (["{walk}", "--to", "{male}", "--in-place"], ["--in-place needs an animation"]),
    (["{walk}", "--to", "{walk}", "--source-prim", "/Nope"], ["no Skeleton at or under /Nope"]),
])
def test_bad_input_exits_2(walk_usd, data_dir, tmp_path, args, words):
    male = tmp_path / "male.usd"
    shutil.copyfile(data_dir / "usd" / "AnimLabSimpleMale.usd", male)
    before = _folder_bytes(tmp_path)
    r = run("retarget", *[a.format(walk=walk_usd, male=male) for a in args])
    assert r.exit_code == 2, r.output
    assert all(w in r.output for w in words), r.output
    assert _folder_bytes(tmp_path) == before
