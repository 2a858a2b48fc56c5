"""`anymole-usd inbetween`: fill the gaps of bound SkelAnimations and compose the result."""
from __future__ import annotations

import json
import os

import click

from .common import check_fps, emit_json, handle_errors, progress


def parse_timeline_options(context: str | None, keys: str | None):
    from anymole_usd.errors import InputError
    from anymole_usd.timeline import TimelineError, parse_keys, parse_range

    try:
        return (parse_range(context) if context else None), (parse_keys(keys) if keys else None)
    except TimelineError as exc:
        raise InputError(str(exc)) from None


def _parse_params(items: tuple[str, ...]) -> dict:
    from anymole_usd.errors import InputError

    params = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--param expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            params[k] = json.loads(v)
        except ValueError:
            params[k] = v
    return params


@click.command("inbetween")
@click.argument("shot", type=click.Path(dir_okay=False))
@click.option("--prim", help="Only this SkelAnimation (or Skeleton) prim.")
@click.option("--context", metavar="A:B", help="Context range (overrides detection).")
@click.option("--keys", metavar="T1,T2,...", help="Keyframe times (override detection).")
@click.option("--prior", help="Prior plugin (default: graph, or video when a video model is configured).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Prior parameter (repeatable).")
@click.option("--reference", "references", multiple=True, type=click.Path(dir_okay=False),
              help="Extra animation on the same skeleton for the prior (repeatable).")
@click.option("--library", type=click.Path(file_okay=False),
              help="Motion library (`anymole-usd library build`): the prior also retrieves from its clips on "
                   "the same skeleton, used per gap only where clearly better; provenance names clip and frames.")
@click.option("--library-skeletons", type=click.Choice(["same", "all"]), default="same", show_default=True,
              help="With --library: 'all' also retrieves from other humanoid skeletons through the retarget "
                   "joint mapping (a few seconds more per shot; used only where clearly better).")
@click.option("--video-model", help="Video diffusion model: local folder or hub id.")
@click.option("--video-dir", type=click.Path(),
              help="A `video prepare` job folder with the generator's answer, or frames named by time code "
                   "(implies --prior video).")
@click.option("--keep-artifacts", type=click.Path(file_okay=False), help="Keep intermediate artifacts here.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Result layer, .usda/.usdc/.usd (default: SHOT.inbetween.usda; missing folders are created).")
@click.option("--force", is_flag=True,
              help="Let -o replace an existing file that is not this shot's result (--undo puts it back).")
@click.option("--fps", type=float, help="Sampling rate of generated frames (default: one per timecode).")
@click.option("--in-place", is_flag=True,
              help="Write filled samples into the layer that holds them (its exact bytes are kept for --undo).")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True, help="Random seed.")
@click.option("--undo", is_flag=True,
              help="Undo every earlier run on SHOT: restore each file it changed byte for byte, remove what it made.")
