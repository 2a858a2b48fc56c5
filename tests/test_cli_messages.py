"""What the CLI says: honest help, progress in logs, quiet CPU runs, unit warnings, exact messages.

Issue 19 items 2-5 and issue 13 item 14 (the messages of reading, export and settings).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from anymole_usd.cli.main import cli

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "anymole_usd.cli.main"]


def run(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


# ----------------------------------------------------------------------------------- 19.2 help


def test_help_says_what_happens():
    text = " ".join(run(["import", "--help"]).output.split())
    assert "guessed from the character's size" in text and "0.0564" in text  # not "0.01 (cm)"
    assert "--start" in text
    text = " ".join(run(["eval", "--help"]).output.split())
    proto = text.split("--protocol")[1].split("--priors")[0]
    assert "2 s" in proto and "10 context frames" in proto  # each protocol described
    text = " ".join(run(["info", "--help"]).output.split())
    assert "default: one per time code" in text.split("--fps")[1]
    from anymole_usd.plugins.estimator.training import EstimatorSettings

    text = " ".join(run(["estimator", "train", "--help"]).output.split())
    assert f"default: {EstimatorSettings().steps}" in text.split("--steps")[1]


def test_examples_readme_import_command_reproduces_the_reference(tmp_path, data_dir):
    """examples/README.md: `--frames 120:841 --fps 30 --start 0` gives reference.usdc's frames exactly."""
    from anymole_usd.reading import find_bindings, open_stage, read_motion

    readme = (REPO / "examples" / "README.md").read_text()
    assert "--frames 120:841 --fps 30 --start 0" in readme
    src = data_dir / "bvh" / "humanoid" / "cmu" / "01_01.bvh"

    def motion(path):
        stage = open_stage(path)
        return read_motion(stage, find_bindings(stage)[0])

    assert run(["import", src, "-o", tmp_path / "a.usda", "--frames", "120:841", "--fps", "30", "--start", "0"]
               ).exit_code == 0
    assert run(["import", src, "-o", tmp_path / "b.usda", "--frames", "120:841", "--fps", "30"]).exit_code == 0
    ours, ref = motion(tmp_path / "a.usda"), motion(REPO / "examples" / "cmu_01_01" / "reference.usdc")
    np.testing.assert_array_equal(ours.times, ref.times)
    np.testing.assert_allclose(ours.rotations, ref.rotations, atol=1e-6)
    np.testing.assert_allclose(ours.translations, ref.translations, atol=1e-4)
    kept = motion(tmp_path / "b.usda").times  # source time kept: 1 s in
    assert (kept[0], kept[-1]) == (30.0, 210.0)


# ----------------------------------------------------------------------------------- 19.3 progress


def test_log_progress_lines_per_stage_and_heartbeat(capsys):
    from anymole_usd.cli.common import LogProgress

    with LogProgress(heartbeat=0.4) as bar:
        task = bar.add_task("reading", total=1.0)
        bar.update(task, completed=0.1)  # same stage: no line
        bar.update(task, description="training", completed=0.25)
        time.sleep(1.1)  # nothing reported: heartbeats carry the stage and fraction
        bar.update(task, description="writing", completed=0.9)
        bar.update(task, completed=1.0)
    lines = capsys.readouterr().err.strip().splitlines()
    stages = [ln.split("] ", 1)[1] for ln in lines]
    assert stages[0] == "reading 0%" and stages[1] == "training 25%"
    beats = [s for s in stages[2:] if s.startswith("training")]
    assert 1 <= len(beats) <= 3 and all(s == "training 25%" for s in beats), stages
    assert stages[-2:] == ["writing 90%", "writing done"]


