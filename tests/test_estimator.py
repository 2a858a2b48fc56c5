"""Scene-specific joint estimator: model pieces, data selection, clip sampler, training, cache, backbones, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from anymole_usd.errors import ModelUnavailableError  # noqa: E402
from anymole_usd.plugins.estimator import dataset as ds  # noqa: E402
from anymole_usd.plugins.estimator.augment import Augmentation, augment  # noqa: E402
from anymole_usd.plugins.estimator.backbones import CnnBackbone, Dinov2Backbone, ResidualBlock  # noqa: E402
from anymole_usd.plugins.estimator.model import EstimatorNet, estimator_loss, soft_argmax  # noqa: E402

CESIUM_CONTEXT = list(range(1, 25))
CESIUM_KEYS = [36, 48]


# --- model ------------------------------------------------------------------------------------------------


def test_soft_argmax_recovers_subpixel_peak():
    h, w = 32, 40
    peaks = torch.tensor([[[12.3, 17.8], [25.55, 9.05], [20.0, 16.5]]])  # (1, 3, 2) x, y in cell units
    ys = torch.arange(h, dtype=torch.float64) + 0.5
    xs = torch.arange(w, dtype=torch.float64) + 0.5
    d2 = (xs[None, None, None, :] - peaks[..., 0, None, None].double()) ** 2 + \
        (ys[None, None, :, None] - peaks[..., 1, None, None].double()) ** 2
    logits = (-d2 / (2 * 1.5 ** 2)).float()  # a Gaussian bump: symmetric, far from the borders
    coords, probs = soft_argmax(logits)
    assert coords.shape == (1, 3, 2)
    assert torch.allclose(probs.sum((-1, -2)), torch.ones(1, 3))
    assert torch.allclose(coords, peaks, atol=1e-3)
    # A single dominant cell gives that cell's centre.
    spike = torch.full((1, 1, h, w), -50.0)
    spike[0, 0, 7, 11] = 50.0
    assert torch.allclose(soft_argmax(spike)[0], torch.tensor([[[11.5, 7.5]]]), atol=1e-4)


def test_residual_block_starts_as_identity():
    block = ResidualBlock(8)
    x = torch.randn(2, 8, 6, 6)
    assert torch.equal(block(x), x)


@pytest.mark.parametrize("joints", [2, 19, 120])
def test_shapes_and_gradients(joints):
    torch.manual_seed(0)
    net = EstimatorNet(CnnBackbone(), joints, merge_channels=32, decoder_channels=16)
    x = torch.rand(2, 3, 48, 64)
    out = net(x, (96, 128))
    assert out["joints2d"].shape == (2, joints, 2)
    assert out["depth"].shape == (2, joints)
    assert out["heatmaps"].shape == (2, joints, 12, 16)  # stride 4 of the 48x64 input
    xy = out["joints2d"]
    assert (xy[..., 0] >= 0).all() and (xy[..., 0] <= 128).all() and (xy[..., 1] <= 96).all()
    target = torch.rand(2, joints, 2) * torch.tensor([128.0, 96.0])
    loss = estimator_loss(out, target, torch.randn(2, joints), 96)
    loss.backward()
    grads = {n: p.grad for n, p in net.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    for part in ("backbone.stem", "decoder.head", "depth.mlp", "depth.embed", "merger.fuse"):
        assert any(g.abs().sum() > 0 for n, g in grads.items() if n.startswith(part)), part


def test_depth_outputs_follow_the_distance_setting():
    """Relative depth with a network (or blended) distance predicts a second, absolute depth per joint."""
    from anymole_usd.plugins.estimator.training import EstimatorSettings, depth_outputs, train_estimator

    assert depth_outputs(EstimatorSettings()) == 1  # default: relative depth, distance from rigid lengths
    assert depth_outputs(EstimatorSettings(distance="blend")) == 2
    assert depth_outputs(EstimatorSettings(depth_mode="absolute")) == 1
    torch.manual_seed(0)
    net = EstimatorNet(CnnBackbone(), 5, merge_channels=32, decoder_channels=16, depth_outputs=2)
    out = net(torch.rand(2, 3, 32, 32), (64, 64))
    assert out["depth"].shape == (2, 5) and out["depth_abs"].shape == (2, 5)
    with pytest.raises(ValueError, match="distance"):
        train_estimator(None, EstimatorSettings(distance="guess"))
    for bad in ({"framing": 1.5}, {"max_zoom": 0.5}, {"whole_fraction": 1.0}):
        with pytest.raises(ValueError, match="framing"):
            train_estimator(None, EstimatorSettings(**bad))


def test_loss_scales_depth_by_half_height_and_masks():
    out = {"joints2d": torch.zeros(1, 2, 2), "depth": torch.tensor([[0.5, 0.0]])}
    loss = estimator_loss(out, torch.zeros(1, 2, 2), torch.zeros(1, 2), image_height=100)
    assert loss.item() == pytest.approx((0.5 * 50) ** 2 / 6)
    mask = torch.tensor([[False, True]])
    assert estimator_loss(out, torch.zeros(1, 2, 2), torch.zeros(1, 2), 100, mask).item() == 0.0


# --- data -------------------------------------------------------------------------------------------------


def _algorithm1_reference(num_frames, views, length, fps_list, base_fps):
    """The official ICAdapt loader's loops, written out: view, then fps, then start."""
    out = []
    for view in views:
        for fps in fps_list:
            stride = base_fps // fps
            for start in range(num_frames - stride * (length - 1)):
                out.append((view, [start + stride * i for i in range(length)], fps))
    return out


