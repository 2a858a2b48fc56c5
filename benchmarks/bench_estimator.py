"""Joint estimator accuracy on held-out in-between frames, against interpolating the keyframes' 2D joints.

AnyMoLe protocol: train on the context (first 2 s) and the keyframes (every
1 s after it) from the front, left and right views; predict on the renders
of the ground-truth frames between the keyframes (never seen in training),
front view. Renders are 256x256 with the shot's fixed cameras
(``shot_cameras``: fitted around the known frames and the in-between root
path interpolated between them, as the pipeline fits them; the held-out
frames are not used to place the cameras).

    python benchmarks/bench_estimator.py [--data ../shared/data] [--cases cesium,walk,crab]
        [--steps N] [--input-size N] [--set NAME=JSON ...] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

# name: (file under data/, context (first, last), keyframes)
CASES = {
    "cesium": ("usd/CesiumMan.usdz", (1, 24), [36, 48]),
    "walk": ("bvh/humanoid/bandai_namco/dataset-1_walk_normal_001.bvh", (0, 60), [90, 120]),
    "kick": ("bvh/humanoid/bandai_namco/dataset-1_kick_normal_001.bvh", (0, 60), [90, 120]),
    "crab": ("bvh/nonhumanoid/truebones/Crabnew_Crab-dance-long.bvh", (0, 60), [90, 120]),
    "elephant": ("bvh/nonhumanoid/truebones/Elephant_idle1.bvh", (0, 60), [90, 120]),
}


def interpolate_known(renders, known_times: np.ndarray, times: np.ndarray):
    """Baseline: per joint, linear interpolation of the known frames' 2D joints and depth (front view)."""
    front = renders.view("front")
    idx = np.searchsorted(known_times, times)
    lo, hi = known_times[idx - 1], known_times[idx]
    w = ((times - lo) / (hi - lo))[:, None, None]
    at = {t: i for i, t in enumerate(front.times)}
    a = np.array([at[t] for t in lo])
    b = np.array([at[t] for t in hi])
    xy = (1 - w) * front.joints2d[a] + w * front.joints2d[b]
    z = (1 - w[..., 0]) * front.depth[a] + w[..., 0] * front.depth[b]
    return xy, z


def run_case(name: str, data: str, steps: int | None, input_size: int | None, seed: int,
             overrides: dict | None = None, cache: str | None = None) -> dict:
    from anymole_usd.plugins.estimator.predict import predict, prediction_errors
    from anymole_usd.plugins.estimator.renders import render_motion
    from anymole_usd.plugins.estimator.training import EstimatorSettings, train_estimator
    from anymole_usd.plugins.render.scene import load_scene
    from anymole_usd.plugins.render.shot_cameras import shot_cameras

    rel, (c0, c1), keys = CASES[name]
    times = np.arange(c0, keys[-1] + 1, dtype=float)
    scene = load_scene(os.path.join(data, rel), times=times)
    known = np.union1d(np.arange(c0, c1 + 1, dtype=float), np.asarray(keys, dtype=float))
    t0 = time.perf_counter()
    cameras = shot_cameras(scene.character, scene.motion.at_times(known), size=(256, 256))
    renders, _ = render_motion(scene.character, scene.motion, cameras, key_times=keys)
    render_s = time.perf_counter() - t0
    is_known = np.isin(renders.times, known)
    train = renders.subset(is_known)
    test = renders.subset(~is_known & (renders.views == "front"))
    settings = EstimatorSettings.from_dict({**EstimatorSettings().to_dict(), "seed": seed, **(overrides or {})})
    if steps:
        settings.steps = steps
    if input_size:
        settings.input_size = input_size
    t0, c0_cpu = time.perf_counter(), time.process_time()
    load0 = os.getloadavg()[0]
    est = train_estimator(train, settings, use_cache=cache is not None, cache_dir=cache)
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0_cpu
    load1 = os.getloadavg()[0]
    pred = predict(est, test.images)
    err = prediction_errors(pred, test)
    raw = predict(est, test.images, rigid_fit=0.0)  # depths without the rigid-length fit
    raw_dz = np.abs(raw.depth - test.depth)
    base_xy, base_z = interpolate_known(renders, known, test.times)
    # Hybrid: the estimator's depths about the character's mean, placed at the distance interpolated
    # between the known frames (what mimicking's root prior does), instead of the image-only distance.
    hybrid = predict(est, test.images, distance=base_z.mean(1))
    hybrid_dz = np.abs(hybrid.depth - test.depth)
    # The frames are a time sequence (as `estimator predict --frames` reads them): distance smoothed over time.
    smoothed = predict(est, test.images, times=test.times)
    smoothed_dz = np.abs(smoothed.depth - test.depth)
    bpx = np.linalg.norm(base_xy - test.joints2d, axis=-1)
    bdz = np.abs(base_z - test.depth)
    sel = train.views != "back"
    size = float(scene.character.height())  # largest bind-pose extent (the render stage's "height")
    # Depth about each frame's mean: the pose's relief without the distance to the camera.
    centred = np.abs((pred.depth - pred.depth.mean(1, keepdims=True))
                     - (test.depth - test.depth.mean(1, keepdims=True)))
    # The character's distance (mean joint depth): its error, signed (bias) and absolute.
    dist_err = pred.depth.mean(1) - test.depth.mean(1)
    return {
        "case": name, "file": rel, "joints": renders.num_joints, "observed": int(est.observed_joints.sum()),
        "fps": renders.fps,
        "train_images": int(sel.sum()), "test_frames": int(test.num_samples),
        "projected_height_px": float(test.projected_height.mean()), "char_height_m": renders.char_height,
        "render_s": render_s, "train_s": train_s, "train_cpu_s": train_cpu, "load": (load0 + load1) / 2,
        "steps": settings.steps, "input": list(est.input_size),
        "est_px": err["px"], "est_px_frac": err["px_frac"], "est_depth_frac": err["depth_frac"],
        "base_px": float(bpx.mean()), "base_px_frac": float((bpx.mean(1) / test.projected_height).mean()),
        "base_depth_frac": float(bdz.mean() / test.char_height),
        "est_depth_frac_size": err["depth_m"] / size,
        "est_rel_depth_frac": float(centred.mean() / test.char_height),
        "base_depth_frac_size": float(bdz.mean() / size),
        "est_hybrid_depth_frac": float(hybrid_dz.mean() / test.char_height),
        "est_depth_frac_nofit": float(raw_dz.mean() / test.char_height),
        "est_smoothed_depth_frac": float(smoothed_dz.mean() / test.char_height),
        "est_dist_bias_frac": float(dist_err.mean() / test.char_height),
        "est_dist_frac": float(np.abs(dist_err).mean() / test.char_height),
        "distance_m": float(test.depth.mean()), "cached": est.cached,
        "val_px": min((h["val_px"] for h in est.history if "val_px" in h), default=float("nan")),
    }


