"""Motion library: build, incremental updates, tags, relative paths, queries (real files from ../shared/data)."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from anymole_usd.cli.main import cli

BANDAI = "bvh/humanoid/bandai_namco"
WALK = "dataset-1_walk_normal_001.bvh"
RUN = "dataset-2_run_normal_021.bvh"
KICK = "dataset-1_kick_normal_001.bvh"
TIRED = "dataset-1_walk_tired_001.bvh"


def run(*args, ok=True):
    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert r.exit_code == 0, r.output
    return r


def build_json(*args) -> dict:
    r = run("library", "build", *args, "--json")
    return json.loads(r.output)


@pytest.fixture()
def sources(tmp_path, data_dir):
    """A project folder with a library folder and a few Bandai clips beside it (copied: they get edited)."""
    src = tmp_path / "project" / "mocap"
    src.mkdir(parents=True)
    for name in (WALK, RUN, KICK):
        shutil.copy(data_dir / BANDAI / name, src / name)
    return tmp_path / "project"


def test_build_incremental_changed_missing(sources, data_dir):
    lib = sources / "lib"
    first = build_json(lib, sources / "mocap")
    assert len(first["added"]) == 3 and first["clips"] == 3 and first["skeletons_updated"] == ["mocap"]
    from anymole_usd.library import Library
    from anymole_usd.library.features import node_times

    library = Library.open(lib)
    clips = library.clips()
    assert sum(len(node_times(c.frames, c.fps)) for c in clips) == first["nodes"] == library.nodes("mocap").size
    manifest = json.loads((lib / "manifest.json").read_text())
    assert all(not os.path.isabs(f["path"]) for f in manifest["files"].values())  # relative to the library

    # Adding a file leaves the others untouched.
    shutil.copy(data_dir / BANDAI / TIRED, sources / "mocap" / TIRED)
    second = build_json(lib, sources / "mocap" / TIRED)
    assert len(second["added"]) == 1 and len(second["unchanged"]) == 3 and second["clips"] == 4

    # A changed file is re-read and its clip replaced (frames differ), found without naming it.
    shutil.copy(data_dir / BANDAI / "dataset-1_punch_normal_001.bvh", sources / "mocap" / KICK)
    third = build_json(lib)
    assert len(third["replaced"]) == 1 and third["replaced"][0].endswith(KICK) and len(third["unchanged"]) == 3
    kick = [c for c in Library.open(lib).clips() if c.file.endswith(KICK)]
    assert len(kick) == 1 and kick[0].frames == 224  # the punch take's length now

    # A deleted file is reported missing; its clip leaves the nodes and comes back with the file.
    (sources / "mocap" / RUN).unlink()
    fourth = build_json(lib)
    assert len(fourth["missing"]) == 1 and fourth["clips"] == 3
    info = json.loads(run("library", "info", lib, "--json").output)
    assert len(info["missing"]) == 1 and info["missing"][0].endswith(RUN)
    library = Library.open(lib)
    assert not any(c.file.endswith(RUN) for c in library.clips())
    assert set(np.unique(library.nodes("mocap").clip)) == {c.id for c in library.clips()}
    shutil.copy(data_dir / BANDAI / RUN, sources / "mocap" / RUN)
    fifth = build_json(lib)
    assert len(fifth["added"]) == 1 and fifth["clips"] == 4 and not fifth["missing"]
    # Only stale array files are removed: one per skeleton remains, one decoded copy per file present.
    assert len(list((lib / "skeletons").glob("*.npz"))) == 1
    assert len(list((lib / "motion").glob("*.npz"))) == 4


def test_decoded_copy_serves_clips_without_parsing_sources(sources, monkeypatch):
    """`inbetween --library` and `compose` read a clip's rig and samples from the build's decoded copy, equal to
    the source's; a damaged copy falls back to the source, a changed source is still refused."""
    lib = sources / "lib"
    build_json(lib, sources / "mocap")
    from anymole_usd.errors import InputError
    from anymole_usd.library import Library, store
    from anymole_usd.library.sources import read_clips

    library = Library.open(lib)
    expected = {c.id: next(s for s in read_clips(library.source_path(c.file))[0] if s.label == c.label)
                for c in library.clips()}

    def no_parsing(path):
        raise AssertionError(f"source parsed: {path}")

    monkeypatch.setattr(store, "read_clips", no_parsing)
    for c in library.clips():
        got, want = library.source(c), expected[c.id]
        assert got.skeleton.joints == want.skeleton.joints and got.motion.joints == want.motion.joints
        np.testing.assert_array_equal(got.skeleton.parents, want.skeleton.parents)
        np.testing.assert_array_equal(got.skeleton.rest_transforms, want.skeleton.rest_transforms)
        np.testing.assert_array_equal(got.motion.rotations, want.motion.rotations)  # bit for bit
        np.testing.assert_array_equal(got.motion.translations, want.motion.translations)
        np.testing.assert_array_equal(got.motion.scales, want.motion.scales)
        assert got.motion.fps == want.motion.fps and got.meters_per_unit == want.meters_per_unit
        assert library.character(c)[0].joints == want.skeleton.joints  # BVH: no mesh, no parsing either
    monkeypatch.undo()

    # A library built before decoded copies were kept gets them on its next build, nothing else re-read.
    shutil.rmtree(lib / "motion")
    manifest = json.loads((lib / "manifest.json").read_text())
    for rec in manifest["files"].values():
        rec.pop("motion")
    (lib / "manifest.json").write_text(json.dumps(manifest))
    again = build_json(lib)
    assert len(again["unchanged"]) == 3 and not again["added"] and not again["replaced"]
    assert len(list((lib / "motion").glob("*.npz"))) == 3
    assert json.loads((lib / "manifest.json").read_text())["skeletons"] == manifest["skeletons"]

    clip = library.clips()[0]
    for copy in (lib / "motion").glob("*.npz"):
        copy.write_bytes(b"not an npz")
    fallback = Library.open(lib).motion(clip)
    np.testing.assert_allclose(fallback.rotations, expected[clip.id].motion.rotations, atol=1e-12)
    with open(Library.open(lib).source_path(clip.file), "a") as fh:
        fh.write("\n")
    with pytest.raises(InputError, match="changed since the library was built"):
        Library.open(lib).motion(clip)