def test_clip_sampler_matches_algorithm1():
    views = ["left", "right", "front", "back"]
    clips = ds.sample_clips(9, views, length=3, strides=(3, 2, 1), fps=30.0)
    got = [(c.view, c.frames.tolist(), c.fps) for c in clips]
    assert got == _algorithm1_reference(9, views, 3, [10, 15, 30], 30)
    assert len(got) == 4 * (3 + 5 + 7)
    # The paper's setting: 61 context frames (2 s at 30 fps), 16-frame clips -> 46 + 31 + 16 per view.
    full = ds.sample_clips(61, ["front"], fps=30.0)
    assert [sum(c.stride == s for c in full) for s in (1, 2, 3)] == [46, 31, 16]
    assert {c.stride: c.fps for c in full} == {1: 30.0, 2: 15.0, 3: 10.0}
    assert full[-1].frames.tolist() == list(range(15, 61, 3))
    assert ds.sample_clips(10, ["front"], length=16) == []  # too short for any stride


def _toy_renders(n_frames=6, views=ds.VIEWS, joints=3, size=(8, 10), keys=(4,)):
    rng = np.random.default_rng(0)
    v, f = len(views), n_frames
    times = np.arange(1, f + 1, dtype=float)
    images = np.zeros((v * f, *size, 3), np.uint8)
    images[..., 0] = np.repeat(np.arange(v), f)[:, None, None] * 10 + np.tile(np.arange(f), v)[:, None, None]
    return ds.RenderSet(images=images, joints2d=rng.uniform(0, 8, (v * f, joints, 2)),
                        depth=rng.uniform(2, 3, (v * f, joints)), visible=np.ones((v * f, joints), bool),
                        views=np.repeat(views, f), times=np.tile(times, v), is_key=np.tile(np.isin(times, keys), v),
                        weights=np.ones(v * f), focal=np.full(v * f, 100.0), fps=30.0)


def test_estimator_selection_excludes_back_and_weights_keyframes():
    r = _toy_renders()
    sel = ds.estimator_selection(r)
    assert set(sel.views) == {"front", "left", "right"}
    assert sel.num_samples == 3 * 6
    assert np.all(sel.weights[sel.is_key] == 3.0) and np.all(sel.weights[~sel.is_key] == 1.0)
    assert sel.is_key.sum() == 3


def test_icadapt_clips_use_context_frames_of_every_view():
    r = _toy_renders(n_frames=8, keys=(8,))  # 7 context frames + 1 keyframe per view
    clips = ds.icadapt_clips(r, length=3, strides=(1, 2))
    assert len(clips) == 4 * (5 + 3)
    frames, fps = clips[0]
    assert frames.shape == (3, 8, 10, 3) and fps == 30.0
    # Red channel encodes view * 10 + frame index: the first front clip is frames 0, 1, 2 of view 0.
    assert frames[:, 0, 0, 0].tolist() == [0, 1, 2]
    assert clips[5][1] == 15.0 and clips[5][0][:, 0, 0, 0].tolist() == [0, 2, 4]
    back = clips[-1][0][:, 0, 0, 0]
    assert back.tolist() == [32, 34, 36]  # view 3, frames 2, 4, 6 (the keyframe, index 7, is not in a clip)


