"""Issue 13 item 7: the default prior on generated times off the integer time-code grid.

`--fps 25/30/48` on the CesiumMan example shot, a key at 36.25, half-integer
time codes, a context sampled every half time code, and the SoC elephant's
near-integer float times (1.0000000521...) must all fill, land on the requested
times, meet the keys and stay finite.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from anymole_usd import registry
from anymole_usd.cli.main import cli
from anymole_usd.prior import InbetweenRequest
from anymole_usd.reading import authored_times, find_bindings, open_stage, read_motion
from anymole_usd.timeline import build_timeline

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "cesiumman"
ELEPHANT_ANIM = "/SoC_ElephantWithMonochord/Object/Elefant/_anim"
ELEPHANT_SKEL = "/SoC_ElephantWithMonochord/Object/Elefant/_skel"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def example_copy(tmp_path: Path, retime=None) -> Path:
    d = tmp_path / "d"
    shutil.copytree(EXAMPLE, d)
    shot = d / "shot.usda"
    if retime:  # rewrite every time-sample key "  T: [...]" of the hand-written example
        text = re.sub(r"^(\s*)(\d+(?:\.\d+)?): ", lambda m: f"{m.group(1)}{retime(float(m.group(2))):g}: ",
                      shot.read_text(), flags=re.M)
        shot.write_text(text)
    return shot


def result_motion(shot: Path, skeleton: str | None = None):
    """The animation a skeleton of the shot plays now (the composed result after `inbetween`)."""
    stage = open_stage(str(shot))
    b = next(b for b in find_bindings(stage, str(shot)) if b.animation_path and (skeleton is None or
                                                                                 b.skeleton_path == skeleton))
    times = authored_times(stage.GetPrimAtPath(b.animation_path))
    return read_motion(stage, b, times=times, file=str(shot))


def source_motion(shot: Path):
    return result_motion(shot)


@pytest.mark.parametrize("fps", [25, 30, 48])
def test_output_fps_off_the_grid(tmp_path, fps):
    shot = example_copy(tmp_path)
    before = source_motion(shot)
    r = run("inbetween", shot, "--fps", fps)
    assert r.exit_code == 0, r.output
    out = result_motion(shot)
    step = 24.0 / fps
    expected = np.concatenate([24 + step * np.arange(1, int(np.floor(12 / step - 1e-3)) + 1),
                               36 + step * np.arange(1, int(np.floor(12 / step - 1e-3)) + 1)])
    expected = expected[(expected < 36 - 1e-3) | (expected > 36 + 1e-3)]
    generated = np.setdiff1d(np.round(out.times, 4), np.round(before.times, 4))
    np.testing.assert_allclose(np.sort(generated), np.sort(np.round(expected, 4)), atol=1e-3)
    assert np.isfinite(out.rotations).all() and np.isfinite(out.translations).all()
    keys = out.at_times(np.array([24.0, 36.0, 48.0]))
    ref = before.at_times(np.array([24.0, 36.0, 48.0]))
    np.testing.assert_allclose(keys.translations, ref.translations, atol=1e-5)


def test_a_key_at_a_fractional_time(tmp_path):
    shot = example_copy(tmp_path, retime=lambda t: 36.25 if t == 36 else t)
    r = run("inbetween", shot)
    assert r.exit_code == 0, r.output
    out = result_motion(shot)
    assert np.any(np.abs(out.times - 36.25) < 1e-6)
    gen = out.times[(out.times > 24.5) & (out.times < 48)]
    np.testing.assert_allclose(gen[gen < 36.25], np.arange(25, 37))  # one per time code from each gap's start
    np.testing.assert_allclose(gen[gen > 36.25], np.arange(37.25, 48, 1.0))
    assert np.isfinite(out.rotations).all()


def test_half_integer_time_codes(tmp_path):
    shot = example_copy(tmp_path, retime=lambda t: t + 0.5)
    r = run("inbetween", shot, "--json")
    assert r.exit_code == 0, r.output
    out = result_motion(shot)
    np.testing.assert_allclose(out.times, np.arange(1.5, 49.0, 1.0))
    assert np.isfinite(out.rotations).all()


def test_a_context_sampled_every_half_time_code_fills_like_the_same_motion_on_whole_time_codes(data_dir):
    """Graph steps follow the context's own sampling: halving every time code (and the rate) gives the
    same in-between at the same seconds, from a real motion graph (no fallback)."""
    from anymole_usd.protocols import load_clips

    clip = load_clips([data_dir / "bvh/humanoid/bandai_namco/dataset-1_walk_normal_001.bvh"])[0]
    idx = np.concatenate([np.arange(0, 61), [90, 120]])
    known = clip.motion.select(idx)

    def request(scale: float) -> InbetweenRequest:
        k = replace(known, times=known.times * scale, fps=known.fps * scale)
        tl = build_timeline(k.times, context=(0.0, 60 * scale), keys=[90 * scale, 120 * scale], step=scale)
        return InbetweenRequest(clip.skeleton, k, tl, up_axis=clip.up_axis)

    prior = registry.load("priors", "graph")
    whole = prior()
    a = whole.fill(request(1.0))
    half = prior()
    b = half.fill(request(0.5))
    assert not whole.fallbacks and not half.fallbacks  # a graph, not interpolation, in both
    np.testing.assert_allclose(b.times, a.times * 0.5)
    np.testing.assert_allclose(b.rotations, a.rotations, atol=1e-6)
    np.testing.assert_allclose(b.translations, a.translations, atol=1e-6)


def test_soc_elephant_near_integer_times(tmp_path, data_dir):
    src = data_dir / "usd" / "SoC-ElephantWithMonochord.usdc"
    shot = tmp_path / src.name
    shutil.copy(src, shot)
    r = run("inbetween", shot, "--prim", ELEPHANT_ANIM, "--context", "1:600", "--keys", "660,720", "--json")
    assert r.exit_code == 0, r.output
    out = result_motion(shot, ELEPHANT_SKEL)
    inside = out.times[(out.times > 600.5) & (out.times < 719.5)]
    assert len(inside) == 119  # 59 + 59 generated and the key at 660
    assert np.allclose(inside, np.round(inside), atol=1e-3)
    assert np.isfinite(out.rotations).all() and np.isfinite(out.translations).all()
    key = out.at_times(np.array([660.0]))
    stage = open_stage(str(src))
    b = next(b for b in find_bindings(stage, str(src)) if b.animation_path == ELEPHANT_ANIM)
    orig = read_motion(stage, b, times=np.array([660.0]), file=str(src))
    np.testing.assert_allclose(key.rotations, orig.rotations, atol=1e-5)