def table(rows: list[dict]) -> str:
    head = ("| clip | joints | train imgs / test frames | 2D error px (% proj. height) | depth error % height | "
            "depth, centred % height | depth, distance smoothed in time % height | depth without rigid fit % | "
            "depth, interp. distance % height | distance error % height | interp 2D px (%) | interp depth % | "
            "training s (load) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []

    def pct(r, key):  # rows written before a column existed show "-"
        return f"{100 * r[key]:.2f}%" if key in r else "-"

    def seen(r):  # joints no geometry follows are reported from the known renders, not read from the image
        return f" ({r['observed']} seen)" if r.get("observed", r["joints"]) != r["joints"] else ""

    for r in rows:
        lines.append(
            f"| {r['case']} | {r['joints']}{seen(r)} | {r['train_images']} / {r['test_frames']} | "
            f"{r['est_px']:.2f} ({100 * r['est_px_frac']:.2f}%) | {100 * r['est_depth_frac']:.2f}% | "
            f"{100 * r['est_rel_depth_frac']:.2f}% | {pct(r, 'est_smoothed_depth_frac')} | "
            f"{pct(r, 'est_depth_frac_nofit')} | "
            f"{pct(r, 'est_hybrid_depth_frac')} | "
            f"{pct(r, 'est_dist_frac')} (bias {100 * r.get('est_dist_bias_frac', float('nan')):+.1f}) | "
            f"{r['base_px']:.2f} ({100 * r['base_px_frac']:.2f}%) | {100 * r['base_depth_frac']:.2f}% | "
            f"{r['train_s']:.0f} ({r['load']:.1f}) |")
    return head + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("ANYMOLE_USD_DATA",
                                                         os.path.join(REPO, "..", "shared", "data")))
    parser.add_argument("--cases", default="cesium,kick,walk,crab,elephant")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--input-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=JSON",
                        help="Estimator setting, e.g. --set heatmap_weight=0 --set pose_context=false (repeatable).")
    parser.add_argument("--json", help="Also write the rows to this JSON file.")
    parser.add_argument("--cache", help="Keep (and reuse) the trained weights in this folder.")
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.overrides)}
    rows = []
    for name in args.cases.split(","):
        row = run_case(name.strip(), args.data, args.steps, args.input_size, args.seed, overrides, args.cache)
        row["settings"] = overrides
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