def test_normalised_depth_round_trip():
    z = np.array([[2.0, 2.5], [3.0, 1.5]])
    d = ds.normalised_depth(z, np.array([2.0, 2.0]), np.array([100.0, 100.0]), 64)
    assert d[0, 0] == 0.0 and d[0, 1] == pytest.approx(0.5 * 100 / (2.0 * 32))
    assert np.allclose(ds.camera_depth(d, np.array([2.0, 2.0]), 100.0, 64), z, atol=1e-6)


def test_translation_moves_joint_targets_with_the_pixels():
    gen = torch.Generator().manual_seed(3)
    img = torch.zeros(4, 3, 32, 32)
    joints = torch.tensor([[[21.0, 41.0]]]).repeat(4, 1, 1)  # original 64x64 pixels: network pixel (10, 20)
    img[:, :, 20, 10] = 1.0
    aug = Augmentation(translate=0.1, brightness=0.0, contrast=0.0, saturation=0.0)
    res = augment(img, joints, (64, 64), aug, gen)  # images at half the original size
    out, moved = res.images, res.joints2d
    assert res.inside.all() and torch.equal(res.depth_scale, torch.ones(4))
    for b in range(4):
        peak = torch.nonzero(out[b, 0] == out[b, 0].max())[0]  # (row, col) at network resolution
        expected = moved[b, 0] / 2.0  # original pixels -> network pixels
        assert abs(peak[1].item() + 0.5 - expected[0].item()) <= 1.0
        assert abs(peak[0].item() + 0.5 - expected[1].item()) <= 1.0
    assert not torch.allclose(moved, joints)


# --- real renders -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cesium_renders(data_dir):
    """CesiumMan (CC-BY 4.0, Cesium) context 1-24 + keys 36, 48 and held-out 30, 42, at 64x64."""
    from anymole_usd.plugins.estimator.renders import render_motion
    from anymole_usd.plugins.render.scene import load_scene

    times = np.array(CESIUM_CONTEXT + [30, 36, 42, 48], dtype=float)
    scene = load_scene(data_dir / "usd" / "CesiumMan.usdz", times=times)
    renders, _ = render_motion(scene.character, scene.motion, views=("front", "left", "right"), size=(64, 64),
                               key_times=CESIUM_KEYS)
    held = np.isin(renders.times, [30, 42])
    return renders.subset(~held), renders.subset(held & (renders.views == "front"))


def test_render_set_from_real_renders(cesium_renders):
    train, held = cesium_renders
    assert train.num_samples == 3 * 26 and train.num_joints == 19 and train.image_size == (64, 64)
    assert train.is_key.sum() == 3 * 2
    inside = (train.joints2d >= 0).all() and (train.joints2d[..., 0] < 64).all()
    assert inside and (train.depth > 0).all() and train.visible.mean() > 0.5
    assert 10 < train.projected_height.mean() < 64 and 1.0 < train.char_height < 2.5


def test_relative_depth_and_distance_from_rigid_lengths(cesium_renders):
    """Truth 2D + truth relative depth give back the camera depth; a zoomed view reads as nearer."""
    from anymole_usd.plugins.estimator.depth import absolute_depth, back_project, centred_depth, rigid_pairs

    train, held = cesium_renders
    size = train.image_size
    pairs, lengths = rigid_pairs(back_project(train.joints2d, train.depth, train.focal, size))
    assert len(pairs) >= 10 and (lengths > 0.05).all()  # CesiumMan's bones (metres), not every pair
    r, zc = centred_depth(held.depth, held.focal, size[0])
    z, zc_fit = absolute_depth(held.joints2d, r, held.focal, size, pairs, lengths)
    assert np.abs(z - held.depth).max() < 0.01 * held.char_height
    # The same picture twice as large about the principal point is the character at half the distance.
    centre = np.array([size[1] / 2, size[0] / 2])
    _, zc_zoom = absolute_depth((held.joints2d - centre) * 2 + centre, 2 * r, held.focal, size, pairs, lengths)
    np.testing.assert_allclose(zc_zoom, zc_fit / 2, rtol=0.02)
    # Lengths 10% longer: a character 10% further away.
    _, zc_long = absolute_depth(held.joints2d, r, held.focal, size, pairs, 1.1 * lengths)
    np.testing.assert_allclose(zc_long, 1.1 * zc_fit, rtol=1e-6)