def test_moved_library_and_sources_still_read(sources, tmp_path):
    lib = sources / "lib"
    build_json(lib, sources / "mocap")
    moved = tmp_path / "elsewhere" / "project"
    moved.parent.mkdir()
    shutil.move(str(sources), str(moved))
    from anymole_usd.library import Library

    library = Library.open(moved / "lib")
    clip = library.clips()[0]
    assert library.source_path(clip.file).startswith(str(moved))
    motion = library.motion(clip)
    assert motion.num_frames == clip.frames
    # Editing a source without rebuilding is refused, naming the file.
    src = library.source_path(clip.file)
    with open(src, "a") as fh:
        fh.write("\n")
    from anymole_usd.errors import InputError

    with pytest.raises(InputError, match="changed since the library was built"):
        Library.open(moved / "lib").motion(clip)


def test_tags_from_csv_and_custom_data(sources, tmp_path):
    from pxr import Usd, Vt

    run("import", sources / "mocap" / WALK, "-o", sources / "walk.usda")
    stage = Usd.Stage.Open(str(sources / "walk.usda"))
    anim = next(p for p in stage.Traverse() if p.GetTypeName() == "SkelAnimation")
    anim.SetCustomDataByKey("tags", Vt.StringArray(["stroll", "loco"]))
    stage.GetRootLayer().Save()
    csv = tmp_path / "tags.csv"
    csv.write_text("file,start,end,tag\n"
                   f"{RUN},,,run\n"
                   f"mocap/{KICK},0.5,2.0,kick\n"
                   f"{os.path.splitext(WALK)[0]},,,walk\n")
    lib = sources / "lib"
    build_json(lib, sources / "mocap", sources / "walk.usda", "--tags", csv)
    from anymole_usd.library import Library

    library = Library.open(lib)
    by_file = {os.path.basename(c.file): c for c in library.clips()}
    assert by_file[RUN].tag_names() == ["run"]
    kick = by_file[KICK].tags
    assert kick == [{"tag": "kick", "start": 0.5, "end": 2.0, "source": "csv"}]
    assert by_file["walk.usda"].tag_names() == ["loco", "stroll"]  # customData of the SkelAnimation
    assert by_file[WALK].tag_names() == ["walk"]
    info = json.loads(run("library", "info", lib, "--json").output)
    tags = {k: v for s in info["skeletons"] for k, v in s["tags"].items()}
    assert tags["kick"] == pytest.approx(1.5) and tags["run"] == pytest.approx(by_file[RUN].duration, abs=1e-3)
    # A later build without --tags keeps the csv tags.
    build_json(lib)
    assert {os.path.basename(c.file): c for c in Library.open(lib).clips()}[RUN].tag_names() == ["run"]


