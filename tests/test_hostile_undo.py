"""Undo after sequences a demanding user runs (found by trying the tool as a hostile user would).

Each test starts from real animation (CesiumMan, CC-BY 4.0, Cesium; tests/shots.py) and checks the
bytes of every file in the folder (sha256, hidden files included) or the samples USD reads.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pxr import Sdf

from cli_run import ok, refused, state
from shots import shot_root, shot_sublayer

ANIM = "/Char/Rig/Anim"


def samples(path: Path, prim: str = ANIM) -> dict[str, dict[float, np.ndarray]]:
    layer = Sdf.Layer.OpenAsAnonymous(str(path))
    out = {}
    for name in ("translations", "rotations", "scales"):
        p = Sdf.Path(prim).AppendProperty(name)
        out[name] = {t: np.asarray(layer.QueryTimeSample(p, t)) for t in layer.ListTimeSamplesForPath(p)}
    return out


def user_edit(path: Path) -> None:
    with open(path, "a") as fh:
        fh.write('\ndef Xform "AddedByTheUser"\n{\n}\n')


def test_undo_in_place_over_dense_samples_after_a_user_edit_gives_the_samples_back(tmp_path, data_dir):
    # A dense clip held out with --context/--keys: the in-place run overwrites authored samples.
    shot = shot_root(tmp_path, data_dir, times=list(range(1, 49)))
    before = samples(shot)
    ok("inbetween", shot, "--in-place", "--context", "1:24", "--keys", "36,48", "--prior", "interp")
    assert any(not np.allclose(before["rotations"][t], v) for t, v in samples(shot)["rotations"].items())
    user_edit(shot)
    r = ok("inbetween", "--undo", shot)  # was exit 1: TypeError setting the kept time samples
    assert f"stripped {shot}" in r.output and "kept yours" in r.output
    after = samples(shot)
    for name in before:  # the user's own values at every time, not holes where the run wrote
        assert sorted(after[name]) == sorted(before[name])
        assert all(np.allclose(after[name][t], before[name][t]) for t in before[name])
    layer = Sdf.Layer.OpenAsAnonymous(str(shot))
    assert layer.GetPrimAtPath("/AddedByTheUser") is not None
    assert not [a.name for a in layer.GetPrimAtPath(ANIM).attributes if a.name.startswith("anymole:")]


def test_two_shots_in_place_on_one_shared_sublayer_undo_in_either_order(tmp_path, data_dir):
    for first in ("shot.usda", "shotB.usda"):
        folder = tmp_path / first
        folder.mkdir()
        shot, _ = shot_sublayer(folder, data_dir)
        (folder / "shotB.usda").write_bytes(shot.read_bytes())
        before = state(folder)
        ok("inbetween", shot, "--in-place")
        ok("inbetween", folder / "shotB.usda", "--in-place", "--prior", "interp")
        second = "shotB.usda" if first == "shot.usda" else "shot.usda"
        ok("inbetween", "--undo", folder / first)  # was exit 1 when the shared layer had changed since
        ok("inbetween", "--undo", folder / second)
        assert state(folder) == before


def _cesium(tmp_path: Path, name: str = "shot.usda") -> Path:
    import shutil

    folder = tmp_path / "d"
    shutil.copytree(Path(__file__).resolve().parents[1] / "examples" / "cesiumman", folder)
    if name != "shot.usda":
        (folder / "shot.usda").rename(folder / name)
    return folder / name


def test_a_damaged_or_hand_made_record_is_refused_and_nothing_changes(tmp_path):
    import json

    shot = _cesium(tmp_path)
    ok("inbetween", shot, "--prior", "interp")
    record = shot.parent / ".anymole" / "shot.usda" / "inbetween" / "journal.json"
    good = json.loads(record.read_text())
    outside = json.loads(record.read_text())  # an edited file named outside the shot's folder
    edited = next(f for f in outside["files"] if f["original"])
    edited["path"] = "../../../../etc/hosts"
    created = json.loads(record.read_text())  # a "created" file that is no USD layer
    next(f for f in created["files"] if not f["original"])["path"] = "../victim.txt"
    escape = json.loads(record.read_text())  # a digest naming a file outside originals/
    next(f for f in escape["files"] if f["original"])["original"]["sha256"] = "../../../../../../etc/passwd"
    for bad in ({"files": 5}, [], {"files": [{"path": 3}]}, {"state": "pending"}, outside, created, escape):
        record.write_text(json.dumps(bad))
        before = state(shot.parent)
        # was exit 1 (TypeError/AttributeError) for the first ones; the others were acted on
        refused("inbetween", "--undo", shot, match="record of an earlier run is damaged")
        refused("inbetween", shot, match="record of an earlier run is damaged")
        assert state(shot.parent) == before
    record.write_text(json.dumps(good))
    ok("inbetween", "--undo", shot)


def test_a_shot_name_near_the_file_systems_limit(tmp_path):
    # 249 + ".usda" is a legal name; its lock file "<name>.lock" was not (every run failed), and a
    # result name over 255 bytes was an internal error.
    shot = _cesium(tmp_path, "y" * 249 + ".usda")
    before = state(shot.parent)
    refused("inbetween", shot, match="file name too long")
    assert state(shot.parent) == before
    ok("inbetween", shot, "-o", shot.parent / ("o" * 250 + ".usda"))
    ok("inbetween", shot, "--prior", "interp", "-o", shot.parent / "r.usda")
    ok("inbetween", "--undo", shot)
    assert state(shot.parent) == before


def test_undo_says_so_when_the_record_was_deleted_but_the_result_is_still_composed(tmp_path):
    # A user cleaning hidden folders deletes .anymole: undo said only "nothing to undo" while the shot
    # still composed the result.
    import shutil

    shot = _cesium(tmp_path)
    ok("inbetween", shot, "--prior", "interp")
    shutil.rmtree(shot.parent / ".anymole")
    r = ok("inbetween", "--undo", shot)
    assert "still composes ./shot.inbetween.usda" in r.output and "record of that run" in r.output
    fresh = _cesium(tmp_path / "fresh")
    assert "still composes" not in ok("inbetween", "--undo", fresh).output
    assert "still composes" not in ok("retarget", "--undo", "--to", shot).output