@click.option("--keep-result", is_flag=True, help="With --undo: keep the result layer file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@handle_errors
def command(shot, prim, context, keys, prior, params, references, library, library_skeletons, video_model, video_dir, keep_artifacts,
            output, force, fps, in_place, seed, undo, keep_result, as_json):
    """Fill every gap between authored samples of each bound SkelAnimation and
    compose the result over the existing animation (non-destructive by default)."""
    import contextlib

    from anymole_usd.pipeline import InbetweenOptions, run_inbetween

    check_write_options(undo, in_place, output, keep_result)
    if undo:
        _undo(shot, output, keep_result, as_json)
        return
    check_fps(fps)
    ctx, ks = parse_timeline_options(context, keys)
    extra = _parse_params(params)
    if video_dir:
        extra["video_dir"] = video_dir
        prior = prior or "video"
    if keep_artifacts:
        extra["keep_artifacts"] = keep_artifacts
    options = InbetweenOptions(prim=prim, context=ctx, keys=ks, prior=prior, output=output, fps=fps,
                               in_place=in_place, seed=seed, params=extra,
                               references=list(references), video_model=video_model, force=force,
                               library=os.path.abspath(library) if library else None,
                               library_skeletons=library_skeletons)
    source = _prior_source(prior, video_model)
    if source and not as_json:
        click.echo(source, err=True)
    with contextlib.ExitStack() as stack:
        bar: list = []  # created at the first report: nothing is drawn before the shot is open and planned

        def report_progress(message: str, fraction: float) -> None:
            if not bar:
                bar.append(stack.enter_context(progress(enabled=not as_json)))
                bar.append(bar[0].add_task(message, total=1.0))
            bar[0].update(bar[1], completed=fraction, description=message)

        report = run_inbetween(shot, options, progress=report_progress)
        if bar:
            bar[0].update(bar[1], completed=1.0)
    report["prior_source"] = source
    if as_json:
        emit_json(report)
        return
    from anymole_usd.schema import gap_source_lines
    from anymole_usd.writing import describe_mode

    for a in report["animations"]:
        click.echo(f"{a['prim']}: filled {a['frames_to_fill']} frames in {len(a['gaps'])} gap(s) with prior "
                   f"'{a['prior']}' ({describe_mode(a['mode'])})")
        for line in gap_source_lines(a.get("details") or {}):
            click.echo(f"  {line}")
    for s in report.get("skipped", []):
        click.echo(f"{s['prim']}: {s['reason']}")
    for note in report.get("notes", []):
        click.echo(f"note: {note}")
    if report["output"]:
        out = report["output"]
        click.echo(f"wrote {', '.join(out) if isinstance(out, list) else out}")
        if report.get("wrapper"):
            click.echo("the shot is read-only (usdz or permissions): open the output, which layers the result over it")


def check_write_options(undo: bool, in_place: bool, output: str | None, keep_result: bool) -> None:
    """Refuse options that would be silently ignored together (shared by inbetween and retarget)."""
    from anymole_usd.errors import InputError

    if in_place and output and not undo:
        raise InputError("-o and --in-place exclude each other: --in-place writes into the layer that holds the "
                         "samples, -o names a new result layer")
    if keep_result and not undo:
        raise InputError("--keep-result only goes with --undo")


def _prior_source(prior: str | None, video_model: str | None) -> str | None:
    """Say so when a config file or environment variable, not the command line, picked the prior."""
    from anymole_usd.settings import resolve

    if prior or video_model:
        return None
    setting = resolve("video.model")
    if setting.value is None:
        return None
    return f"prior 'video' chosen because the video model is set by {setting.source} ({setting.value})"


def _undo(shot: str, output: str | None, keep_result: bool, as_json: bool, command: str = "inbetween") -> None:
    """Undo ``command``'s runs on ``shot`` and print what happened (shared by inbetween and retarget)."""
    from anymole_usd import layering

    report = layering.undo(shot, output=output, keep_created=keep_result, command=command)
    if not report["actions"]:
        _check_readable(shot)  # nothing recorded: still say so if the file is not USD at all
        report["notes"] += [f"the shot still composes {layer}, an anymole-usd result, but the record of that run "
                            "(.anymole/ beside the shot) is gone, so it cannot be undone byte for byte: remove that "
                            "sublayer entry (and a skel:animationSource the run pointed at it) by hand"
                            for layer in _unrecorded_results(shot, command)]
    if as_json:
        emit_json({"shot": shot, **report})
        return
    for action in report["actions"]:
        click.echo(f"{action['action']} {action['path']}")
    for note in report["notes"]:
        click.echo(f"note: {note}")
    if not report["actions"]:
        click.echo(f"nothing to undo: anymole-usd has no record of a {command} run on this shot")
    elif all(a["action"] != "stripped" for a in report["actions"]):
        click.echo("every file is back byte for byte as it was before anymole-usd")


def _unrecorded_results(shot: str, command: str) -> list[str]:
    """Sublayers of ``shot`` that are results ``command`` made for it (their record may be gone)."""
    import os

    from pxr import Sdf, Tf

    from anymole_usd.layering import MARKER

    found = []
    try:
        root = Sdf.Layer.FindOrOpen(shot)
        for entry in root.subLayerPaths if root else []:
            path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(shot)), entry))
            layer = Sdf.Layer.FindOrOpen(path) if os.path.isfile(path) else None
            marker = dict(layer.customLayerData).get(MARKER) if layer else None
            if isinstance(marker, dict) and marker.get("tool", "inbetween") == command and os.path.normpath(os.path.join(os.path.dirname(path), str(
                    marker.get("shot", "")))) == os.path.abspath(shot):
                found.append(entry)
    except Tf.ErrorException:
        pass
    return found


def _check_readable(path: str) -> None:
    """InputError unless ``path`` is a readable USD file (USD's own reason, with line and column)."""
    from anymole_usd.reading import open_stage

    open_stage(path, check_sublayers=False)
