"""`anymole-usd batch` on a folder of real shots: process pool and a real local Ray instance.

The folder: two copies of the CesiumMan example (samples in the usdz under
shot.usda), a Bandai walk and a Truebones crab imported from BVH with gaps cut
out of them (samples in the root layer), a garbage .usda, a prop without a
skeleton and a hidden folder. Every good shot must be done, the garbage one
failed with its exit-2 message, exit code 2; --resume skips what is done; a
worker killed mid-shot leaves its shot untouched and is retried; Ctrl-C stops
the batch with every shot done or untouched.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from pxr import Sdf

from anymole_usd.batch.runner import run_batch
from anymole_usd.cli.main import cli
from anymole_usd.pipeline import InbetweenOptions

REPO = Path(__file__).resolve().parents[1]
GOOD = ["cesium_a/shot.usda", "cesium_b/shot.usda", "walk.usda", "crab.usda"]
GARBAGE = "broken.usda"


def _bvh_shot(source: Path, out: Path, keep: list[int]) -> None:
    """A 60-frame import with only ``keep`` time codes left (context + keys): the gaps to fill."""
    from anymole_usd.plugins.io.base import ImportOptions
    from anymole_usd.plugins.io.convert import import_to_usd

    import_to_usd(str(source), str(out), ImportOptions(frames=slice(0, 60), fps=30.0))
    layer = Sdf.Layer.FindOrOpen(str(out))
    for spec in _attribute_specs(layer):
        for t in layer.ListTimeSamplesForPath(spec.path):
            if int(round(t)) not in keep:
                layer.EraseTimeSample(spec.path, t)
    layer.Save()


def _attribute_specs(layer):
    found = []
    layer.Traverse(Sdf.Path.absoluteRootPath,
                   lambda p: found.append(layer.GetAttributeAtPath(p)) if p.IsPropertyPath() else None)
    return [s for s in found if s is not None and layer.GetNumTimeSamplesForPath(s.path)]


@pytest.fixture(scope="module")
def template(tmp_path_factory, data_dir) -> Path:
    root = tmp_path_factory.mktemp("batch-template")
    for name in ("cesium_a", "cesium_b"):
        (root / name).mkdir()
        shutil.copy(REPO / "examples" / "cesiumman" / "shot.usda", root / name / "shot.usda")
        shutil.copy(REPO / "examples" / "cesiumman" / "CesiumMan.usdz", root / name / "CesiumMan.usdz")
    keep = list(range(0, 20)) + [40, 59]
    _bvh_shot(data_dir / "bvh" / "humanoid" / "bandai_namco" / "dataset-1_walk_normal_001.bvh", root / "walk.usda", keep)
    _bvh_shot(data_dir / "bvh" / "nonhumanoid" / "truebones" / "Crabnew_Crab-dance-long.bvh", root / "crab.usda", keep)
    (root / GARBAGE).write_text('#usda 1.0\ndef Xform "A" { this is not usd\n')
    (root / "props").mkdir()
    (root / "props" / "set.usda").write_text('#usda 1.0\ndef Xform "Set"\n{\n}\n')
    (root / ".hidden").mkdir()
    (root / ".hidden" / "stray.usda").write_text("#usda 1.0\n")
    return root


@pytest.fixture()
def shots(template, tmp_path) -> Path:
    folder = tmp_path / "shots"
    shutil.copytree(template, folder)
    return folder


def _user_files(folder: Path) -> dict[str, bytes]:
    """Every file a user sees (the hidden .anymole journals left out)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