def test_inbetween_progress_in_a_log_is_plain_lines(tmp_path):
    d = tmp_path / "d"
    shutil.copytree(REPO / "examples" / "cesiumman", d)
    p = subprocess.run(CLI + ["inbetween", str(d / "shot.usda"), "--prior", "interp"], capture_output=True,
                       text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines and all(ln.startswith("[0:") for ln in lines), p.stderr  # "[0:00:01] stage 50%"
    assert "\x1b" not in p.stderr and "\r" not in p.stderr  # no terminal bar redraws in a log
    assert lines[-1].endswith("done")


# ----------------------------------------------------------------------------------- 19.4 quiet CPU


def test_warp_is_quiet_and_says_its_device_once_with_verbose():
    code = ("import sys; from anymole_usd.cli.common import set_verbose; set_verbose(len(sys.argv) > 1)\n"
            "from anymole_usd.kernels import runtime\n"
            "runtime.init(); runtime.resolve_device(); runtime.resolve_device(); runtime.available_devices()\n")
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    assert "NVIDIA CUDA driver" not in quiet.stderr and quiet.stderr.strip() == "", quiet.stderr
    loud = subprocess.run([sys.executable, "-c", code, "-v"], capture_output=True, text=True, timeout=120)
    said = [ln for ln in loud.stderr.splitlines() if "Warp kernels run on" in ln]
    assert len(said) == 1, loud.stderr
    assert "Could not find or load" not in loud.stderr


def test_top_level_verbose_flag():
    r = run(["-v", "plugins", "--kind", "priors", "--no-check"])
    assert r.exit_code == 0, r.output
    assert "-v, --verbose" in run(["--help"]).output


# ----------------------------------------------------------------------------------- 19.5 units


def test_import_warns_about_an_implausible_size(tmp_path, data_dir):
    fox = data_dir / "gltf" / "Fox.glb"
    r = run(["import", fox, "-o", tmp_path / "fox.usda"])
    assert r.exit_code == 0, r.output
    warning = next(ln for ln in r.output.splitlines() if ln.startswith("warning:"))
    assert "outside 5 cm..50 m" in warning and "--meters-per-unit" in warning and "0.01" in warning
    r = run(["import", fox, "-o", tmp_path / "fox2.usda", "--meters-per-unit", "0.01", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["warnings"] == []
    r = run(["import", data_dir / "bvh" / "humanoid" / "cmu" / "01_01.bvh", "--frames", "0:30",
             "-o", tmp_path / "c.usda"])
    assert r.exit_code == 0 and "warning" not in r.output  # the guessed unit: a 1.7 m person
    r = run(["import", data_dir / "bvh" / "humanoid" / "cmu" / "01_01.bvh", "--frames", "0:30",
             "-o", tmp_path / "c.usda", "--meters-per-unit", "10"])
    assert "warning:" in r.output and "given" in r.output


# ----------------------------------------------------------------------------------- 13.14 messages


def test_truncated_usda_keeps_usd_line_and_column(tmp_path):
    text = (REPO / "examples" / "cesiumman" / "shot.usda").read_bytes()
    (tmp_path / "cut.usda").write_bytes(text[:3000])
    r = run(["info", tmp_path / "cut.usda"])
    assert r.exit_code == 2
    line = r.output.strip()
    assert "not a readable USD file (line " in line and ", column " in line, line
    assert "pxrInternal" not in line and len(line.splitlines()) == 1


def test_export_nan_names_the_authored_key(tmp_path):
    from pxr import Gf, Usd, UsdSkel

    d = tmp_path / "n"
    shutil.copytree(REPO / "examples" / "cmu_01_01", d)
    stage = Usd.Stage.Open(str(d / "shot.usda"))
    anim = UsdSkel.Animation(stage.GetPrimAtPath("/Character/Animations/cmu_01_01"))
    rot = list(anim.GetRotationsAttr().Get(90))
    rot[3] = Gf.Quatf(float("nan"), 0, 0, 0)
    anim.GetRotationsAttr().Set(rot, 90)
    stage.GetRootLayer().Save()
    for out in ("x.bvh", "x.glb"):  # BVH reads every time code in between, glTF the authored ones
        r = run(["export", d / "shot.usda", "-o", tmp_path / out])
        assert r.exit_code == 2, r.output
        assert "time 90:" in r.output and "time 61" not in r.output, r.output


def test_video_model_setting_says_where_it_came_from(tmp_path, monkeypatch):
    from anymole_usd import settings

    monkeypatch.delenv("ANYMOLE_USD_VIDEO_MODEL", raising=False)
    monkeypatch.delenv("ANYMOLE_USD_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert settings.video_model_source() == "unset"
    (tmp_path / "anymole-usd.toml").write_text('[video]\nmodel = "some/model"\n')
    src = settings.video_model_source()
    assert src.startswith("config ") and src.endswith("anymole-usd.toml"), src
    assert settings.describe_source(settings.resolve("video.model")).startswith("video.model from config ")
    monkeypatch.setenv("ANYMOLE_USD_VIDEO_MODEL", "other/model")
    assert settings.video_model_source() == "env ANYMOLE_USD_VIDEO_MODEL"
    assert settings.video_model_source("x") == "option"
