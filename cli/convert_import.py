"""`anymole-usd import`: BVH or glTF/GLB motion -> a new UsdSkel stage."""
from __future__ import annotations

import click

from .common import check_output_writable, emit_json, handle_errors


def _frames(ctx, param, value):
    """'A:B' (either side optional) -> slice; a plain number is rejected to avoid ambiguity."""
    if value is None:
        return None
    parts = value.split(":")
    if len(parts) != 2:
        raise click.BadParameter("expected A:B (e.g. 0:240, 120:, :600)")
    try:
        start, stop = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise click.BadParameter("A and B must be integers") from None
    return slice(start, stop)


@click.command(name="import")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="USD file to write (.usda, .usdc or .usd).")
@click.option("--fps", type=float, default=None,
              help="Output timeCodesPerSecond (resampled: slerp rotations; seconds are kept, so frame 120 "
                   "of a 120 fps file lands on time code 30 at --fps 30). Default: the source rate.")
@click.option("--frames", callback=_frames, default=None,
              help="Source frames A:B to keep (Python slice; BVH frames or glTF output frames). They keep "
                   "their source time unless --start is given.")
@click.option("--start", type=float, default=None, metavar="TIMECODE",
              help="Time code of the first kept frame (e.g. 0 to rebase a --frames selection). "
                   "Default: the frame's source time.")
@click.option("--scale", type=float, default=1.0, show_default=True, help="Multiply every length.")
@click.option("--meters-per-unit", type=float, default=None,
              help="Stage metersPerUnit (the source file's unit in metres). Default: BVH guessed from the "
                   "character's size (m, CMU's 1/0.45 in, in, cm or mm: CMU 01_01 gives 0.0564), glTF 1.0 (m); "
                   "divided by --scale. A character outside 5 cm..50 m is warned about.")
@click.option("--up-axis", type=click.Choice(["Y", "Z"], case_sensitive=False), default="Y", show_default=True,
              help="Stage up axis; the Y-up source is rotated to it.")
@click.option("--animation", default=None, help="glTF: which animation skel:animationSource binds (default: first).")
@click.option("--force", is_flag=True, help="Replace an existing -o file that an earlier import did not write.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@handle_errors
def command(source, output, fps, frames, start, scale, meters_per_unit, up_axis, animation, force, as_json):
    """Import BVH or glTF/GLB motion as a UsdSkel stage.

    \b
    Examples:
      anymole-usd import clip.bvh -o clip.usda
      anymole-usd import clip.bvh -o clip.usda --fps 30 --frames 120:841 --start 0
      anymole-usd import Fox.glb -o fox.usda --animation Walk
    """
    from anymole_usd.plugins.io.base import ImportOptions
    from anymole_usd.plugins.io.convert import import_to_usd

    options = ImportOptions(fps=fps, frames=frames, scale=scale, meters_per_unit=meters_per_unit,
                            up_axis=up_axis.upper(), animation=animation, start=start)
    check_output_writable(output)
    summary = import_to_usd(source, output, options, force=force)
    if as_json:  # warnings are in the JSON ("warnings")
        emit_json(summary)
        return
    for warning in summary["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    anims = ", ".join(f"{a['name']} ({a['frames']} frames)" for a in summary["animations"])
    click.echo(f"wrote {output}: {summary['joints']} joints, {summary['fps']:g} fps, "
               f"up {summary['up_axis']}, metersPerUnit {summary['meters_per_unit']:g}")
    click.echo(f"  animations: {anims}; bound: {summary['bound']}")
    if summary["meshes"]:
        click.echo(f"  meshes: {', '.join(summary['meshes'])}")
    for note in summary["notes"]:
        click.echo(f"  note: {note}")