@pytest.mark.parametrize("row, message", [
    ("walk.bvh,1,x,walk", "line 3: end 'x' is not a number"),
    ("walk.bvh,3,2,walk", "line 3: end 2 s is not after start 3 s"),
    ("nosuchfile.bvh,,,walk", "line 3: 'nosuchfile.bvh' names no clip"),
    ("walk.bvh,,,", "line 3: bad tag"),
    ("walk.bvh,,walk", "line 3: expected 4 columns"),
])
def test_bad_tags_file_is_exit_2_naming_the_line(sources, tmp_path, row, message):
    shutil.copy(sources / "mocap" / WALK, sources / "mocap" / "walk.bvh")
    csv = tmp_path / "tags.csv"
    csv.write_text(f"file,start,end,tag\nwalk.bvh,,,walk\n{row}\n")
    lib = sources / "lib"
    r = run("library", "build", lib, sources / "mocap" / "walk.bvh", "--tags", csv, ok=False)
    assert r.exit_code == 2 and message in r.output and str(csv) in r.output
    assert not (lib / "manifest.json").exists()  # nothing written


def test_bad_inputs_are_exit_2(tmp_path, data_dir):
    r = run("library", "build", tmp_path / "lib", tmp_path / "nothing.bvh", ok=False)
    assert r.exit_code == 2 and "no such file" in r.output
    readme = data_dir / "README.md"
    r = run("library", "build", tmp_path / "lib", readme, ok=False)
    assert r.exit_code == 2 and "not a motion file" in r.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    r = run("library", "build", tmp_path / "full", data_dir / BANDAI / WALK, ok=False)
    assert r.exit_code == 2 and "not empty" in r.output
    r = run("library", "info", tmp_path / "nolib", ok=False)
    assert r.exit_code == 2 and "not a motion library" in r.output


def test_query_finds_the_frame_itself_and_honours_exclusion(sources):
    lib = sources / "lib"
    build_json(lib, sources / "mocap")
    from anymole_usd.library import Library

    library = Library.open(lib)
    sk = library.skeleton()
    walk = next(c for c in library.clips() if c.file.endswith(WALK))
    src = library.source(walk)
    frames = np.array([30, 90, 150])
    q = library.features(sk.key, src.skeleton, src.motion.select(np.arange(len(src.motion.times))))[frames]
    hits = library.query(sk.key, q, k=5)
    assert hits.node.shape == (3, 5)
    assert np.all(hits.clip[:, 0] == walk.id)
    assert np.allclose(hits.frame[:, 0], frames, atol=1)  # nodes every 1/30 s of a 30 fps clip
    assert np.all(hits.distance[:, 0] < 0.02) and np.all(np.diff(hits.distance, axis=1) >= 0)
    other = library.query(sk.key, q, k=5, exclude_clips=[walk.id])
    assert not np.any(other.clip == walk.id) and np.all(other.distance[:, 0] > hits.distance[:, 0])
    assert library.skeleton_for(src.skeleton.short_names).key == sk.key


def test_changed_feature_definition_rebuilds(sources):
    lib = sources / "lib"
    build_json(lib, sources / "mocap")
    from anymole_usd.errors import InputError
    from anymole_usd.library import Library

    manifest = json.loads((lib / "manifest.json").read_text())
    manifest["features"]["definition"] = "0:old"
    (lib / "manifest.json").write_text(json.dumps(manifest))
    stale = Library.open(lib)
    assert not stale.up_to_date
    with pytest.raises(InputError, match="another feature definition"):
        stale.nodes("mocap")
    report = build_json(lib)
    assert len(report["replaced"]) == 3 and Library.open(lib).up_to_date


def test_gltf_and_usd_clips(tmp_path, data_dir):
    lib = tmp_path / "lib"
    report = build_json(lib, data_dir / "library/gltf/nonhumanoid/mesh2motion/horse-animations.glb",
                        data_dir / "usd/CesiumMan.usdz", data_dir / "usd/RiggedFigure.usdz")
    from anymole_usd.library import Library

    library = Library.open(lib)
    horse = library.clips("horse-animations")
    labels = {c.label for c in horse}
    assert {"Walk", "Trot", "Run", "Idle", "Turn_Left"} <= labels and all(c.has_mesh for c in horse)
    cesium = library.clips("CesiumMan")
    assert len(cesium) == 1 and cesium[0].has_mesh and cesium[0].frames == 48 and cesium[0].fps == 24
    assert any("RiggedFigure" in n and "2 samples" in n for n in report["notes"])  # too sparse for a clip
    text = run("library", "info", lib).output
    assert "skeleton horse-animations (56 joints)" in text and "CesiumMan" in text
