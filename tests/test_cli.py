"""The CLI through click's CliRunner: info, inbetween, undo, plugins, and every bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from pxr import Sdf, Usd, Vt

from anymole_usd.cli.main import cli

from shots import shot_root


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


def _snapshot(folder):
    return {p: open(os.path.join(folder, p), "rb").read() for p in sorted(os.listdir(folder))}


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from anymole_usd.cli.main import main; sys.argv=['anymole-usd','--help'];\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "bad=[m for m in ('torch','warp','diffusers','transformers','pxr.Usd') if m in sys.modules]\n"
            "print('HEAVY', bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_info_json_matches_detection(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    r = run("info", shot, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    (s,) = info["skeletons"]
    assert s["joints"] == 19 and s["animation"] == "/Char/Rig/Anim"
    assert s["context"] == [1.0, 24.0] and s["keys"] == [36.0, 48.0]
    assert s["frames_to_fill"] == 22 and s["fps"] == 24
    assert s["authored_range"] == [1.0, 48.0]


def test_info_every_real_file(usd_files):
    for path in usd_files:
        r = run("info", path, "--json")
        info = json.loads(r.output) if r.exit_code == 0 else None
        assert info is not None, (path.name, r.output)
        assert info["skeletons"], path.name


def test_info_text_shows_provenance_after_inbetween(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    r = run("inbetween", shot, "--prior", "interp")
    assert r.exit_code == 0, r.output
    assert "prior 'interp'" in r.output
    r = run("info", shot)
    assert "result: prior interp, new animation bound in place of the old, 22 generated frames" in r.output
    assert "context 1:24" in r.output and "keys 36, 48" in r.output


def test_inbetween_options_and_undo(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir, times=list(range(1, 49)))  # dense ground truth
    original = open(shot, "rb").read()
    out = tmp_path / "custom.usda"
    r = run("inbetween", shot, "--context", "1:24", "--keys", "36,48", "--prior", "zero-velocity",
            "-o", out, "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["output"] == str(out) and rep["animations"][0]["frames_to_fill"] == 22
    assert rep["animations"][0]["prior"] == "zero-velocity"
    r = run("inbetween", "--undo", shot)
    assert r.exit_code == 0 and "restored" in r.output
    assert open(shot, "rb").read() == original and not out.exists()


def test_inbetween_fps_option(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    r = run("inbetween", shot, "--prior", "interp", "--fps", "48", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["animations"][0]["frames_to_fill"] == 46


def test_default_prior_is_named(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    r = run("inbetween", shot, "--json")
    assert r.exit_code == 0, r.output
    prior = json.loads(r.output)["animations"][0]["prior"]
    from anymole_usd.pipeline import default_prior

    assert prior == default_prior()


def test_plugins_lists_builtins_with_package():
    r = run("plugins", "--json")
    assert r.exit_code == 0
    rows = json.loads(r.output)
    names = {(p["kind"], p["name"]): p for p in rows}
    assert names[("priors", "interp")]["package"] == "anymole-usd"
    assert names[("priors", "zero-velocity")]["ok"]


# ---- bad input: one line, exit 2, nothing written ----

def _expect_bad(folder, *args, match):
    before = _snapshot(folder)
    r = run(*args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and match in lines[0], r.output
    assert _snapshot(folder) == before
    return lines[0]


def test_missing_file(tmp_path):
    _expect_bad(tmp_path, "inbetween", tmp_path / "nope.usda", match="no such file")


def test_not_usd(tmp_path):
    bad = tmp_path / "notes.usda"
    bad.write_text("this is not usd\n")
    _expect_bad(tmp_path, "inbetween", bad, match="not a readable USD file")
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    _expect_bad(tmp_path, "info", txt, match="not a USD file")


def test_no_skeleton(tmp_path):
    path = tmp_path / "empty.usda"
    stage = Usd.Stage.CreateNew(str(path))
    stage.DefinePrim("/World", "Xform")
    stage.Save()
    _expect_bad(tmp_path, "inbetween", path, match="no UsdSkel Skeleton")


def test_no_bound_animation(tmp_path, data_dir):
    import shutil

    src = tmp_path / "tiny.usda"
    shutil.copy(data_dir / "usd" / "synthetic" / "tinyusdz_skintest-blender-4.1.usda", src)
    _expect_bad(tmp_path, "inbetween", src, match="no Skeleton in the stage has a bound SkelAnimation")


def test_prim_not_a_skelanimation(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    line = _expect_bad(tmp_path, "inbetween", shot, "--prim", "/Char/Rig", match="not a SkelAnimation")
    assert "/Char/Rig" in line and str(shot) in line


@pytest.mark.parametrize("keys,match", [("60", "outside the authored range"), ("10", "inside the context")])
def test_bad_keys(tmp_path, data_dir, keys, match):
    shot = shot_root(tmp_path, data_dir)
    _expect_bad(tmp_path, "inbetween", shot, "--keys", keys, match=match)


def test_bad_option_values(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    _expect_bad(tmp_path, "inbetween", shot, "--context", "abc", match="expected a range")
    _expect_bad(tmp_path, "inbetween", shot, "--fps", "-5", match="--fps must be a number greater than 0")
    _expect_bad(tmp_path, "inbetween", shot, "--prior", "nonesuch", match="no prior plugin named 'nonesuch'")


def _corrupt(shot, t, value_fn):
    layer = Sdf.Layer.FindOrOpen(str(shot))
    path = Sdf.Path("/Char/Rig/Anim.rotations")
    layer.SetTimeSample(path, t, value_fn(layer.QueryTimeSample(path, t)))
    layer.Save()


@pytest.mark.parametrize("kind", ["nan", "zero"])
def test_bad_quaternions_name_the_time(tmp_path, data_dir, kind):
    shot = shot_root(tmp_path, data_dir)
    bad = float("nan") if kind == "nan" else 0.0

    def corrupt(v):
        arr = np.array(v)
        arr[3] = [bad, bad, bad, bad]
        return Vt.QuatfArray.FromNumpy(arr.astype(np.float32))

    _corrupt(shot, 12, corrupt)
    line = _expect_bad(tmp_path, "inbetween", shot, match="time 12")
    assert "/Char/Rig/Anim" in line and "NaN or zero-length" in line


def test_mismatched_joint_count(tmp_path, data_dir):
    shot = shot_root(tmp_path, data_dir)
    _corrupt(shot, 7, lambda v: Vt.QuatfArray(list(v)[:-2]))
    line = _expect_bad(tmp_path, "inbetween", shot, match="time 7")
    assert "17 elements but the animation lists 19 joints" in line
