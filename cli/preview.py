"""anymole-usd preview: a labelled contact sheet or MP4 of a result, beside the ground truth and other priors."""
from __future__ import annotations

import click

from anymole_usd.cli.common import check_output_writable, emit_json, handle_errors


@click.command("preview")
@click.argument("file", type=click.Path())
@click.option("-o", "--output", "out", default=None, type=click.Path(dir_okay=False),
              help="Output .png/.jpg (contact sheet) or .mp4 (video). Default: FILE's name + .preview.png")
@click.option("--reference", default=None, type=click.Path(dir_okay=False),
              help="Ground-truth animation drawn as a 'reference' panel (same cameras).")
@click.option("--compare", default="", metavar="PRIORS",
              help="Comma-separated priors (e.g. interp,graph) run in memory on the result's gaps, one panel each.")
@click.option("--view", default="auto", show_default=True,
              help="auto (front for an upright character, left for a long one), front, left, right or back.")
@click.option("--size", "size_text", default="240x192", show_default=True, help="Tile size HEIGHTxWIDTH.")
@click.option("--frames", "frames_text", default=None, help="Timecode range A:B.")
@click.option("--columns", default=None, type=click.IntRange(1, 64),
              help="Contact sheet columns [default: as many as fit in 1,600 px].")
@click.option("--max-tiles", default=24, show_default=True, type=click.IntRange(1, 1000),
              help="At most this many frames on a contact sheet (every keyframe is always shown).")
@click.option("--device", default=None, help="Warp device (cpu, cuda:0).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@handle_errors
def command(file, out, reference, compare, view, size_text, frames_text, columns, max_tiles, device, as_json):
    """Preview FILE: one labelled panel per motion (result, each --compare prior, reference), framed on the
    character; every frame marked context (blue), keyframe (green) or generated (orange)."""
    from anymole_usd.errors import InputError
    from anymole_usd.plugins.render.preview import write_preview
    from anymole_usd.plugins.render.scene import parse_frames
    from anymole_usd.plugins.render.views import parse_size
    from anymole_usd.plugins.report.compare import parse_names

    try:
        size = parse_size(size_text)
    except ValueError as exc:
        raise InputError(f"--size: {exc}") from None
    import os

    check_output_writable(out or os.path.splitext(file)[0] + ".preview.png")
    summary = write_preview(file, out, reference=reference, compare=parse_names(compare), view=view, size=size,
                            frames=parse_frames(frames_text), columns=columns, max_tiles=max_tiles, device=device)
    if as_json:
        emit_json(summary)
    else:
        c = summary["counts"]
        click.echo(f"wrote {summary['output']} ({summary['width']} px wide): {summary['shown']} of "
                   f"{summary['frames']} frames x {len(summary['panels'])} panels ({', '.join(summary['panels'])}); "
                   f"{c['context']} context, {c['keyframe']} keyframes, {c['generated']} generated "
                   f"(roles from {summary['roles_from']})")
