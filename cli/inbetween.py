"""`anymole-usd inbetween`: fill the gaps of bound SkelAnimations and compose the result."""
from __future__ import annotations

import json

import click

from .common import emit_json, handle_errors, progress


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
@click.option("--video-model", help="Video diffusion model: local folder or hub id.")
@click.option("--video-dir", type=click.Path(), help="Frames from an external generator (implies --prior video).")
@click.option("--keep-artifacts", type=click.Path(file_okay=False), help="Keep intermediate artifacts here.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Result layer (default: SHOT.inbetween.usda).")
@click.option("--fps", type=float, help="Sampling rate of generated frames (default: one per timecode).")
@click.option("--in-place", is_flag=True, help="Write filled samples into the layer that holds them (keeps a backup).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--undo", is_flag=True, help="Remove earlier results from SHOT, restoring the original composition.")
@click.option("--keep-result", is_flag=True, help="With --undo: keep the result layer file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@handle_errors
def command(shot, prim, context, keys, prior, params, references, video_model, video_dir, keep_artifacts, output, fps, in_place, seed, undo,
            keep_result, as_json):
    """Fill every gap between authored samples of each bound SkelAnimation and
    compose the result over the existing animation (non-destructive by default)."""
    from anymole_usd import layering
    from anymole_usd.errors import InputError
    from anymole_usd.pipeline import InbetweenOptions, default_prior, run_inbetween

    if undo:
        removed = layering.undo(shot, delete_result=not keep_result)
        if as_json:
            emit_json({"shot": shot, "removed": removed})
        else:
            click.echo("restored original composition" + (f" (removed {', '.join(removed)})" if removed
                                                          else ": nothing to undo"))
        return
    if fps is not None and fps <= 0:
        raise InputError(f"--fps must be positive, got {fps:g}")
    ctx, ks = parse_timeline_options(context, keys)
    extra = _parse_params(params)
    if video_dir:
        extra["video_dir"] = video_dir
        prior = prior or "video"
    if keep_artifacts:
        extra["keep_artifacts"] = keep_artifacts
    options = InbetweenOptions(prim=prim, context=ctx, keys=ks, prior=prior, output=output, fps=fps,
                               in_place=in_place, seed=seed, params=extra,
                               references=list(references), video_model=video_model)
    chosen = prior or default_prior(video_model)
    with progress(enabled=not as_json) as bar:
        task = bar.add_task(f"in-betweening with prior '{chosen}'", total=1.0)
        report = run_inbetween(shot, options, progress=lambda msg, frac: bar.update(task, completed=frac,
                                                                                     description=msg))
        bar.update(task, completed=1.0)
    if as_json:
        emit_json(report)
        return
    for a in report["animations"]:
        click.echo(f"{a['prim']}: filled {a['frames_to_fill']} frames in {len(a['gaps'])} gap(s) with prior "
                   f"'{a['prior']}' ({a['mode']})")
    for s in report.get("skipped", []):
        click.echo(f"{s['prim']}: {s['reason']}")
    if report["output"]:
        out = report["output"]
        click.echo(f"wrote {', '.join(out) if isinstance(out, list) else out}")
        if report.get("wrapper"):
            click.echo("the shot is read-only (usdz or permissions): open the output, which layers the result over it")