def test_rigid_length_fit_restores_lengths_and_keeps_truth(cesium_renders):
    """Truth stays truth; a wrong distance and a flattened relief get pulled back by the rigid lengths."""
    from anymole_usd.plugins.estimator.depth import back_project, fit_rigid_lengths, rigid_pairs

    train, held = cesium_renders
    size = train.image_size
    pairs, lengths = rigid_pairs(back_project(train.joints2d, train.depth, train.focal, size))
    exact = fit_rigid_lengths(held.joints2d, held.depth, held.focal, size, pairs, lengths)
    assert np.abs(exact - held.depth).max() < 0.005 * held.char_height
    mean = held.depth.mean(1, keepdims=True)
    wrong = 1.1 * (mean + 0.6 * (held.depth - mean))  # 10% too far, relief at 60%
    fitted = fit_rigid_lengths(held.joints2d, wrong, held.focal, size, pairs, lengths)
    before, after = np.abs(wrong - held.depth).mean(), np.abs(fitted - held.depth).mean()
    assert after < 0.5 * before, (before, after)
    seen = np.ones(train.num_joints, bool)
    seen[0] = False  # an unobserved joint is left alone
    keep = (pairs != 0).all(1)
    part = fit_rigid_lengths(held.joints2d, wrong, held.focal, size, pairs[keep], lengths[keep], seen)
    assert np.array_equal(part[:, 0], wrong[:, 0].astype(np.float32))
    with pytest.raises(ValueError, match="observed"):
        fit_rigid_lengths(held.joints2d, wrong, held.focal, size, pairs[~keep], lengths[~keep], seen)


def _quick_settings(**kw):
    from anymole_usd.plugins.estimator.training import EstimatorSettings

    base = dict(steps=80, batch_size=8, input_size=64, lr=3e-3, val_every=20, val_fraction=0.15,
                merge_channels=32, decoder_channels=16)
    base.update(kw)
    return EstimatorSettings(**base)


def test_training_lowers_validation_error_and_caches(cesium_renders, tmp_path):
    from anymole_usd.plugins.estimator.predict import predict, prediction_errors
    from anymole_usd.plugins.estimator.training import train_estimator

    train, held = cesium_renders
    est = train_estimator(train, _quick_settings(), cache_dir=tmp_path)
    assert not est.cached and est.path is not None
    first, best = est.history[0], min(h["val_px"] for h in est.history)
    assert first["step"] == 0  # the untrained network's validation error
    assert best < 0.5 * first["val_px"], est.history
    pred = predict(est, held.images)
    assert pred.joints2d.shape == (2, 19, 2) and pred.depth.shape == (2, 19)
    err = prediction_errors(pred, held)
    assert err["px"] < first["val_px"]
    assert len(est.rigid_pairs) >= 10 and err["depth_frac"] < 1.0  # metres, within a height (80 steps at 64x64)
    placed = predict(est, held.images, distance=held.depth.mean(1))  # a distance known from elsewhere
    np.testing.assert_allclose(placed.depth.mean(1), held.depth.mean(1), rtol=1e-4)
    np.testing.assert_allclose(placed.depth / placed.depth.mean(1, keepdims=True),
                               pred.depth / pred.depth.mean(1, keepdims=True), rtol=1e-4)  # same relief
    # Frames of one sequence: the distance is smoothed over their times, the relief kept.
    from anymole_usd.plugins.estimator.depth import smooth_distance

    timed = predict(est, held.images, times=held.times, distance_sigma=3.0)
    np.testing.assert_allclose(timed.depth.mean(1), smooth_distance(pred.depth.mean(1), held.times, 3.0), rtol=1e-4)
    np.testing.assert_allclose(timed.depth / timed.depth.mean(1, keepdims=True),
                               pred.depth / pred.depth.mean(1, keepdims=True), rtol=1e-4)
    with pytest.raises(ValueError, match="one value per image"):
        predict(est, held.images, times=held.times[:1])
    import dataclasses

    no_lengths = dataclasses.replace(est, rigid_pairs=np.zeros((0, 2), np.int64), rigid_lengths=np.zeros(0))
    np.testing.assert_allclose(predict(no_lengths, held.images).depth.mean(1),  # nothing rigid: view's mean
                               est.view_refs["front"]["depth_ref"], rtol=1e-4)
    # Second run: same renders and settings -> the cached weights, same predictions, no training.
    again = train_estimator(train, _quick_settings(), cache_dir=tmp_path)
    assert again.cached and again.key == est.key
    assert np.allclose(predict(again, held.images).joints2d, pred.joints2d, atol=1e-4)
    assert np.allclose(predict(again, held.images).depth, pred.depth, atol=1e-4)  # rigid lengths cached too
    # Any change of the renders or the settings is a different entry.
    assert train_estimator(train, _quick_settings(steps=1), cache_dir=tmp_path).key != est.key


