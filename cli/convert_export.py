"""`anymole-usd export`: the composed animation of a stage -> BVH or glTF/GLB."""
from __future__ import annotations

import click

from .common import check_output_writable, emit_json, handle_errors


@click.command(name="export")
@click.argument("stage", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="File to write: .bvh, .glb or .gltf (format from the extension).")
@click.option("--prim", default=None,
              help="Skeleton, SkelRoot or SkelAnimation path to export (default: the first animated skeleton).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@handle_errors
def command(stage, output, prim, as_json):
    """Export the COMPOSED animation (in-between results included) to BVH or glTF/GLB.

    \b
    BVH gets every timecode between the first and last authored sample (USD
    interpolation in between), Y-up, in stage units. glTF/GLB gets the authored
    samples, Y-up, in metres, with the skinned meshes of the skeleton.
    """
    from anymole_usd.plugins.io.convert import export_from_usd

    check_output_writable(output)
    summary = export_from_usd(stage, output, prim)
    if as_json:
        emit_json(summary)
        return
    click.echo(f"wrote {output}: {summary['joints']} joints, {summary['frames']} frames "
               f"({summary['start']:g}..{summary['end']:g} at {summary['fps']:g} fps)")
    for note in summary["notes"]:
        click.echo(f"  note: {note}")
