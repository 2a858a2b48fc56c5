"""The built-in `interp` and `zero-velocity` priors on the real CesiumMan walk."""
import numpy as np
import pytest

from anymole_usd import registry
from anymole_usd import rotations as rot
from anymole_usd.kinematics import global_positions
from anymole_usd.prior import InbetweenRequest
from anymole_usd.reading import find_bindings, open_stage, read_motion
from anymole_usd.timeline import build_timeline


@pytest.fixture(scope="module")
def walk(data_dir):
    stage = open_stage(data_dir / "usd" / "CesiumMan.usdz")
    (b,) = find_bindings(stage)
    return b.skeleton, read_motion(stage, b)


def _request(skeleton, truth, context=(1, 24), keys=(36, 48)):
    tl = build_timeline(truth.times, context=context, keys=list(keys))
    return InbetweenRequest(skeleton=skeleton, known=truth.at_times(tl.known_times), timeline=tl), tl


def test_interp_is_slerp_and_velocity_matching_cubic(walk):
    skeleton, truth = walk
    req, tl = _request(skeleton, truth)
    out = registry.load("priors", "interp")().fill(req)
    assert np.allclose(out.times, tl.generated_times)
    # Rotations: halfway through the 36..48 gap equals the slerp midpoint of the keys.
    k36, k48 = truth.at_times([36, 48]).rotations
    mid = out.at_times([42]).rotations[0]
    assert np.max(rot.angle_between(mid, rot.slerp(k36, k48, 0.5))) < 1e-6


def test_interp_root_cubic_reproduces_constant_velocity_and_matches_end_tangents(walk):
    skeleton, truth = walk
    m = truth.at_times(np.r_[1:11, 21, 22]).copy()  # context 1..10, keys 21 and 22
    root = skeleton.roots[0]
    m.translations[:, root] = np.c_[0.1 * m.times, np.zeros(len(m.times)), np.zeros(len(m.times))]
    tl = build_timeline(m.times)
    out = registry.load("priors", "interp")().fill(
        InbetweenRequest(skeleton=skeleton, known=m, timeline=tl))
    np.testing.assert_allclose(out.translations[:, root, 0], 0.1 * out.times, atol=1e-12)
    # A curved case: the end tangent equals the dense outer velocity (t=21 -> 22).
    m.translations[-1, root, 0] = 3.0
    out = registry.load("priors", "interp")().fill(InbetweenRequest(skeleton=skeleton, known=m, timeline=tl))
    x = np.r_[m.translations[:10, root, 0], out.translations[:, root, 0], m.translations[10:, root, 0]]
    t = np.r_[m.times[:10], out.times, m.times[10:]]
    d = np.gradient(x, t)
    assert abs(d[9] - 0.1) < 0.05  # leaves the context at its speed (one-sided smoothing)


def test_zero_velocity_holds_last_known_pose(walk):
    skeleton, truth = walk
    req, tl = _request(skeleton, truth)
    out = registry.load("priors", "zero-velocity")().fill(req)
    np.testing.assert_array_equal(out.at_times([25, 30, 35]).rotations, truth.at_times([24, 24, 24]).rotations)
    np.testing.assert_array_equal(out.at_times([40]).translations, truth.at_times([36]).translations)


def test_zero_velocity_is_worse_than_interp(walk):
    skeleton, truth = walk
    req, tl = _request(skeleton, truth)
    gt = truth.at_times(tl.generated_times)
    errs = {}
    for name in ("zero-velocity", "interp"):
        out = registry.load("priors", name)().fill(req)
        p = global_positions(skeleton.parents, out.rotations, out.translations, out.scales)
        q = global_positions(skeleton.parents, gt.rotations, gt.translations, gt.scales)
        errs[name] = np.linalg.norm(p - q, axis=-1).mean()
    assert errs["interp"] < 0.5 * errs["zero-velocity"], errs
