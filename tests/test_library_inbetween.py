"""`inbetween --library` (issue 14): retrieval from a motion library, per-gap provenance, and the rules that keep
a library from making a shot worse (a far clip is not used, bad LIB exits 2), and clips of other skeletons
reached through the retarget joint mapping (issue 15: retargeted, named, never a creature's for a humanoid)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from pxr import Sdf, Usd, UsdSkel

from anymole_usd.cli.main import cli
from anymole_usd.library import build_library

BANDAI = "bvh/humanoid/bandai_namco"
WALK = "dataset-1_walk_normal_001"
CONTEXT, KEYS = range(0, 61), [90, 120, 150, 180]


def run(*args) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def shot_source(tmp_path_factory, data_dir) -> Path:
    """The Bandai walk imported as USD, then every sample but 2 s of context and 4 keys removed."""
    folder = tmp_path_factory.mktemp("shot")
    path = folder / "walk.usda"
    code, out = run("import", data_dir / BANDAI / f"{WALK}.bvh", "-o", path)
    assert code == 0, out
    layer = Sdf.Layer.FindOrOpen(str(path))
    stage = Usd.Stage.Open(layer)  # kept alive while its prims are used
    anim = next(p for p in stage.Traverse() if p.IsA(UsdSkel.Animation))
    keep = set(CONTEXT) | set(KEYS)
    for name in ("translations", "rotations", "scales"):
        attr = anim.GetPath().AppendProperty(name)
        for t in list(layer.ListTimeSamplesForPath(attr)):
            if round(t) not in keep:
                layer.EraseTimeSample(attr, t)
    layer.Save()
    return path


@pytest.fixture()
def shot(tmp_path, shot_source) -> Path:
    path = tmp_path / "walk.usda"
    path.write_bytes(shot_source.read_bytes())
    return path


@pytest.fixture(scope="module")
def libraries(tmp_path_factory, data_dir) -> dict:
    """Small libraries: the shot's own take among two other walks; a bow and a wave only; CMU 01_01 only."""
    root = tmp_path_factory.mktemp("libs")
    out = {}
    for name, files in (("walks", [f"{BANDAI}/{WALK}.bvh", f"{BANDAI}/dataset-2_walk_normal_004.bvh",
                                   f"{BANDAI}/dataset-1_walk_tired_001.bvh"]),
                        ("far", [f"{BANDAI}/dataset-1_bow_normal_001.bvh",
                                 f"{BANDAI}/dataset-2_wave-both-hands_normal_001.bvh"]),
                        ("cmu", ["bvh/humanoid/cmu/01_01.bvh"])):
        build_library(root / name, [str(data_dir / f) for f in files])
        out[name] = root / name
    return out


def provenance(path: Path) -> dict:
    from anymole_usd.schema import read_provenance

    stage = Usd.Stage.Open(str(path))
    anim = next(p for p in stage.Traverse() if p.IsA(UsdSkel.Animation) and read_provenance(p))
    return read_provenance(anim).details


def generated(path: Path) -> np.ndarray:
    stage = Usd.Stage.Open(str(path))
    anim = UsdSkel.Animation(next(p for p in stage.Traverse() if p.IsA(UsdSkel.Animation)
                                  and p.GetName().endswith("_inbetween")))
    return np.array([anim.GetRotationsAttr().Get(t) for t in range(61, 180) if t not in KEYS])


