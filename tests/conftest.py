"""Shared fixtures: where the real animation files live, and small shots built from them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ANYMOLE_USD_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real animation data not found at {DATA} (set ANYMOLE_USD_DATA)")
    return DATA


@pytest.fixture(scope="session")
def usd_files(data_dir) -> list[Path]:
    return sorted(p for p in (data_dir / "usd").rglob("*") if p.suffix in (".usd", ".usda", ".usdc", ".usdz"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch's intra-op threads thrash on a busy 2-core machine (many times slower here): one thread, restored after."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cmu_proxy(data_dir):
    """Builds the mesh-less CMU 01_01 character (bone proxies, file units -> metres) and a slice of its motion."""

    def build(frames: slice):
        import numpy as np

        from anymole_usd.plugins.io.bvh import read_bvh
        from anymole_usd.plugins.render.proxies import proxy_character

        clip = read_bvh(data_dir / "bvh" / "humanoid" / "cmu" / "01_01.bvh", frames=frames)
        ch = proxy_character(clip.skeleton, skel_to_world=np.diag([0.056, 0.056, 0.056, 1.0]), up_axis="Y")
        return ch, clip.motion

    return build