def test_unobserved_joint_is_reported_from_the_renders(cesium_renders, tmp_path):
    """A joint marked unobserved is not learnt from pixels; prediction interpolates the training renders'
    values in time (or takes their mean), keeps it out of the distance, and the cache keeps it."""
    import dataclasses

    from anymole_usd.plugins.estimator.predict import predict
    from anymole_usd.plugins.estimator.training import load_estimator, train_estimator

    train, held = cesium_renders
    seen = np.ones(train.num_joints, bool)
    seen[3] = False
    marked = dataclasses.replace(train, observed=seen)
    est = train_estimator(marked, _quick_settings(steps=20, val_every=10), cache_dir=tmp_path)
    assert est.observed.tolist() == seen.tolist() and set(est.anchors) == {"front", "left", "right"}
    front = train.view("front")
    lo, hi = (front.times == 24).argmax(), (front.times == 36).argmax()  # held-out 30 is half-way
    pred = predict(est, held.images[:1], times=held.times[:1])
    np.testing.assert_allclose(pred.joints2d[0, 3], (front.joints2d[lo, 3] + front.joints2d[hi, 3]) / 2, atol=1e-4)
    np.testing.assert_allclose(pred.depth[0, 3], (front.depth[lo, 3] + front.depth[hi, 3]) / 2, rtol=1e-5)
    assert pred.observed.tolist() == seen.tolist()
    mean = predict(est, held.images[:1])  # no times: the mean over the training renders
    np.testing.assert_allclose(mean.joints2d[0, 3], front.joints2d[:, 3].mean(0), atol=1e-3)
    placed = predict(est, held.images[:1], times=held.times[:1], distance=np.array([4.0]))
    assert placed.depth[0].mean() == pytest.approx(4.0, rel=1e-5)
    assert placed.depth[0, 3] == pytest.approx(pred.depth[0, 3], rel=1e-6)  # the anchor does not move
    again = load_estimator(est.path)
    assert again.observed.tolist() == seen.tolist() and again.anchors == est.anchors


def test_mirror_partners_pair_by_name_and_by_structure(data_dir):
    """Left/right counterparts: by swapped side words (Bandai, Mixamo), by position under the parent where
    names do not pair (CesiumMan's arm_joint_L__4_ / arm_joint_R), None for a one-sided body."""
    from anymole_usd.plugins.render.parts import mirror_partners
    from anymole_usd.plugins.render.scene import load_scene

    def pairs(names, parents):
        partner = mirror_partners(names, np.asarray(parents))
        return None if partner is None else {names[a]: names[b] for a, b in enumerate(partner) if a != b}

    mixamo = ["mixamorig:Hips", "mixamorig:LeftUpLeg", "mixamorig:LeftLeg", "mixamorig:RightUpLeg",
              "mixamorig:RightLeg", "mixamorig:LeftHand", "Index1", "Thumb1", "mixamorig:RightHand", "Index1", "Thumb1"]
    got = pairs(mixamo, [-1, 0, 1, 0, 3, 0, 5, 5, 0, 8, 8])
    assert got["mixamorig:LeftLeg"] == "mixamorig:RightLeg" and got["mixamorig:RightUpLeg"] == "mixamorig:LeftUpLeg"
    partner = mirror_partners(mixamo, np.array([-1, 0, 1, 0, 3, 0, 5, 5, 0, 8, 8]))
    assert partner[6] == 9 and partner[7] == 10 and partner[0] == 0  # fingers named alike, by position
    assert pairs(["Hips", "LeftArm", "RightArm", "LeftLeg"], [-1, 0, 0, 0]) is None
    assert pairs(["Hips", "LeftArm", "LeftHand", "RightArm"], [-1, 0, 1, 0]) is None  # chains differ
    assert pairs(["Root", "Spine"], [-1, 0]) == {}
    skel = load_scene(data_dir / "usd" / "CesiumMan.usdz", times=np.array([0.0])).character.skeleton
    got = pairs(skel.short_names, skel.parents)
    assert got["Skeleton_arm_joint_L__4_"] == "Skeleton_arm_joint_R" and got["leg_joint_R_5"] == "leg_joint_L_5"
    assert len(got) == 14


