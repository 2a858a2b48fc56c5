"""`anymole-usd video prepare`: a video job for any generator (the contract `inbetween --video-dir` reads back)."""
from __future__ import annotations

import shlex

import click

from .common import check_output_writable, emit_json, handle_errors, progress


@click.group("video")
def command() -> None:
    """Video jobs: what any video generator needs to draw the in-between frames, and how they come back."""


@command.command("prepare")
@click.argument("shot", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Job folder (created; an earlier job there is replaced).")
@click.option("--size", "size_text", default="256x256", show_default=True,
              help="Frame size HEIGHTxWIDTH (even sides; the mimicking and the estimator work at this size).")
@click.option("--rate", type=float, default=15.0, show_default=True,
              help="Frames per second of the video: the mimicking grid inside each gap.")
@click.option("--view", type=click.Choice(["front", "left", "right"]), default="front", show_default=True,
              help="Which of the shot's cameras the video is seen from.")
@click.option("--from", "truth", type=click.Path(dir_okay=False),
              help="A stage with the dense animation: also render it at every video frame into JOB/frames/ "
                   "(a perfect generator, for evaluation).")
@click.option("--prim", help="SkelAnimation (or Skeleton) prim when the shot holds several.")
@click.option("--context", metavar="A:B", help="Context range (overrides detection, as in inbetween).")
@click.option("--keys", metavar="T1,T2,...", help="Keyframe times (override detection, as in inbetween).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@handle_errors
def prepare(shot, out, size_text, rate, view, truth, prim, context, keys, as_json):
    """Write JOB: known frames from the shot's camera (known/<time>.png), conditioning.mp4 and mask.mp4
    (white = generate), gaps/<n>/first.png,last.png, job.json and README.txt.

    \b
    Generate the frames with any model, put one MP4/WebM (or frames/frame_0000.png ...)
    into JOB, then:  anymole-usd inbetween SHOT --video-dir JOB
    """
    from anymole_usd.errors import InputError
    from anymole_usd.plugins.render.views import parse_size
    from anymole_usd.plugins.video.job_prepare import prepare_job

    from .inbetween import parse_timeline_options

    try:
        size = parse_size(size_text)
    except ValueError as exc:
        raise InputError(f"--size: {exc}") from None
    ctx, ks = parse_timeline_options(context, keys)
    check_output_writable(out, folder=True)
    with progress(enabled=not as_json) as bar:
        task = bar.add_task("video prepare", total=1.0)
        summary = prepare_job(shot, out, size=size, rate=rate, view=view, truth=truth, prim=prim, context=ctx,
                              keys=ks, progress=lambda msg, frac: bar.update(task, completed=frac, description=msg))
    if as_json:
        emit_json(summary)
        return
    click.echo(f"{summary['animation']}: video job of {summary['frames']} frames at {summary['fps']:g} fps "
               f"({summary['generate']} to generate in {summary['gaps']} gap(s)), {size[0]}x{size[1]}, "
               f"{summary['view']} camera -> {summary['job']}"
               + ("; truth rendered into frames/" if summary["truth_frames"] else ""))
    # The same timeline options, or the runner finds other gaps than the job's (exit 2 on its hash).
    timeline = [a for opt, v in (("--prim", prim), ("--context", context), ("--keys", keys)) if v for a in (opt, v)]
    click.echo(f"next: generate into {summary['job']} (see README.txt), then "
               + shlex.join(["anymole-usd", "inbetween", shot, *timeline, "--video-dir", summary["job"]]))
