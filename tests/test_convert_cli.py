"""`anymole-usd import` / `export`: exit codes, JSON, nothing written on bad input, composed export."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from anymole_usd import registry
from anymole_usd.cli.main import cli
from anymole_usd.plugins.io.bvh import read_bvh

DATA = Path(os.environ.get("ANYMOLE_USD_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
CMU = DATA / "bvh" / "humanoid" / "cmu" / "01_01.bvh"
BANDAI = DATA / "bvh" / "humanoid" / "bandai_namco" / "dataset-1_walk_normal_001.bvh"
FOX = DATA / "gltf" / "Fox.glb"
needs_data = pytest.mark.skipif(not CMU.is_file() or not FOX.is_file(), reason=f"no data under {DATA}")


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.output


def test_plugins_are_registered_through_entry_points():
    assert {"bvh", "gltf"} <= set(registry.names("importers"))
    assert {"bvh", "gltf"} <= set(registry.names("exporters"))
    assert ".bvh" in registry.load("importers", "bvh").extensions
    assert ".glb" in registry.load("exporters", "gltf").extensions


@needs_data
def test_import_bvh_json_and_export_both_formats(tmp_path):
    out = tmp_path / "clip.usda"
    code, text = run("import", BANDAI, "-o", out, "--json")
    assert code == 0, text
    summary = json.loads(text)
    assert summary["fps"] == 30.0 and summary["joints"] == 22 and summary["importer"] == "bvh"
    assert summary["animations"][0]["frames"] == len(read_bvh(BANDAI).values)
    code, text = run("export", out, "-o", tmp_path / "back.bvh", "--json")
    assert code == 0, text
    assert json.loads(text)["frames"] == summary["animations"][0]["frames"]
    code, text = run("export", out, "-o", tmp_path / "back.glb")
    assert code == 0 and "wrote" in text, text
    assert (tmp_path / "back.glb").stat().st_size > 1000


@needs_data
def test_import_glb_animation_option(tmp_path):
    code, text = run("import", FOX, "-o", tmp_path / "fox.usda", "--animation", "Run", "--fps", "30", "--json")
    assert code == 0, text
    summary = json.loads(text)
    assert summary["bound"] == "/Character/Animations/Run" and summary["fps"] == 30.0
    assert [a["name"] for a in summary["animations"]] == ["Survey", "Walk", "Run"]
    assert summary["meshes"] == ["/Character/fox1"]


def _one_line_exit_2(code, text, *needles):
    assert code == 2, text
    lines = [ln for ln in text.strip().splitlines() if ln]
    assert len(lines) == 1, text
    for n in needles:
        assert n in lines[0], text


@needs_data
def test_bad_inputs_exit_2_and_write_nothing(tmp_path):
    truncated = tmp_path / "truncated.bvh"
    truncated.write_bytes(CMU.read_bytes()[:300000])
    code, text = run("import", truncated, "-o", tmp_path / "a.usda")
    _one_line_exit_2(code, text, "truncated.bvh", "line", "truncated?")

    code, text = run("import", tmp_path / "missing.bvh", "-o", tmp_path / "b.usda")
    _one_line_exit_2(code, text, "missing.bvh", "no such file")

    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    code, text = run("import", notes, "-o", tmp_path / "c.usda")
    _one_line_exit_2(code, text, "no importer for .txt")

    code, text = run("import", BANDAI, "-o", tmp_path / "d.abc")
    _one_line_exit_2(code, text, "output must end in .usda")

    code, text = run("import", BANDAI, "-o", tmp_path / "e.usda", "--frames", "5000:")
    _one_line_exit_2(code, text, "frame selection", "is empty")

    code, text = run("import", FOX, "-o", tmp_path / "f.usda", "--animation", "Trot")
    _one_line_exit_2(code, text, "Fox.glb", "no animation named 'Trot'")

    code, text = run("import", BANDAI, "-o", tmp_path / "g.usda", "--frames", "abc")
    assert code == 2  # click usage error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "truncated.bvh"]


def test_export_of_stage_without_animation_exit_2(tmp_path):
    from anymole_usd.authoring import write_skel_stage
    from anymole_usd.skeleton import Skeleton

    rest = np.tile(np.eye(4), (2, 1, 1))
    rest[1, 3, 1] = 1.0
    stage = tmp_path / "rest_only.usda"
    write_skel_stage(stage, Skeleton(["a", "a/b"], [-1, 0], rest), {}, None)
    code, text = run("export", stage, "-o", tmp_path / "out.bvh")
    _one_line_exit_2(code, text, "rest_only.usda", "prim /Character/Skeleton",
                     "no Skeleton in the stage has a bound SkelAnimation")
    code, text = run("export", stage, "-o", tmp_path / "out.fbx")
    _one_line_exit_2(code, text, "no exporter for .fbx")
    code, text = run("export", tmp_path / "nothing.usda", "-o", tmp_path / "out.glb")
    _one_line_exit_2(code, text, "nothing.usda", "no such file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rest_only.usda"]


@needs_data
def test_export_writes_the_composed_animation(tmp_path):
    """A result layer composed over the shot (wrapper root: sublayers [result, shot]) is what gets exported."""
    from pxr import Sdf, Vt

    shot = tmp_path / "shot.usda"
    code, text = run("import", BANDAI, "-o", shot, "--frames", "0:40")
    assert code == 0, text
    clip = read_bvh(BANDAI, frames=slice(0, 40))
    anim_path = "/Character/Animations/" + BANDAI.stem.replace("-", "_")
    # result layer: the same animation with the root lifted by 7 units on every frame
    result = Sdf.Layer.CreateNew(str(tmp_path / "result.usda"))
    result.timeCodesPerSecond = result.framesPerSecond = 30
    spec = Sdf.CreatePrimInLayer(result, anim_path)
    spec.specifier = Sdf.SpecifierOver
    attr = Sdf.AttributeSpec(spec, "translations", Sdf.ValueTypeNames.Float3Array)
    lifted = clip.motion.translations.copy()
    lifted[:, 0, 1] += 7.0
    for f in range(40):
        result.SetTimeSample(attr.path, float(f), Vt.Vec3fArray.FromNumpy(lifted[f].astype(np.float32)))
    result.Save()
    wrapper = Sdf.Layer.CreateNew(str(tmp_path / "composed.usda"))
    wrapper.subLayerPaths = ["result.usda", "shot.usda"]
    wrapper.timeCodesPerSecond = wrapper.framesPerSecond = 30
    wrapper.Save()

    code, text = run("export", tmp_path / "composed.usda", "-o", tmp_path / "out.bvh")
    assert code == 0, text
    back = read_bvh(tmp_path / "out.bvh")
    assert len(back.values) == 40
    np.testing.assert_allclose(back.motion.translations[:, 0], lifted[:, 0], atol=1e-4)
    np.testing.assert_allclose(back.values[:, 3:6], clip.values[:, 3:6], atol=1e-3)  # rotations untouched


@needs_data
def test_export_of_sparse_shot_fills_every_frame_for_bvh(tmp_path):
    """BVH needs uniform frames: a shot keyed every 10 frames exports every timecode in between."""
    from anymole_usd.authoring import write_skel_stage

    clip = read_bvh(BANDAI, frames=slice(0, 41))
    sparse = clip.motion.select(np.arange(0, 41, 10))
    write_skel_stage(tmp_path / "keys.usda", clip.skeleton, {"keys": sparse}, "keys")
    code, text = run("export", tmp_path / "keys.usda", "-o", tmp_path / "keys.bvh", "--json")
    assert code == 0, text
    assert json.loads(text)["frames"] == 41
    from anymole_usd.kinematics import global_positions

    back = read_bvh(tmp_path / "keys.bvh")
    at_keys = back.motion.select(np.arange(0, 41, 10))
    got = global_positions(back.skeleton.parents, at_keys.rotations, at_keys.translations)
    want = global_positions(clip.skeleton.parents, sparse.rotations, sparse.translations)
    np.testing.assert_allclose(got, want, atol=1e-4 * clip.skeleton.height())
