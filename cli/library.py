"""`anymole-usd library`: build, update and describe a motion library folder."""
from __future__ import annotations

import os

import click

from .common import check_output_writable, emit_json, handle_errors, progress


@click.group("library")
def command() -> None:
    """Motion libraries: a folder with a manifest, per-skeleton pose features and a
    nearest-neighbour index over your own clips (the clips stay where they are).

    \b
    Examples:
      anymole-usd library build mylib/ mocap/ creatures/horse.glb --tags tags.csv
      anymole-usd library build mylib/            # re-check every file: changed, missing
      anymole-usd library info mylib/
    """


@command.command("build")
@click.argument("library", type=click.Path(file_okay=False))
@click.argument("inputs", nargs=-1, type=click.Path())
@click.option("--tags", type=click.Path(dir_okay=False),
              help="tags.csv with columns file,start,end,tag (seconds; empty = whole clip).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@handle_errors
def build(library, inputs, tags, as_json):
    """Create LIBRARY or update it with INPUT files and folders (USD, BVH, glTF/GLB).

    Unchanged files are skipped (content hash), changed ones re-read, missing
    ones reported; with no INPUT every known file is re-checked.
    """
    from anymole_usd.errors import InputError
    from anymole_usd.library import build_library

    if not inputs and not os.path.isfile(os.path.join(library, "manifest.json")):
        raise InputError("a new library needs at least one INPUT file or folder", file=library)
    check_output_writable(library, folder=True)
    with progress(enabled=not as_json) as bar:
        task = bar.add_task("building library", total=1.0)
        report = build_library(library, list(inputs), tags=tags,
                               progress=lambda msg, frac: bar.update(task, completed=frac, description=msg))
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(f"{report.library}: {report.clips} clips, {report.frames} frames, {report.nodes} nodes")
    for what in ("added", "replaced", "unchanged", "missing"):
        items = getattr(report, what)
        if items:
            shown = ", ".join(items[:8]) + (f" (+{len(items) - 8} more)" if len(items) > 8 else "")
            click.echo(f"  {what} {len(items)}: {shown}")
    for note in report.notes:
        click.echo(f"  note: {note}")


def describe(library: str) -> dict:
    """Everything `library info` prints, as a dict."""
    from anymole_usd.library import Library

    lib = Library.open(library)
    out = {"library": lib.path, "up_to_date": lib.up_to_date, "skeletons": [], "missing": []}
    for s in lib.skeletons():
        clips = lib.clips(s.key)
        tags: dict[str, float] = {}
        for c in clips:
            for t in c.tags:
                a = t["start"] or 0.0
                b = c.duration if t["end"] is None else min(t["end"], c.duration)
                tags[t["tag"]] = tags.get(t["tag"], 0.0) + max(b - a, 0.0)
        out["skeletons"].append({
            "name": s.name, "key": s.key, "joints": len(s.joint_names), "up_axis": s.up_axis,
            "clips": len(clips), "frames": int(sum(c.frames for c in clips)),
            "duration": float(sum(c.duration for c in clips)), "nodes": s.nodes,
            "tags": {k: round(v, 3) for k, v in sorted(tags.items())},
            "clip_list": [{"id": c.id, "file": c.file, "path": lib.source_path(c.file), "label": c.label,
                           "fps": c.fps, "frames": c.frames,
                           "duration": c.duration, "tags": c.tag_names(), "mesh": c.has_mesh} for c in clips],
        })
    out["missing"] = [k for k, f in lib.files().items() if f.get("missing")]
    return out


@command.command("info")
@click.argument("library", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def info(library, as_json):
    """Skeletons, clips, frames, duration and tags of LIBRARY."""
    from anymole_usd.library.building import display_path

    data = describe(library)
    if as_json:
        emit_json(data)
        return
    click.echo(data["library"] + ("" if data["up_to_date"] else "  (features out of date: run library build)"))
    for s in data["skeletons"]:
        click.echo(f"  skeleton {s['name']} ({s['joints']} joints): {s['clips']} clips, {s['frames']} frames, "
                   f"{s['duration']:.1f} s")
        if s["tags"]:
            click.echo("    tags: " + ", ".join(f"{k} ({v:.1f} s)" for k, v in s["tags"].items()))
        for c in s["clip_list"]:
            tags = f" [{', '.join(c['tags'])}]" if c["tags"] else ""
            where = display_path(c["path"]) if c["path"] else c["file"] + " (missing)"
            click.echo(f"    {where}#{c['label']}: {c['frames']} frames @ {c['fps']:g} fps{tags}")
    for m in data["missing"]:
        click.echo(f"  missing: {m}")
