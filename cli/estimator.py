"""`anymole-usd estimator train|predict`: the scene-specific joint estimator on its own."""
from __future__ import annotations

import click

from .common import emit_json, handle_errors, progress


def _shot_options(func):
    options = [
        click.argument("shot", type=click.Path(dir_okay=False)),
        click.option("--prim", help="SkelAnimation (or Skeleton) prim when the shot holds several."),
        click.option("--context", metavar="A:B", help="Context range (overrides detection)."),
        click.option("--keys", metavar="T1,T2,...", help="Keyframe times (override detection)."),
        click.option("--size", "size_text", default="256x256", show_default=True,
                     help="Render size HEIGHTxWIDTH (the frames to predict on must have it)."),
        click.option("--backbone", default="cnn", show_default=True,
                     help="Feature backbone plugin (cnn: trained from scratch; dinov2: needs weights)."),
        click.option("--backbone-model", metavar="PATH_OR_HUB_ID",
                     help="Backbone weights (dinov2), also from $ANYMOLE_USD_BACKBONE_MODEL."),
        click.option("--steps", type=click.IntRange(min=1), default=None,
                     help="Training steps (default: 800, the estimator's EstimatorSettings.steps)."),
        click.option("--input-size", type=click.IntRange(min=16), default=None,
                     help="Longer image side the network sees (default: the backbone's)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Random seed."),
        click.option("--mirror/--no-mirror", default=False, show_default=True,
                     help="Also train on the known poses mirrored left to right (the video prior's "
                          "estimator_mirror)."),
        click.option("--cache-dir", type=click.Path(file_okay=False),
                     help="Weight cache (default $ANYMOLE_USD_CACHE/estimator or ~/.cache/anymole-usd/estimator)."),
        click.option("--no-cache", is_flag=True, help="Retrain and do not store the weights."),
        click.option("--device", default="cpu", show_default=True, help="torch device (cpu, cuda)."),
        click.option("--json", "as_json", is_flag=True, help="Print a JSON report."),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def _train(shot, prim, context, keys, size_text, backbone, backbone_model, steps, input_size, seed, mirror,
           cache_dir, no_cache, device, as_json):
    from anymole_usd.errors import InputError
    from anymole_usd.plugins.estimator.dataset import TRAIN_VIEWS
    from anymole_usd.plugins.estimator.renders import render_shot
    from anymole_usd.plugins.estimator.training import EstimatorSettings, train_estimator
    from anymole_usd.plugins.render.views import parse_size

    from .inbetween import parse_timeline_options

    try:
        size = parse_size(size_text)
    except ValueError as exc:
        raise InputError(f"--size: {exc}") from None
    ctx, ks = parse_timeline_options(context, keys)
    settings = EstimatorSettings(backbone=backbone, backbone_model=backbone_model, input_size=input_size, seed=seed)
    if steps is not None:
        settings.steps = steps
    shot_renders = render_shot(shot, prim=prim, context=ctx, keys=ks, views=TRAIN_VIEWS, size=size, device=None)
    mirrored = None
    if mirror:
        from anymole_usd.plugins.estimator.mirror import render_mirrored

        mirrored = render_mirrored(shot_renders.character, shot_renders.motion, shot_renders.cameras)
    with progress(enabled=not as_json) as bar:
        task = bar.add_task("estimator", total=1.0)
        est = train_estimator(shot_renders.renders, settings, cache_dir=cache_dir, use_cache=not no_cache,
                              device=device, extra=mirrored,
                              progress=lambda msg, frac: bar.update(task, completed=frac, description=msg))
        bar.update(task, completed=1.0)
    return shot_renders, est, mirrored


def _report(shot_renders, est, mirrored) -> dict:
    scored = [h for h in est.history if "val_loss" in h and h.get("step", 0) > 0]
    last = min(scored, key=lambda h: h["val_loss"]) if scored else {}  # the weights that were kept
    return {"animation": shot_renders.animation, "joints": est.num_joints,
            "training_images": int(sum(1 for v in shot_renders.renders.views if v in est.settings.views)),
            "mirrored_images": int(mirrored.num_samples) if mirrored is not None else 0,
            "image_size": list(est.image_size), "backbone": est.settings.backbone, "key": est.key,
            "cached": est.cached, "weights": est.path, "train_seconds": round(est.train_seconds, 2),
            "validation": {k: last[k] for k in ("val_px", "val_depth") if k in last}}


@click.group("estimator")
def command() -> None:
    """Scene-specific joint estimator: learn the character's joints from its own renders."""


@command.command("train")
@_shot_options
@handle_errors
def train(shot, prim, context, keys, size_text, backbone, backbone_model, steps, input_size, seed, mirror, cache_dir,
          no_cache, device, as_json):
    """Render SHOT's context and keyframes and train the estimator on them (cached)."""
    shot_renders, est, mirrored = _train(shot, prim, context, keys, size_text, backbone, backbone_model, steps, input_size,
                               seed, mirror, cache_dir, no_cache, device, as_json)
    report = _report(shot_renders, est, mirrored)
    if as_json:
        emit_json(report)
        return
    how = "loaded from the cache" if est.cached else f"trained in {est.train_seconds:.1f} s"
    val = report["validation"]
    extra = f"; validation error {val['val_px']:.2f} px" if "val_px" in val else ""
    click.echo(f"{report['animation']}: estimator for {est.num_joints} joints {how}{extra}")
    if est.path:
        click.echo(f"weights: {est.path}")


@command.command("predict")
@_shot_options
@click.option("--frames", "frames_dir", required=True, type=click.Path(),
              help="Folder of images in the shot's camera, named by time code (0036.png, 36.5.png).")
@click.option("--view", default="front", show_default=True, help="Camera the frames were taken from.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write predictions to .npz or .json.")
@handle_errors
def predict_cmd(shot, prim, context, keys, size_text, backbone, backbone_model, steps, input_size, seed, mirror,
                cache_dir, no_cache, device, as_json, frames_dir, view, output):
    """Predict joints (pixels and camera depth) on a folder of frames, training first if needed."""
    from anymole_usd.errors import InputError
    from anymole_usd.plugins.estimator.frames import read_frame_folder
    from anymole_usd.plugins.estimator.predict import predict
    from anymole_usd.plugins.render.views import parse_size

    try:
        size = parse_size(size_text)
    except ValueError as exc:
        raise InputError(f"--size: {exc}") from None
    times, images = read_frame_folder(frames_dir, size)  # bad frames fail before any training
    shot_renders, est, mirrored = _train(shot, prim, context, keys, size_text, backbone, backbone_model, steps, input_size,
                               seed, mirror, cache_dir, no_cache, device, as_json)
    if view not in est.view_refs:
        raise InputError(f"--view {view!r}: the estimator knows the cameras {', '.join(est.view_refs)}")
    pred = predict(est, images, view=view, device=device, times=times)  # frames of one sequence
    # observed: False for joints no geometry follows (reported where the known renders put them)
    result = {"times": times, "joint_names": est.joint_names, "joints2d": pred.joints2d, "depth": pred.depth,
              "observed": est.observed_joints, "view": view, "image_size": list(est.image_size)}
    if output:
        _write(output, result)
    report = {**_report(shot_renders, est, mirrored), "frames": int(len(times)), "output": output}
    if as_json:
        emit_json(report if output else {**report, "prediction": result})
        return
    click.echo(f"predicted {est.num_joints} joints on {len(times)} frames ({view} camera)"
               + (f": wrote {output}" if output else " (use -o FILE.npz|FILE.json to keep them)"))


def _write(path: str, result: dict) -> None:
    """Atomic write of the predictions as .npz or .json."""
    import json
    import os

    import numpy as np

    from anymole_usd.errors import InputError

    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npz", ".json"):
        raise InputError("output must end with .npz or .json", file=path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError("output folder does not exist", file=path)
    from anymole_usd.atomic_files import staging

    with staging(path) as tmp, open(tmp, "wb") as handle:
        if ext == ".npz":
            np.savez(handle, times=result["times"], joints2d=result["joints2d"], depth=result["depth"],
                     joint_names=np.asarray(result["joint_names"]), observed=result["observed"],
                     view=result["view"], image_size=np.asarray(result["image_size"]))
        else:
            handle.write(json.dumps({k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in result.items()},
                                    indent=1).encode())