def test_provenance_names_clip_and_frames_per_gap(shot, libraries, data_dir):
    """The library holds the shot's own take: the gaps it fills replay that take's frames, and the result's
    provenance (read back from USD, and printed by `info`) says which clip and which source frames."""
    code, out = run("inbetween", shot, "--library", libraries["walks"], "--json")
    assert code == 0, out
    report = json.loads(out)
    details = provenance(shot)
    assert details["library"] == str(libraries["walks"])
    assert [(g["start"], g["end"]) for g in details["gaps"]] == [(60, 90), (90, 120), (120, 150), (150, 180)]
    assert report["animations"][0]["details"]["gaps"] == details["gaps"]
    from_lib = [g for g in details["gaps"] if g["filled_by"] == "library"]
    assert from_lib, details["gaps"]
    for g in from_lib:
        assert WALK in g["clip"] and g["segments"][0]["file"].endswith(f"{WALK}.bvh")
        # The take's own frames between the gap's known samples (the source is the shot, at the same rate).
        assert g["source_frames"] == [g["start"] + 1, g["end"] - 1]
    assert all(g["filled_by"] in ("graph", "interp", "library") for g in details["gaps"])
    code, out = run("info", shot)
    assert code == 0 and f"retrieval from {libraries['walks']}" in out
    assert f"gap {from_lib[0]['start']:g}..{from_lib[0]['end']:g}: library: {WALK}" in out


def test_a_far_clip_is_not_used(shot, tmp_path, shot_source, libraries):
    """A library of a bow and a wave: nothing in it resembles a walk, so nothing is retrieved and the result
    is exactly the one without a library."""
    code, out = run("inbetween", shot, "--library", libraries["far"], "--json")
    assert code == 0, out
    details = provenance(shot)
    assert details["library_clips_offered"] == []
    assert all(g["filled_by"] != "library" and "segments" not in g for g in details["gaps"])
    assert any("comes close to this shot's poses" in n for n in json.loads(out)["notes"])
    plain = tmp_path / "plain" / "walk.usda"
    plain.parent.mkdir()
    plain.write_bytes(shot_source.read_bytes())
    assert run("inbetween", plain)[0] == 0
    assert np.array_equal(generated(shot), generated(plain))


@pytest.fixture(scope="module")
def other_convention_library(tmp_path_factory, data_dir) -> Path:
    """A library whose only clip is on another naming convention: the shot's Bandai walk retargeted (with
    `anymole-usd retarget`) onto AnimLabSimpleMale (LaFAN1 names under a Root, 23 joints against 22)."""
    import shutil

    root = tmp_path_factory.mktemp("other")
    shutil.copy(data_dir / "usd/AnimLabSimpleMale.usd", root / "male.usd")
    code, out = run("retarget", data_dir / BANDAI / f"{WALK}.bvh", "--to", root / "male.usd", "-o",
                    root / "male_walk.usda")
    assert code == 0, out
    build_library(root / "lib", [str(root / "male_walk.usda")])
    return root / "lib"


def test_a_library_clip_of_another_skeleton_is_retargeted_and_named(tmp_path, shot_source,
                                                                     other_convention_library):
    """No clip of the shot's skeleton in the library: the joint mapping bridges to the other convention's
    skeleton, its stretches are retargeted onto the shot's, and the gaps they fill name that clip, its
    source frames and the skeleton it came from. (A shot of 0.33 s context and keys two seconds apart: its own
    graph cannot fill anything, interpolation glides.)"""
    shot = tmp_path / "walk.usda"
    shot.write_bytes(shot_source.read_bytes())
    layer = Sdf.Layer.FindOrOpen(str(shot))
    stage = Usd.Stage.Open(layer)
    anim = next(p for p in stage.Traverse() if p.IsA(UsdSkel.Animation))
    for name in ("translations", "rotations", "scales"):
        attr = anim.GetPath().AppendProperty(name)
        for t in list(layer.ListTimeSamplesForPath(attr)):
            if round(t) not in set(range(11)) | {60, 120, 180}:
                layer.EraseTimeSample(attr, t)
    layer.Save()
    code, out = run("inbetween", shot, "--library", other_convention_library, "--json")
    assert code == 0, out
    assert provenance(shot)["library_clips_offered"] == []  # other skeletons only when asked
    code, out = run("inbetween", shot, "--library", other_convention_library, "--library-skeletons", "all",
                    "--json")
    assert code == 0, out
    details = provenance(shot)
    assert details["library_skeleton"] is None  # no library skeleton with the shot's joint names
    assert details["library_skeletons"] == "all" and details["library_bridged_skeletons"]
    offered = details["library_clips_offered"]
    assert offered and all("male_walk.usda" in c["clip"] for c in offered), offered
    from_lib = [g for g in details["gaps"] if g["filled_by"] == "library"]
    assert from_lib, details["gaps"]
    for g in from_lib:
        assert "male_walk.usda" in g["clip"] and g["retargeted_from"]
        assert all(s["skeleton"] == g["retargeted_from"] for s in g["segments"])
        # The walk's own seconds (the retargeted clip is at the target's 24 fps, the shot at 30).
        lo, hi = g["segments"][0]["source_seconds"]
        assert abs(lo - (g["start"] + 1) / 30) <= 0.15 and abs(hi - (g["end"] - 1) / 30) <= 0.15, g


