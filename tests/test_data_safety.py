"""Issue 13: byte-identical undo in every format, crash-proof records, never touching what is not ours.

Every test compares the sha256 of every file in the shot's folder (hidden
ones included) before and after. `d` is a copy of examples/cesiumman
(CesiumMan, CC-BY 4.0, Cesium), the other shots are built from the same real
walk (tests/shots.py) or imported from CMU 01_01.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pxr import Sdf, Usd

from cli_run import ok, run, state
from cli_run import refused as bad
from shots import shot_reference, shot_sublayer

REPO = Path(__file__).resolve().parents[1]


def child(*args, pause: str | None = None, marker_dir: Path | None = None, umask: int | None = None):
    env = dict(os.environ)
    if pause:
        env["ANYMOLE_USD_TEST_PAUSE"] = f"{marker_dir}:{pause}"
    cmd = [sys.executable, "-c", "import sys; from anymole_usd.cli.main import main; sys.exit(main(sys.argv[1:]))",
           *[str(a) for a in args]]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


def wait_for(marker: Path, proc, timeout: float = 90.0) -> None:
    end = time.time() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child ended before {marker.name}: {proc.communicate()}")
        if time.time() > end:
            proc.kill()
            raise AssertionError(f"child never reached {marker.name}")
        time.sleep(0.02)


@pytest.fixture
def d(tmp_path):
    dest = tmp_path / "d"
    shutil.copytree(REPO / "examples" / "cesiumman", dest)
    return dest


@pytest.fixture(scope="module")
def cmu_shot(tmp_path_factory, data_dir):
    """CMU 01_01 (2,752 frames @ 120) imported as a 5.7 MB usda, built once."""
    folder = tmp_path_factory.mktemp("L")
    r = run("import", data_dir / "bvh" / "humanoid" / "cmu" / "01_01.bvh", "-o", folder / "shot.usda")
    assert r.exit_code == 0, r.output
    return folder / "shot.usda"


def hand_written(d: Path) -> Path:
    """The example shot as a person would type it: comments, metadata in their own order."""
    text = (d / "shot.usda").read_text()
    text = text.replace("#usda 1.0\n(\n", '#usda 1.0\n# Shot 010, blocking pass - typed by hand, keep this line\n(\n'
                        '    upAxis = "Y"  # before defaultPrim, on purpose\n', 1)
    text = text.replace('    timeCodesPerSecond = 24\n    upAxis = "Y"\n', "    timeCodesPerSecond = 24\n", 1)
    text = text.replace('        def SkelAnimation "blocking"', '        # context 1..24, keys at 36 and 48\n'
                        '        def SkelAnimation "blocking"', 1)
    (d / "shot.usda").write_text(text)
    assert Sdf.Layer.OpenAsAnonymous(str(d / "shot.usda")) is not None
    return d / "shot.usda"


def as_usdc(d: Path) -> Path:
    layer = Sdf.Layer.OpenAsAnonymous(str(d / "shot.usda"))
    layer.Export(str(d / "shot.usdc"))
    (d / "shot.usda").unlink()
    return d / "shot.usdc"


# -- item 3: undo is byte-identical in every format -------------------------------------------------------
@pytest.mark.parametrize("kind", ["usd-written", "hand-written", "usdc"])
def test_undo_is_byte_identical(d, kind):
    shot = {"usd-written": lambda: d / "shot.usda", "hand-written": lambda: hand_written(d),
            "usdc": lambda: as_usdc(d)}[kind]()
    before = state(d)
    ok("inbetween", shot, "--prior", "interp")
    if kind == "hand-written":  # the run edits two lines of the user's text, comments stay
        text = shot.read_text()
        assert "keep this line" in text and "# context 1..24" in text and "@./shot.inbetween.usda@" in text
    r = ok("inbetween", "--undo", shot)
    assert f"restored {shot}" in r.output and "removed" in r.output
    assert state(d) == before


@pytest.mark.parametrize("where", ["reference", "payload", "sublayer"])
def test_undo_is_byte_identical_when_samples_live_elsewhere(tmp_path, data_dir, where):
    if where == "sublayer":
        shot, _ = shot_sublayer(tmp_path, data_dir)
    else:
        shot, _ = shot_reference(tmp_path, data_dir)
        if where == "payload":
            layer = Sdf.Layer.FindOrOpen(str(shot))
            stage = Usd.Stage.Open(layer)
            hero = stage.GetPrimAtPath("/Shot/Hero")
            hero.GetReferences().ClearReferences()
            hero.GetPayloads().AddPayload("./char.usda")
            layer.Save()
    before = state(tmp_path)
    ok("inbetween", shot, "--prior", "interp")
    ok("inbetween", "--undo", shot)
    assert state(tmp_path) == before


@pytest.mark.parametrize("fmt", ["usda", "usdc"])
def test_layered_then_in_place_then_one_undo(d, fmt):
    shot = d / "shot.usda" if fmt == "usda" else as_usdc(d)
    before = state(d)
    ok("inbetween", shot, "--prior", "interp")
    r = ok("inbetween", shot, "--prior", "interp", "--in-place")
    assert not (d / "shot.inbetween.usda").exists()  # the earlier layered result went with the re-run
    assert "(in place, in the layer holding the samples)" in r.output
    ok("inbetween", "--undo", shot)
    assert state(d) == before
    assert "nothing to undo" in ok("inbetween", "--undo", shot).output


def test_undo_after_user_edit_removes_only_our_edits(d):
    shot = d / "shot.usda"
    ok("inbetween", shot, "--prior", "interp")
    with open(shot, "a") as fh:
        fh.write('\ndef Xform "AddedByTheUser"\n{\n}\n')
    r = ok("inbetween", "--undo", shot)
    assert "removed only anymole-usd's edits" in r.output and f"stripped {shot}" in r.output
    text = shot.read_text()
    assert 'def Xform "AddedByTheUser"' in text and "shot.inbetween.usda" not in text
    assert "rel skel:animationSource = </CesiumMan/Animations/blocking>" in text
    assert not (d / "shot.inbetween.usda").exists() and not (d / ".anymole").exists()


# -- item 1: records are atomic and verified; a damaged copy is never restored ----------------------------
def test_damaged_original_is_never_restored(d):
    shot = d / "shot.usda"
    ok("inbetween", shot, "--prior", "interp", "--in-place")
    (kept,) = (d / ".anymole" / "shot.usda" / "inbetween" / "originals").iterdir()
    kept.write_bytes(kept.read_bytes()[: kept.stat().st_size // 2])  # a truncated copy
    before = state(d)
    line = bad("inbetween", "--undo", shot, match="fails verification")
    assert str(kept) in line and "left as it is" in line
    assert state(d) == before


def test_stray_backup_without_a_record_is_left_alone(cmu_shot, tmp_path):
    folder = tmp_path / "L"
    shutil.copytree(cmu_shot.parent, folder)
    shot = folder / "shot.usda"
    (folder / "shot.usda.anymole-backup").write_bytes(shot.read_bytes()[:5177344])  # the reproduction
    before = state(folder)
    r = ok("inbetween", "--undo", shot)
    assert "nothing to undo" in r.output and "left alone" in r.output
    assert state(folder) == before


# -- item 2: never touch another shot's files --------------------------------------------------------------
def test_shot_that_sublayers_another_shots_result_leaves_it_alone(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    shutil.copytree(REPO / "examples" / "cesiumman", a)
    shutil.copytree(REPO / "examples" / "cesiumman", b)
    a_before = state(a)
    ok("inbetween", a / "shot.usda", "--prior", "interp")
    layer = Sdf.Layer.FindOrOpen(str(b / "shot.usda"))
    layer.subLayerPaths.append("../A/shot.inbetween.usda")
    layer.Save()
    a_done, b_before = state(a), state(b)
    ok("inbetween", b / "shot.usda", "--prior", "interp")
    ok("inbetween", "--undo", b / "shot.usda")
    assert state(a) == a_done and state(b) == b_before
    ok("inbetween", "--undo", a / "shot.usda")
    assert state(a) == a_before


# -- item 4: an existing -o that is not ours is refused, or kept for undo with --force ---------------------
def test_existing_output_is_refused_or_kept_with_force(d, tmp_path):
    other = d / "other.usda"
    other.write_text("#usda 1.0\n# someone's layer\n")
    before = state(d)
    bad("inbetween", d / "shot.usda", "-o", other, "--prior", "interp", match="is not this shot's earlier result")
    assert state(d) == before
    ok("inbetween", d / "shot.usda", "-o", other, "--prior", "interp", "--force")
    assert "someone's layer" not in other.read_text()
    ok("inbetween", "--undo", d / "shot.usda")
    assert state(d) == before  # other.usda is back byte for byte


def test_two_shots_cannot_share_one_output(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    shutil.copytree(REPO / "examples" / "cesiumman", a)
    shutil.copytree(REPO / "examples" / "cesiumman", b)
    out = tmp_path / "shared.usda"
    ok("inbetween", a / "shot.usda", "-o", out, "--prior", "interp")
    b_before, out_bytes = state(b), out.read_bytes()
    bad("inbetween", b / "shot.usda", "-o", out, "--prior", "interp", match="not this shot's earlier result")
    assert state(b) == b_before and out.read_bytes() == out_bytes


# -- item 5: outputs are USD layers; undo works when the result layer is gone ------------------------------
def test_output_must_be_a_usd_layer(d):
    before = state(d)
    bad("inbetween", d / "shot.usda", "-o", d / "res.txt", "--prior", "interp", match="must be a USD layer")
    assert state(d) == before


def test_undo_when_result_layer_is_gone(d):
    before = state(d)
    ok("inbetween", d / "shot.usda", "--prior", "interp")
    (d / "shot.inbetween.usda").unlink()
    r = ok("inbetween", "--undo", d / "shot.usda")
    assert "already gone" in r.output
    assert state(d) == before


# -- item 6: only our own records are restored -------------------------------------------------------------
def test_undo_ignores_backups_it_did_not_make(tmp_path, data_dir):
    shot, holder = shot_sublayer(tmp_path, data_dir)
    (tmp_path / "anim.usda.anymole-backup").write_text("not ours")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.usda.anymole-backup"
    outside.write_text("not ours either")
    before = state(tmp_path)
    ok("inbetween", shot, "--prior", "interp")
    ok("inbetween", "--undo", shot)
    assert state(tmp_path) == before and outside.read_text() == "not ours either"


# -- item 9: crashes at every step leave nothing behind after the next run or undo -------------------------
POINTS = ["begun", "planned", "staged", "pending", "installed1", "cleaned", "kept"]


def _in_place_case(cmu_shot, tmp_path):
    """A copy of the CMU shot and the --in-place run the crash tests kill: (folder, shot, state, args)."""
    folder = tmp_path / "L"
    shutil.copytree(cmu_shot.parent, folder)
    shot = folder / "shot.usda"
    args = ("inbetween", shot, "--in-place", "--prior", "interp", "--context", "0:1999", "--keys", "2300,2751")
    return folder, shot, state(folder), args


def _kill_at(point: str, args, markers: Path) -> None:
    """Run ``args`` in a child and kill it (by pid, SIGKILL) at exactly the crash point ``point``."""
    proc = child(*args, pause=point, marker_dir=markers)
    wait_for(markers / f"{point}.reached", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (markers / f"{point}.reached").unlink()


def test_kill_during_in_place_then_recover(cmu_shot, tmp_path):
    """Kill a real --in-place run (by pid) at each step; the next --undo, or a re-run then --undo, restores it."""
    folder, shot, original, args = _in_place_case(cmu_shot, tmp_path)
    markers = tmp_path / "markers"
    markers.mkdir()
    for i, point in enumerate(POINTS):
        _kill_at(point, args, markers)
        if i % 2:  # the next run cleans up first
            ok(*args)
            assert not [p for p in folder.iterdir() if p.name.startswith(".anymole-tmp")]
        r = ok("inbetween", "--undo", shot)
        assert state(folder) == original, (point, r.output)


def test_kill_while_keeping_originals_leaves_no_record(cmu_shot, tmp_path):
    """Killed after keeping the originals, before the journal (or while writing one: a dead run's temp in
    originals/): a re-run and its undo, or an undo alone, leave the folder exactly as it was."""
    from anymole_usd.atomic_files import TEMP_PREFIX, _host

    folder, shot, original, args = _in_place_case(cmu_shot, tmp_path)
    markers = tmp_path / "markers"
    markers.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid no process has now
    for rerun in (True, False):
        _kill_at("kept", args, markers)
        originals = folder / ".anymole" / "shot.usda" / "inbetween" / "originals"
        assert any(originals.iterdir())
        (originals / f"{TEMP_PREFIX}{dead.pid}@{_host()}.x").mkdir()  # as a kill mid-write leaves
        if rerun:
            ok(*args)
        ok("inbetween", "--undo", shot)
        assert state(folder) == original, rerun


def test_random_kills_never_leave_a_half_written_shot(cmu_shot, tmp_path):
    folder, shot, original, args = _in_place_case(cmu_shot, tmp_path)
    for delay in (0.8, 1.6, 2.4):
        proc = child(*args)
        time.sleep(delay)
        proc.kill()
        proc.wait()
        assert Sdf.Layer.OpenAsAnonymous(str(shot)) is not None  # whole, whatever the moment
        ok("inbetween", "--undo", shot)
        assert state(folder) == original, delay


# -- item 10: files and folders follow the user's umask ----------------------------------------------------
def test_result_follows_umask(d):
    proc = child("inbetween", d / "shot.usda", "--prior", "interp", umask=0o002)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert (d / "shot.inbetween.usda").stat().st_mode & 0o777 == 0o664
    assert (d / "shot.usda").stat().st_mode & 0o777 == 0o644  # an edited file keeps its own mode


def test_render_folder_follows_umask(d, tmp_path):
    old = os.umask(0o002)
    try:
        ok("render", d / "shot.usda", "-o", tmp_path / "renders", "--views", "front", "--size", "32x32",
           "--frames", "1:2")
    finally:
        os.umask(old)
    assert (tmp_path / "renders").stat().st_mode & 0o777 == 0o775


# -- item 11: two runs writing one layer: the second fails clearly, nothing is lost ------------------------
def _two_shots_one_sublayer(tmp_path, data_dir):
    shot, holder = shot_sublayer(tmp_path, data_dir)
    second = tmp_path / "shot2.usda"
    shutil.copy(shot, second)
    return shot, second, holder


def test_second_in_place_run_on_a_locked_layer_fails(tmp_path, data_dir):
    shot, second, holder = _two_shots_one_sublayer(tmp_path, data_dir)
    markers = tmp_path / "markers"
    markers.mkdir()
    proc = child("inbetween", shot, "--in-place", "--prior", "interp", pause="pending", marker_dir=markers)
    wait_for(markers / "pending.reached", proc)
    bad("inbetween", second, "--in-place", "--prior", "interp", match="is writing this file")
    (markers / "pending.reached").unlink()
    assert proc.wait(timeout=120) == 0


def test_layer_changed_under_a_run_is_not_overwritten(tmp_path, data_dir):
    shot, second, holder = _two_shots_one_sublayer(tmp_path, data_dir)
    markers = tmp_path / "markers"
    markers.mkdir()
    proc = child("inbetween", second, "--in-place", "--prior", "interp", pause="planned", marker_dir=markers)
    wait_for(markers / "planned.reached", proc)
    ok("inbetween", shot, "--in-place", "--prior", "interp")  # writes anim.usda while the other run waits
    written = holder.read_bytes()
    (markers / "planned.reached").unlink()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and b"changed while this run was working" in err
    assert holder.read_bytes() == written


# -- item 12: bad input of inbetween is exit 2, one line, nothing written ----------------------------------
@pytest.mark.parametrize("args,match", [
    (("--fps", "nan"), "--fps must be a number greater than 0"),
    (("--fps", "inf"), "--fps must be a number greater than 0"),
    (("--param", "window=nan"), "window"),
])
def test_bad_values_are_exit_2(d, args, match):
    before = state(d)
    bad("inbetween", d / "shot.usda", *args, match=match)
    assert state(d) == before


def test_seed_out_of_range_is_a_usage_error(d):
    before = state(d)
    r = run("inbetween", d / "shot.usda", "--seed", "2147483648")
    assert r.exit_code == 2 and "2147483648" in r.output
    assert state(d) == before


def test_output_folder_is_created_and_removed_by_undo(d):
    before = state(d)
    ok("inbetween", d / "shot.usda", "-o", d / "nodir" / "deeper" / "x.usda", "--prior", "interp")
    assert (d / "nodir" / "deeper" / "x.usda").exists()
    ok("inbetween", "--undo", d / "shot.usda")
    assert state(d) == before and not (d / "nodir").exists()


def test_undo_on_garbage_is_exit_2(tmp_path):
    garbage = tmp_path / "garbage.usda"
    garbage.write_text("#usda 1.0\n(\n  this is not usd\n")
    bad("inbetween", "--undo", garbage, match="not a readable USD file")


def test_read_only_folder_is_exit_2(d):
    os.chmod(d, 0o555)  # marked read-only: respected even by root
    try:
        before = state(d)
        bad("inbetween", d / "shot.usda", "--prior", "interp", match="read-only")
        assert state(d) == before
    finally:
        os.chmod(d, 0o755)


def test_read_only_shot_in_a_read_only_folder_writes_only_beside_the_output(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(REPO / "examples" / "cesiumman", data)
    (data / "CesiumMan.usdz").chmod(0o444)
    data.chmod(0o555)
    try:
        before = state(data)
        out = tmp_path / "work" / "walk.usda"
        ok("inbetween", data / "CesiumMan.usdz", "--prior", "interp", "--context", "1:20", "--keys", "40", "-o", out)
        assert state(data) == before and out.exists()
        ok("inbetween", "--undo", data / "CesiumMan.usdz", "-o", out)
        assert not out.exists() and state(data) == before
    finally:
        data.chmod(0o755)


# -- item 14 / issue 19.8-19.9: messages -------------------------------------------------------------------
def test_missing_shot_prints_only_the_error(tmp_path):
    r = run("inbetween", tmp_path / "nope.usda")
    assert r.exit_code == 2 and r.output.strip().splitlines() == [f"error: {tmp_path / 'nope.usda'}: no such file"]


def test_info_after_in_place_reports_the_gaps_filled(d):
    ok("inbetween", d / "shot.usda", "--prior", "interp", "--in-place")
    out = ok("info", d / "shot.usda").output
    assert "filled by the result below" in out and "gaps to fill" not in out


def test_json_edits_report_old_and_new_binding(d):
    report = json.loads(ok("inbetween", d / "shot.usda", "--prior", "interp", "--json").output)
    rel = report["edits"]["relationships"]
    skel = "/CesiumMan/Geom/Z_UP/Armature/Skeleton_torso_joint_1_3/Skeleton"
    assert rel == {skel: {"old": ["/CesiumMan/Animations/blocking"],
                          "new": ["/CesiumMan/Animations/blocking_inbetween"]}}


def test_config_file_choosing_the_video_prior_is_said(d, tmp_path, monkeypatch):
    monkeypatch.delenv("ANYMOLE_USD_VIDEO_MODEL", raising=False)
    monkeypatch.delenv("ANYMOLE_USD_CONFIG", raising=False)
    (tmp_path / "anymole-usd.toml").write_text('[video]\nmodel = "/no/such/model"\n')
    r = run("inbetween", d / "shot.usda", cwd=tmp_path)
    assert "prior 'video' chosen because the video model is set by config" in r.output
    assert "anymole-usd.toml" in r.output


# -- commands compose: a retarget under an inbetween, each with its own record ----------------------------
def test_retarget_then_inbetween_compose_and_undo_in_order(tmp_path, data_dir):
    target = tmp_path / "male.usda"
    layer = Sdf.Layer.FindOrOpen(str(data_dir / "usd" / "AnimLabSimpleMale.usd"))
    layer.Export(str(target))
    before = state(tmp_path)
    walk = data_dir / "bvh" / "humanoid" / "bandai_namco"
    source = sorted(walk.glob("*walk*.bvh"))[0]
    ok("retarget", source, "--to", target)
    retargeted = state(tmp_path)
    info = json.loads(ok("info", target, "--json").output)
    (skel,) = [s for s in info["skeletons"] if s["animation"]]
    ctx0 = skel["authored_range"][0]
    ok("inbetween", target, "--prior", "interp", "--context", f"{ctx0:g}:{ctx0 + 30:g}",
       "--keys", f"{ctx0 + 60:g}")
    assert (tmp_path / "male.inbetween.usda").exists() and (tmp_path / "male.retarget.usda").exists()
    bad("retarget", "--undo", "--to", target, match="undo it first")  # the inbetween result builds on it
    ok("inbetween", "--undo", target)
    assert state(tmp_path) == retargeted
    ok("retarget", "--undo", "--to", target)
    assert state(tmp_path) == before
