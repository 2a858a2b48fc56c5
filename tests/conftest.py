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