def test_a_creature_library_is_never_used_for_a_humanoid(shot, tmp_path, shot_source, data_dir):
    """A quadruped's walk (other limbs) is never bridged to a humanoid shot: nothing offered, a note, and the
    result is exactly the one without a library."""
    build_library(tmp_path / "lib", [str(data_dir / "library/bvh/nonhumanoid/truebones_motion2motion/"
                                                    "Monkey__Walk.bvh")])
    code, out = run("inbetween", shot, "--library", tmp_path / "lib", "--library-skeletons", "all", "--json")
    assert code == 0, out
    details = provenance(shot)
    assert details["library_skeleton"] is None and details["library_clips_offered"] == []
    assert all(g["filled_by"] != "library" for g in details["gaps"])
    notes = json.loads(out)["notes"]
    assert any("no skeleton with this animation's 22 joint names nor one the joint mapping bridges" in n
               for n in notes), notes
    plain = tmp_path / "plain" / "walk.usda"
    plain.parent.mkdir()
    plain.write_bytes(shot_source.read_bytes())
    assert run("inbetween", plain)[0] == 0
    assert np.array_equal(generated(shot), generated(plain))


def test_low_confidence_mappings_are_not_bridged(data_dir, tmp_path):
    """A hand rig and a lower body have other limbs; a mapping with a chain under MIN_CONFIDENCE is refused
    (the threshold moved above the bridge's confidence)."""
    from anymole_usd.library import Library, cross_skeleton
    from anymole_usd.protocols import load_clips

    walk, = load_clips([data_dir / BANDAI / f"{WALK}.bvh"])
    build_library(tmp_path / "lib", [str(data_dir / "bvh/humanoid/cmu/01_01.bvh"),
                                     str(data_dir / "library/bvh/humanoid/manipnet_hands/mug1_leftHand.bvh")])
    lib = Library.open(tmp_path / "lib")
    usable, skipped = cross_skeleton.bridges(lib, walk.skeleton, walk.motion)
    assert [b.name for b in usable] == ["01_01"] and "hand" not in " ".join(b.name for b in usable)
    assert any("mug1_leftHand" in s and "other limbs" in s for s in skipped), skipped
    old = cross_skeleton.MIN_CONFIDENCE
    try:
        cross_skeleton.MIN_CONFIDENCE = usable[0].confidence + 1e-3
        cross_skeleton._BRIDGES.clear()
        usable2, skipped2 = cross_skeleton.bridges(lib, walk.skeleton, walk.motion)
        assert usable2 == [] and any("not confident enough" in s for s in skipped2), skipped2
    finally:
        cross_skeleton.MIN_CONFIDENCE = old
        cross_skeleton._BRIDGES.clear()


