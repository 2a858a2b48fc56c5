"""`eval` in metres and honest about what it scores (issue 14 "Benchmark units", issue 19 items 3 and 6).

- a reference in other units (metersPerUnit) is converted, one of another size refused (exit 2);
- benchmark clips carry their length unit (BVH guessed as `import` does), so `l2p` is in metres;
- `eval RESULT` on a shot with no in-between result is exit 2, not "N generated frames" or zeros;
- `eval --benchmark` shows clips and windows as it runs and summarises the priors' fallbacks.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from pxr import Usd, UsdGeom, UsdSkel, Vt

from anymole_usd.cli.main import cli
from anymole_usd.evaluation import evaluate_result
from anymole_usd.metric import load_metrics

import shots

BANDAI = Path("bvh/humanoid/bandai_namco")
METRICS = ["l2p", "l2p-norm", "l2q"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def filled(tmp_path_factory, data_dir):
    """The CesiumMan test shot (context 1-24, keys 36, 48) filled by interp, and its full truth (1..48)."""
    from anymole_usd.pipeline import InbetweenOptions, run_inbetween

    tmp = tmp_path_factory.mktemp("units")
    shot = shots.shot_root(tmp, data_dir)
    run_inbetween(str(shot), InbetweenOptions(prior="interp"))
    truth_dir = tmp / "truth"
    truth_dir.mkdir()
    truth = shots.shot_root(truth_dir, data_dir, times=list(range(1, 49)))
    return shot, truth


def rescaled(truth: Path, folder: Path, factor: float, meters_per_unit: float) -> Path:
    """A copy of ``truth`` with every length multiplied by ``factor`` and the given metersPerUnit."""
    folder.mkdir()
    out = folder / truth.name
    shutil.copy(truth, out)
    stage = Usd.Stage.Open(str(out))
    UsdGeom.SetStageMetersPerUnit(stage, meters_per_unit)
    anim = UsdSkel.Animation(stage.GetPrimAtPath("/Char/Rig/Anim"))
    attr = anim.GetTranslationsAttr()
    for t in attr.GetTimeSamples():
        attr.Set(Vt.Vec3fArray.FromNumpy((np.asarray(attr.Get(t)) * factor).astype(np.float32)), t)
    skel = UsdSkel.Skeleton(stage.GetPrimAtPath("/Char/Rig/Skel"))
    for a in (skel.GetRestTransformsAttr(), skel.GetBindTransformsAttr()):
        mats = np.array(a.Get())
        mats[:, 3, :3] *= factor
        a.Set(Vt.Matrix4dArray.FromNumpy(mats))
    stage.GetRootLayer().Save()
    return out


def test_a_reference_in_centimetres_is_converted(filled, tmp_path):
    shot, truth = filled
    metrics = load_metrics(METRICS)
    (same,) = evaluate_result(str(shot), str(truth), metrics=metrics)
    cm = rescaled(truth, tmp_path / "cm", 100.0, 0.01)
    (conv,) = evaluate_result(str(shot), str(cm), metrics=metrics)
    assert conv.reference_scale == pytest.approx(0.01) and same.reference_scale == 1.0
    assert same.values["l2p"] > 0.01  # a real error, in metres
    for name in METRICS:
        assert conv.values[name] == pytest.approx(same.values[name], rel=1e-4), name
    r = run("eval", shot, "--reference", cm)
    assert r.exit_code == 0, r.output
    assert "x0.01" in r.output and "l2p" in r.output and " m" in r.output


def test_a_reference_of_another_size_is_refused(filled, tmp_path):
    shot, truth = filled
    wrong = rescaled(truth, tmp_path / "wrong", 100.0, 1.0)  # centimetres written as metres
    r = run("eval", shot, "--reference", wrong)
    assert r.exit_code == 2, r.output
    assert "metersPerUnit" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_eval_without_a_composed_result_is_exit_2(tmp_path, data_dir, filled):
    _, truth = filled
    plain = shots.shot_root(tmp_path, data_dir)  # never in-betweened
    for args in ([plain, "--reference", truth], [truth, "--reference", truth]):
        r = run("eval", *args)
        assert r.exit_code == 2, r.output
        assert "no in-between result is composed" in r.output
        assert "generated frames in" not in r.output and len(r.output.strip().splitlines()) == 1


def test_benchmark_clips_carry_their_unit(data_dir):
    from anymole_usd.protocols import load_clips

    bandai, cmu, crab = load_clips([data_dir / BANDAI / "dataset-2_run_normal_021.bvh",
                                    data_dir / "bvh/humanoid/cmu/01_01.bvh",
                                    data_dir / "bvh/nonhumanoid/truebones/Crabnew_Crab-dance-long.bvh"])
    assert bandai.meters_per_unit == 0.01  # centimetres
    assert cmu.meters_per_unit == pytest.approx(0.0254 / 0.45)  # CMU's unit
    assert crab.meters_per_unit == 1.0
    for clip in (bandai, cmu):  # humans come out human-sized in metres
        assert 1.0 < clip.size * clip.meters_per_unit < 2.0, clip.name


def test_benchmark_l2p_is_in_metres(data_dir):
    files = [data_dir / BANDAI / "dataset-2_run_normal_021.bvh", data_dir / "bvh/humanoid/cmu/01_01.bvh"]
    r = CliRunner().invoke(cli, ["eval", "--benchmark", str(files[0]), "--benchmark", str(files[1]), "--priors", "interp",
                                 "--metrics", "l2p,l2p-norm", "--json"])
    assert r.exit_code == 0, r.output
    rows = {s["clip"]: s for s in json.loads(r.stdout)["scores"] if s["prior"] == "interp"}
    for clip, row in rows.items():
        # a humanoid's in-between error in metres is a fraction of its ~1.5 m size, whatever the file unit
        assert 0.05 < row["l2p"] < 1.5, (clip, row)
        assert row["l2p"] == pytest.approx(row["l2p-norm"] * 1.3, rel=0.35), (clip, row)


def test_benchmark_shows_progress_and_summarises_fallbacks(data_dir):
    clip = data_dir / BANDAI / "dataset-1_walk_normal_001.bvh"
    args = ["eval", "--benchmark", str(clip), "--protocol", "lafan1", "--priors", "interp,graph",
            "--metrics", "l2p-norm"]
    quiet = CliRunner().invoke(cli, args)
    assert quiet.exit_code == 0, quiet.output
    err = quiet.stderr
    assert "loading clips" in err and "clip 1/1 dataset-1_walk_normal_001" in err and "lafan1-30" in err
    assert "falls back to interp" not in err  # no warning per gap ...
    (summary,) = [ln for ln in err.splitlines() if "filled by interpolation" in ln]  # ... one line instead
    count = int(summary.split("graph: ")[1].split(" gap")[0])
    assert count > 4 and "dataset-1_walk_normal_001" in summary and "-v" in summary
    loud = CliRunner().invoke(cli, ["-v", *args])
    assert loud.exit_code == 0
    assert loud.stderr.count("falls back to interp") == count


def test_reference_that_composes_the_result_is_refused(tmp_path, data_dir):
    """Frames held out of a dense shot, then the same shot given as the truth: it now composes the result,
    so every error would read 0. Exit 2 saying why; the real truth still scores."""
    clip = data_dir / BANDAI / "dataset-1_walk_normal_001.bvh"
    runner = CliRunner()
    shot, truth = tmp_path / "walk.usda", tmp_path / "truth.usda"
    for out in (shot, truth):
        assert runner.invoke(cli, ["import", str(clip), "-o", str(out)]).exit_code == 0
    r = runner.invoke(cli, ["inbetween", str(shot), "--prior", "interp", "--context", "0:59", "--keys", "90"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["eval", str(shot), "--reference", str(shot)])
    assert r.exit_code == 2 and "composes an in-between result" in r.stderr and "generated" in r.stderr
    r = runner.invoke(cli, ["eval", str(shot), "--reference", str(truth), "--json"])
    assert r.exit_code == 0, r.output