def test_mirrored_renders_of_a_symmetric_pose_are_the_pose(data_dir):
    """CesiumMan's bind pose is symmetric: its mirror image renders as itself (silhouette, colours, joints),
    and a walking pose's mirror has the other foot ahead."""
    from anymole_usd import kinematics
    from anymole_usd.motion import Motion
    from anymole_usd.plugins.estimator.mirror import render_mirrored
    from anymole_usd.plugins.estimator.renders import render_motion
    from anymole_usd.plugins.render.scene import load_scene

    scene = load_scene(data_dir / "usd" / "CesiumMan.usdz", times=np.array([10.0]))
    ch = scene.character
    parents = ch.skeleton.parents
    bind = ch.bind_transforms
    parent_bind = np.where(parents[:, None, None] >= 0, bind[np.maximum(parents, 0)], np.eye(4))
    r, t, sc = kinematics.decompose_matrices(bind @ np.linalg.inv(parent_bind))
    rest = Motion(np.array([0.0]), r[None], t[None], sc[None],
                  fps=24.0, joints=list(ch.skeleton.joints))
    plain, cams = render_motion(ch, rest, size=(96, 96), views=("front", "left"))
    mirrored = render_mirrored(ch, rest, cams, views=("front", "left"))
    assert mirrored.num_samples == 2 and list(mirrored.views) == ["front", "left"]
    np.testing.assert_allclose(mirrored.joints2d, plain.joints2d, atol=1.0)
    np.testing.assert_allclose(mirrored.depth, plain.depth, atol=0.02 * plain.char_height)
    diff = np.abs(mirrored.images.astype(int) - plain.images.astype(int)).max(-1)
    # same silhouette, colours and shading but for outlines (the mesh is symmetric to within a pixel);
    # with the limbs' colours left unswapped 5.6% of the pixels differ
    assert (diff > 40).mean() < 0.03, (diff > 40).mean()
    walking, cams = render_motion(ch, scene.motion, size=(96, 96), views=("front",))
    mirror = render_mirrored(ch, scene.motion, cams, views=("front",))
    names = ch.skeleton.short_names
    left, right = names.index("leg_joint_L_5"), names.index("leg_joint_R_5")
    assert abs(walking.depth[0, left] - walking.depth[0, right]) > 0.1  # mid-stride: one foot ahead
    assert np.sign(mirror.depth[0, left] - mirror.depth[0, right]) != np.sign(
        walking.depth[0, left] - walking.depth[0, right])


def test_extra_renders_are_trained_on_but_never_validated(cesium_renders, tmp_path):
    """Mixed-pose renders join training only: the validation frames, the depth unit and the anchors are
    the real renders', and they make another cache entry."""
    import dataclasses

    from anymole_usd.plugins.estimator import training

    train, _ = cesium_renders
    extra = dataclasses.replace(train.subset(~train.is_key), times=train.times[~train.is_key] + 1000.0)
    seen = []
    real_split = training._split

    def split(data, fraction, rng):
        seen.append(data.num_samples)
        return real_split(data, fraction, rng)

    settings = _quick_settings(steps=2, val_every=1)
    plain = training.train_estimator(train, settings, cache_dir=tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "_split", split)
        est = training.train_estimator(train, settings, cache_dir=tmp_path, extra=extra)
    assert seen == [train.num_samples] and est.key != plain.key and not est.cached
    assert est.view_refs == plain.view_refs
    assert np.array_equal(est.rigid_pairs, plain.rigid_pairs)


