"""anymole-usd preview: a marked contact sheet or MP4 of a result, optionally beside the ground truth."""
from __future__ import annotations

import click
from anymole_usd.cli.common import emit_json, handle_errors


@click.command("preview")
@click.argument("file", type=click.Path())
@click.option("-o", "--output", "out", default=None, type=click.Path(dir_okay=False),
              help="Output .png/.jpg (contact sheet) or .mp4 (video). Default: FILE's name + .preview.png")
@click.option("--reference", default=None, type=click.Path(dir_okay=False),
              help="Ground-truth animation drawn beside the result (same cameras).")
@click.option("--view", default="front", show_default=True, help="front, left, right or back.")
@click.option("--size", "size_text", default="256x256", show_default=True, help="Tile size HEIGHTxWIDTH.")
@click.option("--frames", "frames_text", default=None, help="Timecode range A:B.")
@click.option("--columns", default=8, show_default=True, type=click.IntRange(1, 64), help="Contact sheet columns.")
@click.option("--max-tiles", default=48, show_default=True, type=click.IntRange(1, 1000),
              help="At most this many tiles (every keyframe is always shown).")
@click.option("--device", default=None, help="Warp device (cpu, cuda:0).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@handle_errors
def command(file, out, reference, view, size_text, frames_text, columns, max_tiles, device, as_json):
    """Preview FILE: context (blue), keyframes (green) and generated frames (orange) marked."""
    from anymole_usd.plugins.render.preview import write_preview
    from anymole_usd.plugins.render.scene import parse_frames
    from anymole_usd.plugins.render.views import parse_size

    from anymole_usd.errors import InputError

    try:
        size = parse_size(size_text)
    except ValueError as exc:
        raise InputError(f"--size: {exc}") from None
    summary = write_preview(file, out, reference=reference, view=view, size=size, frames=parse_frames(frames_text),
                            columns=columns, max_tiles=max_tiles, device=device)
    if as_json:
        emit_json(summary)
    else:
        c = summary["counts"]
        click.echo(f"wrote {summary['output']}: {summary['shown']} of {summary['frames']} frames "
                   f"({c['context']} context, {c['keyframe']} keyframes, {c['generated']} generated; "
                   f"roles from {summary['roles_from']})")
