"""anymole-usd report: one self-contained HTML review of a shot's in-between result (clips, curves, metrics)."""
from __future__ import annotations

import click

from anymole_usd.cli.common import check_output_writable, emit_json, handle_errors, progress


@click.command("report")
@click.argument("shot", type=click.Path(dir_okay=False))
@click.option("--reference", default=None, type=click.Path(dir_okay=False),
              help="Ground truth (USD, BVH, glTF): a panel in every clip, and the metrics table.")
@click.option("--compare", default="", metavar="PRIORS",
              help="Comma-separated priors (e.g. interp,graph) run in memory on the same gaps, one panel each.")
@click.option("-o", "--output", "out", default=None, type=click.Path(dir_okay=False),
              help="Output .html [default: SHOT.report.html beside the shot].")
@click.option("--prim", "skeleton", default=None, help="Skeleton to review when the shot has several.")
@click.option("--view", default="auto", show_default=True,
              help="auto (front for an upright character, left for a long one), front, left, right or back.")
@click.option("--size", "size_text", default="288x224", show_default=True,
              help="Panel size HEIGHTxWIDTH in pixels.")
@click.option("--margin", default=0.5, show_default=True, type=click.FloatRange(0, 10),
              help="Seconds of known motion shown before and after each gap.")
@click.option("--video", default="auto", show_default=True, type=click.Choice(["auto", "mp4", "webp", "gif"]),
              help="Clip format: auto is H.264 MP4 with imageio-ffmpeg, else animated WebP.")
@click.option("--device", default=None, help="Warp device for rendering (cpu, cuda:0).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary (metrics included).")
@handle_errors
def command(shot, reference, compare, out, skeleton, view, size_text, margin, video, device, as_json):
    """Write SHOT.report.html: per filled gap a looping side-by-side clip (result, each --compare prior, the
    reference), a timeline, curves with the gaps shaded, metrics against --reference, and provenance.

    \b
    Example:
      anymole-usd report shot.usda --reference truth.usda --compare interp,graph
    """
    from anymole_usd.errors import InputError
    from anymole_usd.plugins.render.views import parse_size
    from anymole_usd.plugins.report.build import write_report
    from anymole_usd.plugins.report.compare import parse_names

    try:
        size = parse_size(size_text)
    except ValueError as exc:
        raise InputError(f"--size: {exc}") from None
    names = parse_names(compare)
    from anymole_usd.plugins.report.build import default_output

    check_output_writable(out or default_output(shot))
    with progress(enabled=not as_json) as bar:
        task = bar.add_task("report", total=1.0)
        summary = write_report(shot, out, reference=reference, compare=names, skeleton=skeleton, view=view,
                               size=size, margin=margin, video=video, device=device,
                               progress=lambda message, fraction: bar.update(task, description=message,
                                                                             completed=fraction))
    if as_json:
        emit_json(summary)
        return
    click.echo(f"wrote {summary['output']} ({summary['bytes'] / 1e6:.2f} MB): {len(summary['gaps'])} gap(s), "
               f"panels {', '.join(summary['panels'])}, clips {summary['video']}")
    for run in summary["compare"]:
        if run.get("error"):
            click.echo(f"warning: prior {run['prior']} failed: {run['error']}", err=True)
