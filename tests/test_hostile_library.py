"""library build / compose / batch as a hostile user runs them: failing builds leave nothing behind,
garbage tag files are one error line, and every file made follows the umask (issue 13 item 10).

Clips: Bandai Namco Research Motion Dataset (CC-BY-NC 4.0) read from ../shared/data.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cli_run import refused, run

REPO = Path(__file__).resolve().parents[1]
RUN = "dataset-1_run_active_001.bvh"
WALK = "dataset-1_walk_normal_001.bvh"


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def clips(tmp_path, data_dir):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in (RUN, WALK):
        shutil.copy(data_dir / "bvh" / "humanoid" / "bandai_namco" / name, folder / name)
        os.chmod(folder / name, 0o644)
    return folder


def test_a_failing_build_leaves_no_library_folder_or_lock_file(tmp_path, clips):
    (tmp_path / "garbage.bvh").write_bytes(os.urandom(300))
    (tmp_path / "empty").mkdir()
    (tmp_path / "tags.csv").write_bytes(b"\xa1\xff\x00binary")
    before = listing(tmp_path)
    lib = tmp_path / "LIB"
    refused("library", "build", lib, tmp_path / "garbage.bvh", match="not a BVH file")
    refused("library", "build", lib, tmp_path / "missing", match="no such file or folder")
    # an empty folder was a library of nothing, exit 0
    refused("library", "build", lib, tmp_path / "empty", match="no motion file found")
    # a binary tags file was exit 1 (UnicodeDecodeError)
    refused("library", "build", lib, clips, "--tags", tmp_path / "tags.csv", match="not a text CSV file")
    # an existing empty folder as LIB got a .lock file left in it
    refused("library", "build", tmp_path / "empty", tmp_path / "garbage.bvh", match="not a BVH file")
    assert listing(tmp_path) == before


def _modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def test_library_compose_and_batch_report_follow_the_umask(tmp_path, clips):
    # Every file was 0600 (tempfile.mkstemp), so another user of a shared library could not read it.
    script = (
        "import os, sys; os.umask(0o002); from anymole_usd.cli.main import main; sys.exit(main(sys.argv[1:]))")

    def cli_child(*args):
        r = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr

    lib = tmp_path / "LIB"
    cli_child("library", "build", lib, clips)
    assert set(_modes(lib).values()) == {0o664}, _modes(lib)
    cli_child("compose", lib, "-o", tmp_path / "walk.usda", "--duration", "1")
    assert stat.S_IMODE((tmp_path / "walk.usda").stat().st_mode) == 0o664
    os.chmod(tmp_path / "walk.usda", 0o640)  # a file replaced keeps its own mode
    cli_child("compose", lib, "-o", tmp_path / "walk.usda", "--duration", "1.5")
    assert stat.S_IMODE((tmp_path / "walk.usda").stat().st_mode) == 0o640
    shot = tmp_path / "shots" / "d"
    shutil.copytree(REPO / "examples" / "cesiumman", shot)
    cli_child("batch", tmp_path / "shots", "--prior", "interp", "--workers", "1", "--report", tmp_path / "r.json")
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o664


def test_compose_with_absurd_numbers_or_a_garbage_audio_file_is_one_error_line(tmp_path, clips):
    lib = tmp_path / "LIB"
    assert run("library", "build", lib, clips).exit_code == 0
    (tmp_path / "song.wav").write_bytes(os.urandom(2000))
    before = listing(tmp_path)
    out = tmp_path / "out.usda"
    # inf was OverflowError, 1e12 MemoryError (exit 1); --fps 1e9 ran out of memory (killed)
    refused("compose", lib, "-o", out, "--duration", "inf", match="--duration must be a positive number")
    refused("compose", lib, "-o", out, "--duration", "1e12", match="over 2,000,000 frames")
    refused("compose", lib, "-o", out, "--duration", "2", "--fps", "1e9", match="at most 10000")
    # a file no decoder reads was IndexError (exit 1) after librosa's warnings
    refused("compose", lib, "-o", out, "--duration", "2", "--music", tmp_path / "song.wav", match="cannot read audio")
    r = run("compose", lib, "-o", out, "--duration", "2", "--seed", "-1")  # was ValueError from numpy (exit 1)
    assert r.exit_code == 2 and "Traceback" not in r.output and "internal error" not in r.output, r.output
    assert listing(tmp_path) == before