def _batch(*args):
    result = CliRunner().invoke(cli, ["batch", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout


def _by_name(report: dict, folder: Path) -> dict[str, dict]:
    return {os.path.relpath(s["shot"], folder): s for s in report["shots"]}


def _check_first_run(code: int, report: dict, folder: Path) -> None:
    shots = _by_name(report, folder)
    assert code == 2 and report["summary"]["exit_code"] == 2
    assert sorted(shots) == sorted(GOOD + [GARBAGE])
    for name in GOOD:
        assert shots[name]["status"] == "done", shots[name]
        assert os.path.isfile(shots[name]["output"]) and shots[name]["seconds"] > 0
    bad = shots[GARBAGE]
    assert bad["status"] == "failed" and bad["exit_code"] == 2
    assert bad["error"].startswith(str(folder / GARBAGE) + ": not a readable USD file")
    assert "\n" not in bad["error"]
    ignored = {os.path.relpath(i["path"], folder): i["reason"] for i in report["ignored"]}
    assert ignored["props/set.usda"] == "no UsdSkel Skeleton"
    assert ignored["cesium_a/CesiumMan.usdz"].startswith("a layer of ")
    assert not any(".hidden" in p for p in ignored)
    s = report["summary"]
    assert (s["total"], s["done"], s["failed"], s["bad_input"]) == (5, 4, 1, 1)


def test_pool_folder_bad_shot_reported_resume_skips_done(shots, tmp_path):
    report_file = tmp_path / "out" / "batch.json"
    code, out = _batch(shots, "--workers", "2", "--json", "--report", report_file)
    report = json.loads(out)
    _check_first_run(code, report, shots)
    assert json.loads(report_file.read_text())["shots"] == report["shots"]
    # The composed walk has a sample at every one of its 60 time codes now (22 were authored).
    from anymole_usd.reading import authored_times, find_bindings, open_stage

    stage = open_stage(shots / "walk.usda")
    (binding,) = [b for b in find_bindings(stage) if b.animation_path]
    assert len(authored_times(stage.GetPrimAtPath(binding.animation_path))) == 60
    del stage

    after_first = _user_files(shots)
    code, out = _batch(shots, "--workers", "2", "--resume", "--json")
    shots_seen = _by_name(json.loads(out), shots)
    assert code == 2  # the garbage file is still reported
    for name in GOOD:
        assert shots_seen[name]["status"] == "skipped" and "up to date" in shots_seen[name]["reason"]
        assert shots_seen[name]["attempts"] == 0
    assert _user_files(shots) == after_first

    # A changed input makes its shot stale: only that one runs again.
    walk = Sdf.Layer.FindOrOpen(str(shots / "walk.usda"))
    walk.documentation = "edited after the batch"
    walk.Save()
    code, out = _batch(shots, "--workers", "2", "--resume", "--json")
    shots_seen = _by_name(json.loads(out), shots)
    assert shots_seen["walk.usda"]["status"] == "done"
    assert [shots_seen[n]["status"] for n in GOOD if n != "walk.usda"] == ["skipped"] * 3


def test_explicit_files_globs_and_whole_batch_errors(shots):
    # A result layer named on the command line is reported as skipped, never run as a shot.
    code, out = _batch(shots / "walk.usda", shots / "walk.usda", "--workers", "1", "--prior", "interp", "--json")
    assert code == 0 and len(json.loads(out)["shots"]) == 1
    code, out = _batch(shots / "walk.inbetween.usda", str(shots / "cesium_*" / "*.usda"), "--prior", "interp",
                       "--json")
    report = json.loads(out)
    assert code == 0
    statuses = {os.path.relpath(s["shot"], shots): (s["status"], s["reason"]) for s in report["shots"]}
    assert statuses["walk.inbetween.usda"] == ("skipped", "an anymole-usd result layer, not a shot")
    assert {n: v[0] for n, v in statuses.items() if n.startswith("cesium")} == {
        "cesium_a/shot.usda": "done", "cesium_b/shot.usda": "done"}
    # Without --json: a table and a summary line on stdout.
    code, out = _batch(shots / "cesium_a" / "shot.usda", shots / "walk.inbetween.usda", "--prior", "interp",
                       "--resume")
    assert code == 0 and "up to date" in out and "an anymole-usd result layer" in out
    assert "0 done, 2 skipped, 0 failed in" in out
    # Options wrong for every shot fail once, before anything runs.
    before = _user_files(shots)
    result = CliRunner().invoke(cli, ["batch", str(shots), "--prior", "nope"])
    assert result.exit_code == 2 and "no prior plugin named 'nope'" in result.stderr
    result = CliRunner().invoke(cli, ["batch", str(shots / "props")])
    assert result.exit_code == 2 and "no shots found" in result.stderr
    assert _user_files(shots) == before


def _kill_at_checkpoint(pause: Path, name: str, kills: int):
    """A thread that SIGKILLs, by pid, the first ``kills`` workers reaching the runner's checkpoint ``name``
    (transaction.checkpoint: it writes <pause>/<name>.reached holding its pid and waits), then lets others go."""
    killed: list[int] = []
    stop = threading.Event()
    marker = pause / f"{name}.reached"

    def watch():
        while not stop.is_set():
            if marker.exists():
                try:
                    pid = int(marker.read_text())
                except ValueError:  # being written
                    continue
                if len(killed) < kills:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                marker.unlink()
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return killed, stop, thread


def test_pool_worker_killed_mid_shot_untouched_then_retried(shots, tmp_path, monkeypatch):
    target = str(shots / "walk.usda")
    original = _user_files(shots)
    pause = tmp_path / "pause"
    pause.mkdir()
    # Every shot stops where its journal says 'pending' and nothing is installed yet.
    monkeypatch.setenv("ANYMOLE_USD_TEST_PAUSE", f"{pause}:pending")
    started: list[int] = []
    options = InbetweenOptions(prior="interp")

    killed, stop, thread = _kill_at_checkpoint(pause, "pending", kills=1)
    try:
        report = run_batch([target], options, workers=1, retries=0,
                           on_event=lambda kind, shot, **i: started.append(i["pid"]) if kind == "started" else None)
    finally:
        stop.set()
        thread.join()
    (result,) = report.shots
    assert killed == started  # the pid the batch reports is the worker that died
    assert result.status == "failed" and result.exit_code == 1 and report.exit_code == 1
    assert "killed by SIGKILL" in result.error and "untouched" in result.error
    assert _user_files(shots) == original

    # With the default retry, the second attempt recovers the killed run's journal and fills the shot.
    killed, stop, thread = _kill_at_checkpoint(pause, "pending", kills=1)
    try:
        report = run_batch([target, str(shots / "crab.usda")], options, workers=2)
    finally:
        stop.set()
        thread.join()
    assert len(killed) == 1 and [r.status for r in report.shots] == ["done", "done"]
    assert sorted(r.attempts for r in report.shots) == [1, 2]
    assert report.summary()["retried"] == 1 and report.exit_code == 0
    assert os.path.isfile(report.shots[0].output)

    # Killed after its first file landed: the report says so, and the shot's next run puts it right.
    monkeypatch.setenv("ANYMOLE_USD_TEST_PAUSE", f"{pause}:installed1")
    killed, stop, thread = _kill_at_checkpoint(pause, "installed1", kills=1)
    try:
        report = run_batch([target], InbetweenOptions(prior="interp", seed=1), workers=1, retries=0)
    finally:
        stop.set()
        thread.join()
    (result,) = report.shots
    assert killed and result.status == "failed" and "it died while writing" in result.error, result.error
    monkeypatch.delenv("ANYMOLE_USD_TEST_PAUSE")
    report = run_batch([target], InbetweenOptions(prior="interp", seed=1), workers=1)
    assert report.shots[0].status == "done" and report.exit_code == 0


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_ctrl_c_leaves_every_shot_done_or_untouched(shots, stop):
    """Ctrl-C in a terminal (SIGINT to the whole process group) or a farm scheduler's SIGTERM to the batch."""
    original = _user_files(shots)
    proc = subprocess.Popen([sys.executable, "-m", "anymole_usd.cli.main", "batch", str(shots), "--workers", "1",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not glob.glob(str(shots / "**" / "*.inbetween.usda"), recursive=True):
            assert proc.poll() is None and time.monotonic() < deadline, "no shot finished"
            time.sleep(0.05)
        if stop == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
        else:
            os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    report = json.loads(out)
    statuses = {os.path.relpath(s["shot"], shots): s for s in report["shots"]}
    interrupted = [n for n, s in statuses.items() if s["exit_code"] == 130]
    assert report["summary"]["interrupted"] == len(interrupted) >= 1
    now = _user_files(shots)
    for name in GOOD:
        folder_files = {k for k in original if k.startswith(os.path.dirname(name) or name)}
        if statuses[name]["status"] == "done":
            assert Sdf.Layer.FindOrOpen(statuses[name]["output"]) is not None
        else:
            assert name in interrupted
            assert {k: now[k] for k in folder_files} == {k: original[k] for k in folder_files}, name
            assert not os.path.exists(str(shots / name).replace(".usda", ".inbetween.usda"))


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason='the Ray extra is not installed (pip install "anymole-usd[ray]")')
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


def test_ray_folder_with_a_worker_killed(local_ray, shots):
    killed: list[int] = []
    stop = threading.Event()

    def kill_walk_once():
        # Ray names the worker process after the running task: ray::anymole-batch:<shot file>.
        while not stop.is_set() and not killed:
            for path in glob.glob("/proc/[0-9]*/cmdline"):
                try:
                    title = Path(path).read_bytes().split(b"\0")[0]
                except OSError:
                    continue
                if title.startswith(b"ray::anymole-batch:walk.usda"):
                    pid = int(path.split("/")[2])
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.01)

    killer = threading.Thread(target=kill_walk_once, daemon=True)
    killer.start()
    try:
        code, out = _batch(shots, "--ray", "--json")  # --ray alone: the instance this process started
    finally:
        stop.set()
        killer.join()
    report = json.loads(out)
    _check_first_run(code, report, shots)
    assert report["summary"]["engine"] == "ray"
    assert killed, "the walk shot's Ray worker was never seen"
    code, out = _batch(shots, "--ray", "auto", "--resume", "--json")
    assert [s["status"] for s in json.loads(out)["shots"] if not s["shot"].endswith(GARBAGE)] == ["skipped"] * 4


def test_ray_missing_unreachable_and_gpu_request(shots, monkeypatch):
    from anymole_usd.batch.ray_engine import RayEngine
    from anymole_usd.errors import InputError

    with pytest.raises(InputError, match="cannot reach Ray at 127.0.0.1:1"):
        run_batch([str(shots)], InbetweenOptions(prior="interp"), use_ray=True, ray="127.0.0.1:1")

    class Cluster:
        def __init__(self, gpus):
            self.gpus = gpus

        def cluster_resources(self):
            return {"CPU": 8.0, "GPU": self.gpus} if self.gpus else {"CPU": 8.0}

    from anymole_usd import registry
    from anymole_usd.batch.runner import uses_gpu

    assert uses_gpu(registry.load("priors", "video")) and not uses_gpu(registry.load("priors", "graph"))
    assert RayEngine("local", gpu_prior=True)._gpus(Cluster(1)) == 1.0  # the video prior renders on a GPU
    assert RayEngine("local", gpu_prior=True)._gpus(Cluster(0)) == 0.0  # no GPU: never wait for one
    assert RayEngine("local", gpu_prior=False)._gpus(Cluster(1)) == 0.0
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(InputError, match=r'pip install "anymole-usd\[ray\]"'):
        run_batch([str(shots)], InbetweenOptions(prior="interp"), use_ray=True, ray="local")


def test_ray_interrupted_every_shot_done_or_untouched(local_ray, shots):
    original = _user_files(shots)
    finished: list[str] = []

    def ctrl_c_after_first(kind, shot, **info):
        if kind == "finished":
            finished.append(shot)
            if len(finished) == 1:
                raise KeyboardInterrupt  # where Ctrl-C lands in the driver: between ray.wait calls

    t0 = time.perf_counter()
    report = run_batch([str(shots)], InbetweenOptions(prior="interp"), use_ray=True, on_event=ctrl_c_after_first)
    assert time.perf_counter() - t0 < 60
    assert report.interrupted and report.exit_code == 130
    now = _user_files(shots)
    results = {os.path.relpath(r.shot, shots): r for r in report.shots}
    assert any(r.interrupted for r in results.values())
    for name in GOOD:
        r = results[name]
        if r.status != "done":
            assert r.interrupted and "untouched" in r.error, r.error
            mine = [k for k in original if k.startswith(os.path.dirname(name) or name)]
            assert {k: now.get(k) for k in mine} == {k: original[k] for k in mine}, name
            assert name.replace(".usda", ".inbetween.usda") not in now


def test_not_a_library_fails_once_before_any_shot(shots, tmp_path):
    before = _user_files(shots)
    result = CliRunner().invoke(cli, ["batch", str(shots), "--library", str(tmp_path)])
    assert result.exit_code == 2 and "not a motion library" in result.stderr
    assert result.stderr.count("error:") == 1 and _user_files(shots) == before


def test_critical_sections_are_real_functions():
    """A stop waits out these (frames matched by module and name): a rename must not silently drop that."""
    import importlib
    import inspect

    from anymole_usd.batch.shot_task import CRITICAL

    for module, name in CRITICAL:
        mod = importlib.import_module(module)
        found = [f for _, f in inspect.getmembers(mod, inspect.isfunction)]
        found += [m for _, c in inspect.getmembers(mod, inspect.isclass) for _, m in inspect.getmembers(c, inspect.isfunction)]
        assert any(f.__name__ == name and f.__module__ == module for f in found), (module, name)