def test_missing_or_broken_library_exits_2(shot, tmp_path):
    code, out = run("inbetween", shot, "--library", tmp_path / "nowhere")
    assert code == 2 and "not a motion library" in out
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{ not json")
    code, out = run("inbetween", shot, "--library", broken)
    assert code == 2 and "manifest" in out
    assert not (tmp_path / "walk.inbetween.usda").exists()  # nothing written


def test_a_changed_library_invalidates_resume(libraries, tmp_path):
    """`batch --resume` compares option digests: the library's manifest content is part of them."""
    import shutil

    from anymole_usd.pipeline import InbetweenOptions, options_digest

    lib = tmp_path / "lib"
    shutil.copytree(libraries["far"], lib)
    before = options_digest(InbetweenOptions(library=str(lib)))
    assert before == options_digest(InbetweenOptions(library=str(lib)))
    assert before != options_digest(InbetweenOptions())
    manifest = json.loads((lib / "manifest.json").read_text())
    manifest["clips"] = manifest["clips"][:1]
    (lib / "manifest.json").write_text(json.dumps(manifest))
    assert before != options_digest(InbetweenOptions(library=str(lib)))


def test_another_walk_as_reference_does_not_spoil_the_shot(data_dir):
    """Issue 14: another Bandai walk given as --reference made a Bandai walk's in-betweens ~5x worse
    (L2P 0.13 -> 0.63 m, the per-gap choice then measured against the reference's frames fell back to
    interpolation). The shot's own graph is now kept unless a reference path is clearly better."""
    from anymole_usd import registry
    from anymole_usd.evaluation import run_prior
    from anymole_usd.metric import load_metrics
    from anymole_usd.protocols import load_clips, windows_for

    walk, other = load_clips([data_dir / BANDAI / f"{WALK}.bvh", data_dir / BANDAI / "dataset-2_walk_normal_004.bvh"])
    l2p, = load_metrics(["l2p"])
    graph = registry.load("priors", "graph")
    ws = windows_for("anymole", walk)
    alone, _ = run_prior(graph(), ws)
    prior = graph()
    helped, _ = run_prior(prior, ws, references=lambda clip: [other.motion])
    assert prior.admitted.tolist() == [True]  # the other walk is in the graph
    assert l2p.compute(helped) <= 1.02 * l2p.compute(alone)
    assert l2p.compute(alone) < 0.25 * l2p.compute(run_prior(registry.load("priors", "interp")(), ws)[0])


def test_a_z_up_shot_plays_its_library_clip_in_its_own_axes(tmp_path, data_dir):
    """CesiumMan's skeleton is Z-up in its own space; the library stores clips Y-up. Its own walk in the
    library fills its gaps with its own frames, turned back into the shot's axes (to 1e-3)."""
    from pxr import UsdSkel

    build_library(tmp_path / "lib", [str(data_dir / "usd/CesiumMan.usdz")])
    source = Usd.Stage.Open(str(data_dir / "usd/CesiumMan.usdz"))
    source.Export(str(tmp_path / "shot.usda"))
    layer = Sdf.Layer.FindOrOpen(str(tmp_path / "shot.usda"))
    stage = Usd.Stage.Open(layer)
    anim = next(p for p in stage.Traverse() if p.IsA(UsdSkel.Animation))
    for name in ("translations", "rotations", "scales"):
        attr = anim.GetPath().AppendProperty(name)
        for t in list(layer.ListTimeSamplesForPath(attr)):
            if round(t) not in set(range(1, 25)) | {36, 48}:
                layer.EraseTimeSample(attr, t)
    layer.Save()
    code, out = run("inbetween", tmp_path / "shot.usda", "--library", tmp_path / "lib")
    assert code == 0 and "library: CesiumMan.usdz" in out, out
    truth = UsdSkel.Animation(next(p for p in source.Traverse() if p.IsA(UsdSkel.Animation)))
    result = Usd.Stage.Open(str(tmp_path / "shot.usda"))
    filled = UsdSkel.Animation(next(p for p in result.Traverse() if p.GetName().endswith("_inbetween")))
    for t in (30, 42):
        q, r = (np.array(a.GetRotationsAttr().Get(t)) for a in (filled, truth))
        assert np.abs(np.abs(np.sum(q * r, axis=1)) - 1).max() < 1e-3
        assert np.abs(np.array(filled.GetTranslationsAttr().Get(t)) - truth.GetTranslationsAttr().Get(t)).max() < 1e-3
