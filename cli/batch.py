"""`anymole-usd batch`: fill many shots, each in its own worker process, locally or on a Ray cluster."""
from __future__ import annotations

import contextlib
import os
import signal
import sys

import click

from .common import check_fps, check_output_writable, emit_json, handle_errors, progress

_RAY_KEYWORDS = ("local", "auto")


@click.command("batch")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--workers", "-j", type=click.IntRange(1), help="Shots at a time (default: one per CPU core).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="auto", default=None, metavar="[ADDRESS|local]",
              help="Run shots as Ray tasks: 'local' starts a private Ray instance, ADDRESS joins a cluster, "
                   "'auto' (or --ray alone) uses $RAY_ADDRESS or a cluster started here, else starts one.")
@click.option("--resume", is_flag=True, help="Skip shots whose result is up to date for the same options.")
@click.option("--retries", type=click.IntRange(0), default=1, show_default=True,
              help="Re-runs of a shot whose worker process died (crash, out of memory).")
@click.option("--prior", help="Prior plugin for every shot (default: graph, or video when a video model is set).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Prior parameter (repeatable).")
@click.option("--reference", "references", multiple=True, type=click.Path(dir_okay=False),
              help="Extra animation for the prior, used by shots on the same skeleton (repeatable).")
@click.option("--library", type=click.Path(file_okay=False),
              help="Motion library the prior retrieves from (as `inbetween --library`).")
@click.option("--library-skeletons", type=click.Choice(["same", "all"]), default="same", show_default=True,
              help="With --library: 'all' also retrieves from other humanoid skeletons through the retarget "
                   "joint mapping (seconds more per shot; used only where clearly better).")
@click.option("--video-model", help="Video diffusion model: local folder or hub id.")
@click.option("--fps", type=float, help="Sampling rate of generated frames (default: one per timecode).")
@click.option("--in-place", is_flag=True,
              help="Write filled samples into the layer that holds them (its exact bytes are kept for --undo).")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True, help="Random seed.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also write the JSON report to this file (written even when interrupted).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the table.")
@handle_errors
def command(inputs, workers, ray_address, resume, retries, prior, params, references, library, library_skeletons,
            video_model, fps, in_place, seed, report_path, as_json):
    """Fill every shot in INPUT... (shot files, folders searched recursively,
    glob patterns), each exactly as `inbetween` would, in its own process.

    \b
    A folder contributes every .usd/.usda/.usdc/.usdz whose stage binds a
    SkelAnimation with gaps (or that was filled before); result layers, hidden
    folders and layers another shot uses are passed over.
    Exit code: 0 every shot done or skipped, 2 some shots had bad input (the
    others still ran), 1 a shot failed inside the tool or its worker died,
    130 interrupted (every shot is done or untouched; --resume finishes).

    \b
    Examples:
      anymole-usd batch shots/ --workers 4 --report batch.json
      anymole-usd batch 'shots/**/anim.usda' --prior interp --resume
      anymole-usd batch shots/ --ray local
      anymole-usd batch /shared/show/shots --ray ray://head:10001
    """
    from anymole_usd.batch.runner import run_batch
    from anymole_usd.pipeline import InbetweenOptions

    from .inbetween import _parse_params

    inputs = list(inputs)
    if ray_address and ray_address not in _RAY_KEYWORDS and os.path.exists(ray_address):
        inputs.insert(0, ray_address)  # `--ray shots/`: the bare flag followed by an input
        ray_address = "auto"
    check_fps(fps)
    check_output_writable(report_path)  # before any shot runs (a bad path failed after the batch, exit 1)
    options = InbetweenOptions(prior=prior, fps=fps, in_place=in_place, seed=seed, params=_parse_params(params),
                               references=[os.path.abspath(r) for r in references], video_model=video_model,
                               library=os.path.abspath(library) if library else None,
                               library_skeletons=library_skeletons)
    # A farm scheduler stops a job with SIGTERM: stop the shots as Ctrl-C does, and still report.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        # Anything printed while the shots run (Ray's driver reports worker deaths with print) goes to
        # stderr: stdout carries only the report.
        with progress(enabled=not as_json) as bar, contextlib.redirect_stdout(sys.stderr):
            report = run_batch(inputs, options, workers=workers, use_ray=ray_address is not None,
                               ray=None if ray_address == "auto" else ray_address, resume=resume,
                               retries=retries, on_event=_progress_events(bar))
    finally:
        signal.signal(signal.SIGTERM, previous)
    if report_path:
        report.write(report_path)
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_table(report)
    if report.exit_code:
        sys.exit(report.exit_code)


def _raise_interrupt(signum, frame):
    from anymole_usd import interrupts

    interrupts.handler(signum, frame)  # remembered: no new shot starts even if USD swallows the exception


def _progress_events(bar):
    state = {"task": None, "counts": {"done": 0, "skipped": 0, "failed": 0}}

    def on_event(kind: str, shot: str, **info) -> None:
        if kind == "discovered":
            state["task"] = bar.add_task(f"batch: {info['todo']} of {info['total']} shots to run",
                                         total=info["total"])
        elif kind == "finished" and state["task"] is not None:
            counts, result = state["counts"], info["result"]
            counts[result.status] += 1
            last = f"{os.path.basename(shot)} {result.status}" + (f": {result.error}" if result.error else "")
            bar.update(state["task"], advance=1, description=(
                f"batch: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
                f"(last: {last})"))

    return on_event


def _short(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _print_table(report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    rows = report.shots
    hidden = 0
    if len(rows) > 40:  # hundreds of shots: list what needs attention, count the rest
        hidden = sum(r.status == "done" for r in rows)
        rows = [r for r in rows if r.status != "done"]
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for name in ("shot", "status", "seconds", "output / error"):
        table.add_column(name, overflow="fold", justify="right" if name == "seconds" else "left")
    style = {"done": "green", "skipped": "yellow", "failed": "red"}
    for r in rows:
        out = r.output if isinstance(r.output, str) or r.output is None else ", ".join(r.output)
        error = r.error
        if error and error.startswith(r.shot):  # the shot column already names the file
            error = error[len(r.shot):].lstrip(":, ")
        detail = error or (r.reason if r.status == "skipped" else None) or (_short(out) if out else "")
        if r.attempts > 1 and r.status != "failed":
            detail += f" (after {r.attempts} attempts)"
        table.add_row(_short(r.shot), f"[{style[r.status]}]{r.status}[/]", f"{r.seconds:.1f}", detail)
    if rows:
        console.print(table)
    s = report.summary()
    if hidden:
        console.print(f"({hidden} done shots not listed; --json or --report lists every shot)")
    failed = f"{s['failed']} failed" + (f" ({s['bad_input']} bad input, {s['internal']} internal, "
                                        f"{s['interrupted']} interrupted)" if s["failed"] else "")
    console.print(f"{s['done']} done, {s['skipped']} skipped, {failed} in {s['seconds']:.1f} s "
                  f"({s['engine']}, {s['workers'] or 'cluster'} workers)")
    if report.interrupted:
        console.print("interrupted: each shot above says what it left; the same command with --resume finishes")
