"""Outputs a hostile user points at read-only places or at their own work (found by trying every command).

`chmod a-w` is honoured by every command, even for root (as inbetween already did for the shot), and
refused before any work; import does not silently replace a shot the user made. `d` is a copy of
examples/cesiumman (CesiumMan, CC-BY 4.0, Cesium); BVH from the Bandai Namco dataset (CC-BY-NC 4.0).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cli_run import refused, run, state

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def work(tmp_path, data_dir):
    shutil.copytree(REPO / "examples" / "cesiumman", tmp_path / "d")
    bvh = tmp_path / "run.bvh"
    shutil.copy(data_dir / "bvh" / "humanoid" / "bandai_namco" / "dataset-1_run_active_001.bvh", bvh)
    os.chmod(bvh, 0o644)
    (tmp_path / "clips").mkdir()
    shutil.copy(bvh, tmp_path / "clips" / "run.bvh")
    assert run("library", "build", tmp_path / "LIB", tmp_path / "clips").exit_code == 0
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o555)
    yield tmp_path
    os.chmod(tmp_path / "ro", 0o755)


def test_every_command_refuses_a_read_only_output_folder_even_for_root(work):
    shot, ro = work / "d" / "shot.usda", work / "ro"
    before = state(work)
    for args in (["import", work / "run.bvh", "-o", ro / "x.usda"],
                 ["export", shot, "-o", ro / "x.bvh"],
                 ["compose", work / "LIB", "-o", ro / "c.usda", "--duration", "1"],
                 ["library", "build", ro / "LIB", work / "clips"],
                 ["blender-addon", "-o", ro / "addon.zip"],
                 ["preview", shot, "-o", ro / "p.png"],
                 ["render", shot, "-o", ro / "frames", "--frames", "1:2", "--size", "64x64"],
                 ["video", "prepare", shot, "-o", ro / "job", "--size", "64x64"],
                 ["batch", work / "d", "--prior", "interp", "--report", ro / "batch.json"]):
        refused(*args, match="the folder is read-only")
    assert state(work) == before and not list(ro.iterdir())


def test_read_only_output_files_are_not_replaced(work):
    mine = work / "mine.usda"
    shutil.copy(work / "d" / "shot.usda", mine)
    os.chmod(mine, 0o444)
    (work / "old.bvh").write_text("HIERARCHY\n")
    os.chmod(work / "old.bvh", 0o444)
    before = state(work)
    refused("import", work / "run.bvh", "-o", mine, "--force", match="the file is read-only")
    refused("export", work / "d" / "shot.usda", "-o", work / "old.bvh", match="the file is read-only")
    assert state(work) == before


def test_import_does_not_silently_replace_a_shot_the_user_made(work):
    mine = work / "mine.usda"
    shutil.copy(work / "d" / "shot.usda", mine)
    before = state(work)
    refused("import", work / "run.bvh", "-o", mine, match="not an earlier import")
    assert state(work) == before
    assert run("import", work / "run.bvh", "-o", work / "again.usda").exit_code == 0
    assert run("import", work / "run.bvh", "-o", work / "again.usda", "--frames", "0:10").exit_code == 0  # ours
    assert run("import", work / "run.bvh", "-o", mine, "--force").exit_code == 0


def test_import_start_far_out_is_refused_not_folded_into_one_sample(work):
    # --start 1e300 wrote all 72 frames at one time code (1e300 + 1 == 1e300)
    refused("import", work / "run.bvh", "-o", work / "far.usda", "--start", "1e300", match="--start must be")
    assert not (work / "far.usda").exists()


def test_batch_report_path_is_checked_before_any_shot_runs(work):
    (work / "text.txt").write_text("x")
    before = state(work)
    # was exit 1 after every shot had been filled
    refused("batch", work / "d", "--prior", "interp", "--report", work / "text.txt" / "r.json",
            match="is a file")
    assert state(work) == before


def test_an_output_under_a_file_is_refused_before_any_work(work):
    # every command's file output: a file where a folder must be made failed only after the work
    (work / "text.txt").write_text("x")
    before = state(work)
    refused("import", work / "run.bvh", "-o", work / "text.txt" / "x.usda", match="is a file")
    assert state(work) == before
