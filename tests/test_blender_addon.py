"""The Blender add-on: `anymole-usd blender-addon` writes an installable zip; its USD text round trip works against
the real tool (always, no Blender needed); and, with `bpy`, the whole "Fill gaps" button inside Blender.

The Blender test needs a Python with `bpy` 4.2 (Python 3.11 only, and it wants numpy 1.x, so a separate
environment from the project's):

    python3.11 -m venv ~/.venv-blender && ~/.venv-blender/bin/pip install bpy==4.2.0 "numpy<2"
    ANYMOLE_USD_BLENDER_PYTHON=~/.venv-blender/bin/python python -m pytest -q tests/test_blender_addon.py

It runs whenever `bpy` is importable here or ANYMOLE_USD_BLENDER_PYTHON names such a Python, and is skipped
otherwise. Blender runs in a subprocess with its own user scripts folder (nothing under ~/.config is touched).
"""
import ast
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from anymole_usd.cli.main import cli
from click.testing import CliRunner

ADDON_DIR = Path(__file__).resolve().parents[1] / "plugins" / "blender_addon" / "anymole_usd_fill"
WALK = ("bvh", "humanoid", "bandai_namco", "dataset-1_walk_normal_001.bvh")
STDLIB = {"json", "os", "re", "shlex", "shutil", "subprocess", "tempfile", "threading", "time"}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def addon_module(name: str):
    """A Blender-free module of the add-on (``transforms``, ``usda``), imported without its bpy ``__init__``."""
    if "anymole_usd_fill_nobpy" not in sys.modules:
        package = types.ModuleType("anymole_usd_fill_nobpy")
        package.__path__ = [str(ADDON_DIR)]
        sys.modules["anymole_usd_fill_nobpy"] = package
    return importlib.import_module(f"anymole_usd_fill_nobpy.{name}")


def test_addon_zip_installs_as_one_module(tmp_path):
    out = tmp_path / "anymole_usd_addon.zip"
    r = run("blender-addon", "-o", out, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["module"] == "anymole_usd_fill" and summary["executable"].endswith("anymole-usd")
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert "anymole_usd_fill/__init__.py" in names and {n.split("/")[0] for n in names} == {"anymole_usd_fill"}
        sources = {n: z.read(n).decode("utf-8") for n in names}
    init = ast.parse(sources["anymole_usd_fill/__init__.py"])
    info = next(n.value for n in init.body if isinstance(n, ast.Assign) and n.targets[0].id == "bl_info")
    assert ast.literal_eval(info)["blender"] >= (4, 2, 0)
    # Blender-side code only: never the tool, torch, Warp or pxr (Blender's Python has none of them).
    for name, text in sources.items():
        for node in ast.walk(ast.parse(text, name)):
            if isinstance(node, ast.Import):
                mods = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module.split(".")[0]]
            else:
                continue
            assert set(mods) <= STDLIB | {"bpy", "mathutils", "numpy"}, (name, mods)
    assert run("blender-addon", "-o", tmp_path / "x.tar").exit_code == 2


def test_transforms_round_trip():
    t = addon_module("transforms")
    rng = np.random.default_rng(0)
    q = rng.normal(size=(200, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 0] < 0] *= -1
    m = t.from_trs(rng.normal(size=(200, 3)), q, rng.uniform(0.5, 2, size=(200, 3)))
    tt, qq, ss = t.to_trs(m)
    assert np.allclose(t.from_trs(tt, qq, ss), m) and np.allclose(qq, q)
    flipped = t.continuous(np.stack([q[0], -q[0], q[0]]))
    assert (np.sum(flipped[1:] * flipped[:-1], axis=1) > 0).all()