# --- backbones --------------------------------------------------------------------------------------------


def _tiny_dinov2(folder):
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    torch.manual_seed(0)
    cfg = Dinov2WithRegistersConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=64, patch_size=8, image_size=64, num_register_tokens=2)
    Dinov2WithRegistersModel(cfg).save_pretrained(folder, safe_serialization=True)
    return folder


def test_dinov2_backbone_from_a_local_folder(tmp_path, cesium_renders):
    pytest.importorskip("transformers")
    from anymole_usd.plugins.estimator.backbones import build_backbone
    from anymole_usd.plugins.estimator.training import load_estimator, train_estimator

    folder = _tiny_dinov2(tmp_path / "dino")
    bb = build_backbone("dinov2", str(folder))
    assert isinstance(bb, Dinov2Backbone) and not bb.trainable and bb.strides == [8]
    feats = bb(torch.rand(2, 3, 64, 48))
    assert [f.shape for f in feats] == [(2, 32, 8, 6)]
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    train, _ = cesium_renders
    est = train_estimator(train, _quick_settings(backbone="dinov2", backbone_model=str(folder), steps=3,
                                                 val_every=3), cache_dir=tmp_path / "cache")
    after = est.net.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # frozen
    saved = torch.load(f"{est.path}/weights.pt", weights_only=True)
    assert not any(k.startswith("backbone.") for k in saved)  # the pretrained weights are not copied
    again = load_estimator(est.path)
    x = torch.rand(1, 3, 64, 64)
    assert torch.allclose(again.net(x, (64, 64))["joints2d"], est.net(x, (64, 64))["joints2d"], atol=1e-5)


def test_missing_dinov2_weights_give_a_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ANYMOLE_USD_BACKBONE_MODEL", raising=False)
    with pytest.raises(ModelUnavailableError) as exc:
        Dinov2Backbone.create(str(tmp_path / "nowhere"))
    msg = str(exc.value)
    assert "nowhere" in msg and "--backbone-model" in msg and "ANYMOLE_USD_BACKBONE_MODEL" in msg
    assert "\n" not in msg
    with pytest.raises(ModelUnavailableError, match="facebook/dinov2-with-registers-base"):
        Dinov2Backbone.create(None)  # the default hub id, offline and not in the local cache
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelUnavailableError, match="empty"):
        Dinov2Backbone.create(str(empty))


# --- CLI --------------------------------------------------------------------------------------------------


