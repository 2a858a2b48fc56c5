"""Shots and layers behind symbolic links (shot.usda -> shot_v3.usda is a common pipeline habit).

A run replaced the link with a regular file (the rename landed on the link), and undo then said
"every file is back byte for byte" while the link was gone. Now a link is written through (the
file it names is replaced, the link stays) when that file lies in the shot's folder, and refused
otherwise; one lock guards the file whichever name a run uses. CesiumMan (CC-BY 4.0, Cesium).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from anymole_usd.cli.main import cli

from cli_run import ok
from shots import shot_sublayer

REPO = Path(__file__).resolve().parents[1]


def state(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = "-> " + os.readlink(p)
        elif p.is_file():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_a_shot_that_is_a_link_keeps_its_link(tmp_path):
    d = tmp_path / "d"
    shutil.copytree(REPO / "examples" / "cesiumman", d)
    (d / "shot.usda").rename(d / "shot_v3.usda")
    (d / "shot.usda").symlink_to("shot_v3.usda")
    before = state(d)
    ok("inbetween", d / "shot.usda", "--prior", "interp")
    assert (d / "shot.usda").is_symlink() and "shot.inbetween.usda" in (d / "shot_v3.usda").read_text()
    ok("inbetween", d / "shot.usda", "--in-place", "--prior", "interp")
    assert (d / "shot.usda").is_symlink()
    ok("inbetween", "--undo", d / "shot.usda")
    assert state(d) == before


def test_an_in_place_layer_behind_a_link_keeps_its_link(tmp_path, data_dir):
    shot, anim = shot_sublayer(tmp_path, data_dir)
    anim.rename(tmp_path / "anim_v2.usda")
    anim.symlink_to("anim_v2.usda")
    before = state(tmp_path)
    ok("inbetween", shot, "--in-place", "--prior", "interp")
    assert anim.is_symlink()
    ok("inbetween", "--undo", shot)
    assert state(tmp_path) == before


def test_a_link_to_a_file_outside_the_shots_folder_is_refused(tmp_path):
    real = tmp_path / "real"
    shutil.copytree(REPO / "examples" / "cesiumman", real)
    linked = tmp_path / "linked"
    linked.mkdir()
    for name in ("shot.usda", "CesiumMan.usdz"):
        (linked / name).symlink_to(real / name)
    before = state(tmp_path)
    r = CliRunner().invoke(cli, ["inbetween", str(linked / "shot.usda")], catch_exceptions=False)
    assert r.exit_code == 2 and "outside the shot's folder" in r.output, r.output
    assert state(tmp_path) == before


def test_one_lock_whichever_name_a_run_uses(tmp_path):
    d = tmp_path / "d"
    shutil.copytree(REPO / "examples" / "cesiumman", d)
    (d / "shot.usda").rename(d / "shot_v3.usda")
    (d / "shot.usda").symlink_to("shot_v3.usda")
    env = dict(os.environ, ANYMOLE_USD_TEST_PAUSE=f"{tmp_path}:planned")
    code = "import sys; from anymole_usd.cli.main import main; sys.exit(main(sys.argv[1:]))"
    first = subprocess.Popen([sys.executable, "-c", code, "inbetween", str(d / "shot.usda"), "--prior", "interp"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    marker = tmp_path / "planned.reached"
    end = time.time() + 60
    while not marker.exists():
        assert first.poll() is None and time.time() < end, first.communicate()
        time.sleep(0.02)
    try:
        r = CliRunner().invoke(cli, ["inbetween", str(d / "shot_v3.usda"), "--prior", "interp"])
        assert r.exit_code == 2 and "another anymole-usd run is writing this file" in r.output, r.output
    finally:
        marker.unlink()
        first.communicate(timeout=60)
    assert first.returncode == 0
    ok("inbetween", "--undo", d / "shot.usda")