def test_usda_round_trip_through_the_tool(tmp_path, data_dir):
    """The shot the add-on writes is read by the tool as written, and the add-on reads the tool's result exactly
    as USD composes it (known samples untouched, every frame between the first and last key)."""
    from anymole_usd.kinematics import local_matrices
    from anymole_usd.plugins.io.bvh import read_bvh
    from anymole_usd.plugins.render.scene import load_scene

    usda = addon_module("usda")
    clip = read_bvh(data_dir.joinpath(*WALK), frames=slice(0, 61))
    skel, motion = clip.skeleton, clip.motion
    keyed = np.r_[0:30, 45, 60]
    local = np.swapaxes(local_matrices(motion.rotations, motion.translations, motion.scales), -1, -2)[keyed]
    rest = np.swapaxes(skel.rest_transforms, -1, -2)  # Blender matrices are column-vector: the transpose
    bind = np.swapaxes(local_matrices(*[np.asarray(a)[None] for a in _rest_trs(skel)])[0], -1, -2)
    names = [f"{j.rsplit('/', 1)[-1]}.x" for j in skel.joints]  # Blender names need not be valid USD names
    tokens = usda.joint_tokens(names, skel.parents)
    assert all("." not in tok for tok in tokens) and tokens[1] == "joint_Root_x/Hips_x"
    shot = tmp_path / "shot.usda"
    usda.write_shot(str(shot), tokens, rest, bind, np.eye(4), keyed + 1.0, local, 30.0, 0.01)
    written = load_scene(shot, times=keyed + 1.0).motion
    assert np.allclose(written.times, keyed + 1.0)
    assert np.allclose(written.translations, motion.translations[keyed], atol=1e-4)
    dots = np.abs(np.sum(written.rotations * motion.rotations[keyed], axis=-1))
    assert np.allclose(dots, 1.0, atol=1e-6)

    r = run("inbetween", shot, "--prior", "interp", "-o", tmp_path / "result.usda", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    prim = report["animations"][0]["result_prim"].rsplit("/", 1)[-1]
    joints, times, tr, q, s = usda.read_animation(report["output"], prim)
    composed = load_scene(shot).motion  # what USD composes now, in skeleton order
    assert joints == tokens and np.allclose(times, np.arange(1, 62)) and np.allclose(composed.times, times)
    assert np.allclose(tr, composed.translations, atol=1e-5)
    assert np.allclose(np.abs(np.sum(q[..., [1, 2, 3, 0]] * composed.rotations, axis=-1)), 1.0, atol=1e-6)
    assert np.allclose(s, composed.scales, atol=1e-3)


def _rest_trs(skel):
    """Translation, rotation, scale of the skeleton's armature-space rest matrices (what Blender calls bind)."""
    from anymole_usd.kinematics import compose_local_matrices, decompose_matrices

    bind = compose_local_matrices(skel.rest_transforms[None], skel.parents)[0]
    return decompose_matrices(bind)


def blender_python() -> str | None:
    if importlib.util.find_spec("bpy") is not None:
        return sys.executable
    candidate = os.environ.get("ANYMOLE_USD_BLENDER_PYTHON")
    return candidate if candidate and os.access(candidate, os.X_OK) else None


# Runs inside Blender's Python: install the zip the normal way, import a BVH, delete keys, press "Fill gaps".
CHECK = r'''
import json, sys
import bpy
import numpy as np

zip_path, bvh, exe, out = sys.argv[1:5]
bpy.ops.wm.read_factory_settings(use_empty=True)
assert bpy.ops.preferences.addon_install(filepath=zip_path) == {"FINISHED"}
assert bpy.ops.preferences.addon_enable(module="anymole_usd_fill") == {"FINISHED"}
prefs = bpy.context.preferences.addons["anymole_usd_fill"].preferences
prefs.prior = "interp"
bpy.ops.import_anim.bvh(filepath=bvh, global_scale=0.01, update_scene_fps=True, update_scene_duration=True)
obj = bpy.context.active_object
original = obj.animation_data.action
keep = set(range(1, 61)) | {91, 121}  # context 1-60, keys 91 and 121: gaps 61-90 and 92-120
for fc in original.fcurves:
    for kp in reversed(list(fc.keyframe_points)):
        if int(round(kp.co[0])) not in keep:
            fc.keyframe_points.remove(kp, fast=True)
    fc.update()

def keys(action):
    got = {}
    for fc in action.fcurves:
        co = np.zeros(2 * len(fc.keyframe_points))
        fc.keyframe_points.foreach_get("co", co)
        got[f"{fc.data_path}[{fc.array_index}]"] = co
    return got

def pose(frame):
    bpy.context.scene.frame_set(frame)
    return np.array([[list(r) for r in pb.matrix] for pb in obj.pose.bones])

def press():
    try:
        return sorted(bpy.ops.anim.anymole_fill_gaps()), None
    except RuntimeError as exc:  # an ERROR report raises in background mode
        return None, str(exc).strip()

before = keys(original)
known = {f: pose(f) for f in (1, 60, 91, 121)}
res = {}
prefs.executable = "/nonexistent/anymole-usd"
res["bad_executable"] = press()
prefs.executable, prefs.extra = exe, "--param nonesuch=1"
res["bad_option"] = press()
res["actions_after_errors"] = sorted(a.name for a in bpy.data.actions)
prefs.extra = ""
res["fill"] = press()
new = obj.animation_data.action
after = keys(new)
now = keys(original)
res.update(
    original=original.name, assigned=new.name, fake_user=original.use_fake_user,
    original_unchanged=set(now) == set(before) and all(np.array_equal(now[k], before[k]) for k in before),
    bones=len(obj.pose.bones), new_curves=len(after),
    new_frames=sorted({tuple(np.round(v[0::2], 3).tolist()) for v in after.values()}),
    channels=sorted({k.split("[")[-2].rsplit(".", 1)[-1] for k in after}),
    known_pose_error=max(float(np.abs(pose(f) - known[f]).max()) for f in known),
)
bpy.context.view_layer.objects.active = obj
obj.animation_data.action = original
res["refill"] = press()
res["actions"] = sorted(a.name for a in bpy.data.actions)
json.dump(res, open(out, "w"))
'''


def test_fill_gaps_in_blender(tmp_path, data_dir):
    python = blender_python()
    if python is None:
        pytest.skip("no bpy: set ANYMOLE_USD_BLENDER_PYTHON to a Python with bpy 4.2 (see this file's docstring)")
    addon = tmp_path / "addon.zip"
    assert run("blender-addon", "-o", addon).exit_code == 0
    script, out = tmp_path / "check.py", tmp_path / "result.json"
    script.write_text(CHECK)
    exe = Path(sys.executable).with_name("anymole-usd")
    env = dict(os.environ, BLENDER_USER_SCRIPTS=str(tmp_path / "scripts"))
    done = subprocess.run([python, str(script), str(addon), str(data_dir.joinpath(*WALK)), str(exe), str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0 and out.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    res = json.loads(out.read_text())
    # errors land in Blender's report area, one line each, and leave no action behind
    assert res["bad_executable"][0] is None and "executable not found" in res["bad_executable"][1]
    assert res["bad_option"][0] is None and "nonesuch" in res["bad_option"][1]
    assert res["actions_after_errors"] == [res["original"]]
    # the result: a new action, every frame from the first key to the last, on every bone channel
    assert res["fill"] == [["FINISHED"], None]
    assert res["assigned"] == res["original"] + "_inbetween" and res["fake_user"]
    assert res["original_unchanged"]
    assert res["new_frames"] == [[float(f) for f in range(1, 122)]]
    assert res["channels"] == ["location", "rotation_euler", "scale"]  # the BVH's bones are Euler (ZXY)
    assert res["new_curves"] == res["bones"] * 9
    assert res["known_pose_error"] < 1e-4  # keyed poses come back as they were
    # pressing again replaces the in-between action rather than adding another
    assert res["refill"] == [["FINISHED"], None]
    assert res["actions"] == sorted([res["original"], res["original"] + "_inbetween"])
