"""Imported once, by the process pool's forkserver: what every shot would otherwise import on its own.

The runner imports USD's Python modules, the writing/transaction modules and
the default graph prior inside functions (so `anymole-usd --help` stays
fast). A shot forked from a cold server paid that again every time: about a
second per shot on this machine, as much as a short shot's work. Importing
them here, before any fork, makes every shot start warm. Only imports (and
the entry-point scan), no stage, no threads of work, so forking stays safe.
"""
from __future__ import annotations

import importlib

PXR = ("Tf", "Gf", "Vt", "Ar", "Sdf", "Pcp", "Kind", "Ts", "Work", "Plug", "Usd", "UsdGeom", "UsdSkel")
ANYMOLE = (
    "pipeline", "reading", "timeline", "writing", "layering", "schema", "animation_specs", "settings",
    "transaction", "journal", "atomic_files", "locks", "layer_bytes", "usda_edit",
    "plugins.priors.interp", "interrupts",
    # The default prior and what it imports on first use (scipy's sparse graphs, the joint naming):
    # 0.1-0.15 s of every short shot's 0.25-0.4 s when each child imported them again.
    "plugins.priors.graph", "plugins.retarget.naming",
    # Each forked child re-runs the batch's main module (multiprocessing's rule for forkserver
    # children): for the `anymole-usd` script that is this import, cached once here.
    "cli.main",
)


def warm() -> list[str]:
    """Import what a run needs; returns the names that could not be imported (renamed, not installed)."""
    missing = []
    for name in [f"pxr.{m}" for m in PXR] + [f"anymole_usd.{m}" for m in ANYMOLE]:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    from .. import registry

    registry.plugins("priors")  # fills importlib.metadata's caches: the runner looks the prior up by entry point
    return missing


MISSING = warm()
