"""The Blender add-on, shipped as package data and zipped by ``anymole-usd blender-addon``.

``anymole_usd_fill/`` is Blender-side code (``bpy``, ``mathutils``, numpy and
the standard library only): it is never imported by the tool. :func:`write_zip`
packs it the way Blender's "Install from Disk" expects (one top-level folder).
"""
from __future__ import annotations

import os
import zipfile

ADDON = "anymole_usd_fill"


def addon_dir() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), ADDON)


def addon_files() -> list[str]:
    """The add-on's source files, relative to its folder."""
    return sorted(name for name in os.listdir(addon_dir()) if name.endswith(".py"))


def write_zip(out: str) -> dict:
    """Write the add-on zip to ``out`` (temporary file + rename); returns what it holds."""
    from anymole_usd.atomic_files import staging

    files = addon_files()
    with staging(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in files:
            z.write(os.path.join(addon_dir(), name), f"{ADDON}/{name}")
    return {"output": os.path.abspath(out), "module": ADDON, "files": [f"{ADDON}/{n}" for n in files],
            "bytes": os.path.getsize(out)}