def test_cli_train_then_predict_on_a_frame_folder(tmp_path, data_dir, cesium_renders):
    import imageio.v3 as iio
    from click.testing import CliRunner

    from anymole_usd.cli.main import cli

    import shots

    shot = shots.shot_root(tmp_path, data_dir)
    common = ["--size", "64x64", "--steps", "3", "--input-size", "64", "--cache-dir", str(tmp_path / "cache")]
    runner = CliRunner()
    res = runner.invoke(cli, ["estimator", "train", str(shot), *common, "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["joints"] == 19 and not report["cached"] and report["training_images"] == 3 * 26
    assert report["mirrored_images"] == 0
    res = runner.invoke(cli, ["estimator", "train", str(shot), *common, "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["cached"]
    res = runner.invoke(cli, ["estimator", "train", str(shot), *common, "--mirror", "--json"])
    mirrored = json.loads(res.output)
    assert mirrored["mirrored_images"] == 3 * 26  # CesiumMan's limbs pair up: every known pose mirrored
    assert mirrored["key"] != report["key"] and not mirrored["cached"]

    frames = tmp_path / "frames"
    frames.mkdir()
    _, held = cesium_renders
    for t, img in zip(held.times, held.images):
        iio.imwrite(frames / f"{int(t):04d}.png", img)
    out = tmp_path / "pred.npz"
    res = runner.invoke(cli, ["estimator", "predict", str(shot), "--frames", str(frames), "-o", str(out), *common])
    assert res.exit_code == 0, res.output
    with np.load(out) as d:
        assert d["times"].tolist() == [30.0, 42.0] and d["joints2d"].shape == (2, 19, 2)
        assert d["observed"].all()  # CesiumMan's mesh follows every joint

    iio.imwrite(frames / "0031.png", np.zeros((32, 32, 3), np.uint8))  # wrong size
    res = runner.invoke(cli, ["estimator", "predict", str(shot), "--frames", str(frames), *common])
    assert res.exit_code == 2 and "0031.png" in res.output and "64x64" in res.output

    res = runner.invoke(cli, ["estimator", "train", str(shot), *common, "--backbone", "dinov2",
                              "--backbone-model", str(tmp_path / "no-such-model")])
    assert res.exit_code == 2 and "no-such-model" in res.output and "--backbone-model" in res.output


def test_frame_folder_errors_name_the_file(tmp_path):
    import imageio.v3 as iio

    from anymole_usd.errors import InputError
    from anymole_usd.plugins.estimator.frames import read_frame_folder

    iio.imwrite(tmp_path / "0002.png", np.zeros((8, 8, 3), np.uint8))
    iio.imwrite(tmp_path / "1.5.png", np.full((8, 8, 3), 9, np.uint8))
    times, images = read_frame_folder(tmp_path)
    assert times.tolist() == [1.5, 2.0] and images[0, 0, 0, 0] == 9
    (tmp_path / "0003.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="0003.png.*unreadable"):
        read_frame_folder(tmp_path)
    (tmp_path / "0003.png").unlink()
    iio.imwrite(tmp_path / "frame_0004.png", np.zeros((8, 8, 3), np.uint8))  # an index, not a time
    with pytest.raises(InputError, match="frame_0004.png.*named by index"):
        read_frame_folder(tmp_path)
    (tmp_path / "frame_0004.png").unlink()
    iio.imwrite(tmp_path / "cover.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="cover.png.*time code"):
        read_frame_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        read_frame_folder(tmp_path / "empty")


def test_stage_plugin_takes_json_parameters():
    from anymole_usd import registry
    from anymole_usd.errors import InputError

    stage_cls = registry.load("stages", "estimator")
    stage = stage_cls(steps=5, views=["front"], augmentation={"translate": 0.05})
    assert stage.settings.steps == 5 and stage.settings.views == ("front",)
    assert stage.settings.augmentation.translate == 0.05 and stage.settings.augmentation.brightness == 0.3
    with pytest.raises(InputError, match="unknown parameter"):
        stage_cls(stepz=5)
    with pytest.raises(InputError, match="steps"):
        stage_cls(steps=0)
    assert stage_cls(views="front, left").settings.views == ("front", "left")
    with pytest.raises(InputError, match="unknown view 'frnt'"):
        stage_cls(views="front,frnt")
    with pytest.raises(InputError, match="twice"):
        stage_cls(views=["left", "left"])
    # the declaration lists every setting with the same default
    from anymole_usd.plugins.estimator.training import EstimatorSettings

    defaults = EstimatorSettings().to_dict()
    spec = stage_cls.param_spec.defaults()
    assert set(spec) - {"cache_dir", "device"} == set(defaults)
    assert all(spec[k] == defaults[k] or k in ("views", "augmentation") for k in defaults)
    assert tuple(spec["views"]) == tuple(defaults["views"])
    assert set(registry.names("backbones")) >= {"cnn", "dinov2"}


def test_smooth_distance_keeps_trends_and_removes_noise():
    from anymole_usd.plugins.estimator.depth import smooth_distance

    t = np.r_[np.arange(61.0, 90.0), np.arange(91.0, 120.0)]  # two gaps, as the benchmark's test frames
    trend = 6.0 - 0.04 * t  # walking towards the camera
    np.testing.assert_allclose(smooth_distance(trend, t, 3.0), trend, atol=1e-9)  # a line is kept, ends too
    noise = np.random.default_rng(0).normal(0.0, 0.05, len(t))
    smoothed = smooth_distance(trend + noise, t, 3.0)
    assert np.abs(smoothed - trend).mean() < 0.6 * np.abs(noise).mean()
    np.testing.assert_array_equal(smooth_distance(trend + noise, t, 0.0), trend + noise)  # sigma 0: off
    lone = smooth_distance(np.array([5.0, 5.0, 9.0]), np.array([0.0, 1.0, 500.0]), 3.0)
    assert lone[2] == pytest.approx(9.0)  # a frame far from the others keeps its own distance
