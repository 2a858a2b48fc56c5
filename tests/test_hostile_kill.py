"""kill -9 of a run whose result goes to a new folder (-o out/r.usda): the next run or --undo must remove
what it left there too (temporary folder, lock file, the folder it created), not only in the shot's folder.

Found by killing real runs at every named step (ANYMOLE_USD_TEST_PAUSE) on copies of examples/cesiumman
(CesiumMan, CC-BY 4.0, Cesium).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_run import ok

REPO = Path(__file__).resolve().parents[1]
CODE = "import sys; from anymole_usd.cli.main import main; sys.exit(main(sys.argv[1:]))"


def state(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def kill_at(point: str, markers: Path, *args) -> None:
    env = dict(os.environ, ANYMOLE_USD_TEST_PAUSE=f"{markers}:{point}")
    proc = subprocess.Popen([sys.executable, "-c", CODE, *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker = markers / f"{point}.reached"
    end = time.time() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    marker.unlink()


@pytest.mark.parametrize("point", ["staged", "pending", "installed1"])
@pytest.mark.parametrize("then", ["undo", "rerun"])
def test_killed_run_writing_into_a_new_output_folder(tmp_path, point, then):
    d = tmp_path / "d"
    shutil.copytree(REPO / "examples" / "cesiumman", d)
    markers = tmp_path / "markers"
    markers.mkdir()
    before = state(d)
    ok("inbetween", d / "shot.usda", "--in-place", "--prior", "interp")
    args = ["inbetween", d / "shot.usda", "--prior", "interp", "-o", d / "out" / "deeper" / "r.usda"]
    kill_at(point, markers, *args)
    if then == "undo":
        ok("inbetween", "--undo", d / "shot.usda")
    else:
        ok(*args)
        ok("inbetween", "--undo", d / "shot.usda")
    # was: out/ left with .anymole-tmp-<pid>@host.*/staged.usda, out/.anymole/r.usda.lock, or out/ itself
    assert state(d) == before
