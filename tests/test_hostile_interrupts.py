"""A Ctrl-C or SIGTERM that USD swallows must still stop the run before it writes.

USD imports its libraries' Python modules from C++ and catches what they raise: a KeyboardInterrupt
landing there was printed as USD warnings and lost, so the command went on to the end (`batch` under a
farm's SIGTERM finished every shot and exited 0). Simulated here by swallowing the interrupt the way
USD does. CesiumMan (CC-BY 4.0, Cesium).
"""
from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from anymole_usd import interrupts
from anymole_usd.cli.main import cli

from cli_run import state

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def swallowed(monkeypatch):
    """Deliver one interrupt the way USD's module loader handles it: raised, caught, printed, forgotten."""
    monkeypatch.setattr(interrupts, "_requested", False)

    def deliver():
        try:
            interrupts.handler(signal.SIGINT, None)
        except KeyboardInterrupt:
            pass

    yield deliver
    interrupts._requested = False


def test_an_inbetween_whose_interrupt_was_swallowed_writes_nothing(tmp_path, swallowed, monkeypatch):
    from anymole_usd import pipeline

    d = tmp_path / "d"
    shutil.copytree(REPO / "examples" / "cesiumman", d)
    before = state(d)
    fill = pipeline.fill

    def fill_then_interrupted(*args, **kwargs):
        job = fill(*args, **kwargs)
        swallowed()  # e.g. while USD loaded a module for the prior
        return job

    monkeypatch.setattr(pipeline, "fill", fill_then_interrupted)
    r = CliRunner().invoke(cli, ["inbetween", str(d / "shot.usda"), "--prior", "interp"])
    assert r.exit_code == 130 and "interrupted" in r.output, r.output  # was exit 0 with the result written
    assert state(d) == before


def test_a_batch_whose_interrupt_was_swallowed_starts_no_more_shots(tmp_path, swallowed):
    from anymole_usd.batch.pool import ProcessPool
    from anymole_usd.pipeline import InbetweenOptions

    shots = []
    for i in range(2):
        shutil.copytree(REPO / "examples" / "cesiumman", tmp_path / f"s{i}")
        shots.append(str(tmp_path / f"s{i}" / "shot.usda"))
    before = state(tmp_path)
    swallowed()
    results = ProcessPool(workers=1).run(shots, InbetweenOptions(prior="interp"))
    assert all(r.interrupted for r in results)
    assert state(tmp_path) == before
