"""The full AnyMoLe pipeline on a real shot with a tiny random-weight video model, on the CPU.

render -> ICAdapt -> two-stage generation -> estimator -> mimicking -> result layer. The
frames are meaningless (random weights); what is checked is that every stage runs with
the real loading code and classes, and that the result composes like any other prior's.
"""
import json

import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
torch.set_num_threads(1)

from anymole_usd.cli.main import cli  # noqa: E402
from anymole_usd.reading import find_bindings, open_stage, read_motion  # noqa: E402
from anymole_usd.schema import read_provenance  # noqa: E402

from shots import CONTEXT, KEYS, shot_root  # noqa: E402

FAST = ["--param", "icadapt_steps=2", "--param", "steps=2", "--param", "estimator_steps=10",
        "--param", "size=64x64", "--param", "lambda_img=0", "--param", "iterations=5"]


def test_full_pipeline_with_tiny_model(tmp_path, data_dir):
    from anymole_usd.plugins.video.tiny_models import save_tiny_model

    model = save_tiny_model(tmp_path / "tiny-svd")
    shot = shot_root(tmp_path, data_dir)
    env = {"ANYMOLE_USD_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    keep = tmp_path / "artifacts"
    r = CliRunner().invoke(cli, ["inbetween", str(shot), "--video-model", str(model), "--json",
                                 "--keep-artifacts", str(keep), *FAST],
                           catch_exceptions=False, env=env)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output[r.output.index("{"):])
    (a,) = rep["animations"]
    assert a["prior"] == "video" and a["frames_to_fill"] == 22
    assert len(list((keep / "renders").glob("*.png"))) == 26  # 24 context + 2 keys, front view
    assert len(list((keep / "video").glob("*.png"))) == len(list((keep / "predictions").glob("*.png"))) > 0
    assert (keep / "estimator_predictions.npz").exists()
    stage = open_stage(shot)
    (b,) = find_bindings(stage)
    m = read_motion(stage, b)
    assert m.num_frames == 48 and np.isfinite(m.rotations).all()
    assert read_provenance(stage.GetPrimAtPath(b.animation_path)).prior == "video"
    (tmp_path / "original").mkdir()
    t_stage = open_stage(shot_root(tmp_path / "original", data_dir))
    (tb,) = find_bindings(t_stage)
    np.testing.assert_array_equal(m.at_times(CONTEXT + KEYS).rotations, read_motion(t_stage, tb).rotations)


def test_missing_video_model_is_a_clear_error(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    r = CliRunner().invoke(cli, ["inbetween", str(shot), "--video-model", str(tmp_path / "no-such-model"), *FAST],
                           env={"HF_HUB_OFFLINE": "1"})
    assert r.exit_code == 2, r.output
    (line,) = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert "no-such-model" in line
    assert not (tmp_path / "shot.inbetween.usda").exists()
