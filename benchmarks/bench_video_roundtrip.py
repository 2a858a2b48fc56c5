"""Perfect-frame round trip from the CLI only: `video prepare --from TRUTH`, then `inbetween --video-dir JOB`.

    nice -n 10 python benchmarks/bench_video_roundtrip.py [--clips walk,kick,...] [--variants ...] [--write]

AnyMoLe protocol (the first 2 s of a clip are context, a keyframe every second
after it; CesiumMan, 2 s long at 24 fps: 1 s context, keys every 0.5 s). For
each clip: BVH files are imported (`anymole-usd import`) to a USD "truth"; the
shot is the same file with `--context/--keys` (the held-out frames are the
truth); `video prepare` renders the known frames and, with `--from`, the truth
at every video frame (a perfect generator); `inbetween --video-dir JOB` trains
the estimator (fresh cache: timed) and mimics; `eval --reference` scores it,
beside `inbetween --prior interp` on a copy. Every step is a subprocess of the
`anymole-usd` command, exactly as a user runs it. Variants reuse the cached
estimator, so only the first one's time includes training.

Variants switch the changes of issue 16 off one by one (side by side), see
--variants; "whole chain" time = prepare + first inbetween (estimator
training, mimicking), wall and CPU, with the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BANDAI = DATA / "bvh" / "humanoid" / "bandai_namco"
TRUEBONES = DATA / "bvh" / "nonhumanoid" / "truebones"
SECTION = "Video round trip from the CLI (perfect frames)"

# name: (label, file, context A:B, keys, locomotion?, tuning set?)
CLIPS = {
    "walk": ("Bandai walk, 6 s (22 joints)", BANDAI / "dataset-1_walk_normal_001.bvh", "0:60", "90,120,150,180",
             True, True),
    "kick": ("Bandai kick, 8 s (22 joints)", BANDAI / "dataset-1_kick_normal_001.bvh", "0:60",
             "90,120,150,180,210,240", False, True),
    "run": ("Bandai run, 2.4 s (22 joints; one 0.37 s gap: the clip ends at frame 71)",
            BANDAI / "dataset-1_run_active_001.bvh", "0:60", "71", True, False),
    "walk-tired": ("Bandai tired walk, 6 s (22 joints)", BANDAI / "dataset-1_walk_tired_001.bvh", "0:60",
                   "90,120,150,180", True, False),
    "cesium": ("CesiumMan walk (mesh, 19 joints, 24 fps)", DATA / "usd" / "CesiumMan.usdz", "1:25", "37,48", True,
               False),
    "crab": ("Truebones crab dance (56 joints)", TRUEBONES / "Crabnew_Crab-dance-long.bvh", "0:60", "90,120", False,
             False),
}
# name: (label, --param list); the first runs with a fresh estimator cache (its time is the whole chain's)
VARIANTS = {
    "default": ("defaults (estimator 800 steps, heatmap stride 4, no image term on the CPU)", []),
    "mirror": ("defaults + mirrored training poses (estimator_mirror=true)", ["estimator_mirror=true"]),
    "mirror_nofusion": ("mirrored training poses, without the distance fusion",
                        ["estimator_mirror=true", "distance_fusion=0"]),
    "stride8": ("estimator heatmap stride 8, 1000 steps", ["estimator_stride=8", "estimator_steps=1000"]),
    "nofusion": ("defaults without the distance fusion (the interpolated pose's distance only)",
                 ["distance_fusion=0"]),
    "before": ("before: estimator 400 steps, roots only, network relief",
               ["estimator_steps=400", "translations=roots", "relief=network", "distance_fusion=0"]),
    "translations": ("400 steps + animated translations (relief=network)", ["estimator_steps=400",
                                                                           "relief=network"]),
    "relief": ("400 steps + animated translations + relief blend", ["estimator_steps=400"]),
    "smoothing": ("defaults + target_smoothing=2", ["target_smoothing=2"]),
    "image": ("defaults + the image term (lambda_img=50)", ["lambda_img=50"]),
}


def cli(*args: str, env: dict | None = None) -> tuple[dict, float, float]:
    """(JSON output, wall s, CPU s of the subprocess) of one anymole-usd command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "anymole_usd.cli.main", *args, "--json"], capture_output=True,
                          text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"anymole-usd {' '.join(args)} failed: {proc.stderr.strip().splitlines()[-1:]}")
    out = proc.stdout
    return json.loads(out[out.index("{"):]), wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def metrics(result: str, truth: str) -> dict:
    rep, _, _ = cli("eval", result, "--reference", truth)
    return rep["animations"][0]


def run_clip(name: str, variants: list[str], tmp: Path) -> dict:
    label, path, context, keys, _, _ = CLIPS[name]
    folder = tmp / name
    folder.mkdir()
    if path.suffix.lower() == ".bvh":
        truth = str(folder / "truth.usda")
        cli("import", str(path), "-o", truth)
    else:
        truth = str(path)
    window = ["--context", context, "--keys", keys]
    env = {"ANYMOLE_USD_CACHE": str(folder / "cache")}

    def shot(tag: str) -> tuple[str, list[str]]:
        if truth.endswith(".usda"):
            dst = folder / f"{tag}.usda"
            shutil.copy(truth, dst)
            return str(dst), []
        return truth, ["-o", str(folder / f"{tag}.inbetween.usda")]  # read-only usdz: a wrapper layer

    out = {"label": label, "rows": {}}
    interp_shot, extra = shot("interp")
    cli("inbetween", interp_shot, *window, "--prior", "interp", *extra)
    out["rows"]["interp"] = {"label": "interp", **metrics(extra[1] if extra else interp_shot, truth)}
    load0 = os.getloadavg()[0]
    prep, wall_p, cpu_p = cli("video", "prepare", truth, "-o", str(folder / "job"), *window, "--from", truth, env=env)
    out["prepare"] = {"wall": wall_p, "cpu": cpu_p, "frames": prep["frames"], "generate": prep["generate"]}
    for i, v in enumerate(variants):
        vlabel, params = VARIANTS[v]
        s, extra = shot(v)
        args = [a for p in params for a in ("--param", p)]
        rep, wall, cpu = cli("inbetween", s, *window, "--video-dir", str(folder / "job"), *args, *extra, env=env)
        row = {"label": vlabel, "wall": wall, "cpu": cpu, **metrics(extra[1] if extra else s, truth)}
        if i == 0:
            row["chain_wall"], row["chain_cpu"] = wall + wall_p, cpu + cpu_p
            row["load"] = (load0 + os.getloadavg()[0]) / 2
            metas = list((folder / "cache").rglob("meta.json"))  # training's own time
            row["train_wall"] = sum(json.loads(m.read_text()).get("train_seconds", 0.0) for m in metas)
        out["rows"][v] = row
        print(name, v, f"L2P/interp {row['l2p'] / out['rows']['interp']['l2p']:.3f}", f"{wall:.0f}s wall",
              f"{cpu:.0f}s cpu", flush=True)
    return out


def table(results: dict) -> str:
    lines = []
    for name, res in results.items():
        _, _, context, keys, loco, tune = CLIPS[name]
        base = res["rows"]["interp"]["l2p"]
        p = res["prepare"]
        lines.append(f"**{res['label']}** (context {context}, keys {keys}; {'locomotion' if loco else 'other'}, "
                     f"{'tuning set' if tune else 'held out'}; job: {p['frames']} frames, {p['generate']} to "
                     f"generate; prepare {p['wall']:.0f} s wall / {p['cpu']:.0f} s CPU)\n")
        lines.append("| method | L2Q | HL2Q | L2P | NPSS | L2P / interp | inbetween wall s | CPU s |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for v, r in res["rows"].items():
            t = f"{r['wall']:.0f} | {r['cpu']:.0f}" if "wall" in r else "- | -"
            lines.append(f"| {r['label']} | {r['l2q']:.4f} | {r['hl2q']:.4f} | {r['l2p']:.4f} | {r['npss']:.4f} | "
                         f"{r['l2p'] / base:.3f} | {t} |")
        first = next((r for r in res["rows"].values() if "chain_wall" in r), None)
        if first:
            train = first.get("train_wall")
            stages = (f" (prepare {p['wall']:.0f} s, estimator training {train:.0f} s, the rest of `inbetween`: "
                      f"renders, prediction, mimicking, writing {first['wall'] - train:.0f} s)") if train else ""
            lines.append(f"\nWhole chain (prepare + estimator training + mimicking, first row): "
                         f"{first['chain_wall']:.0f} s wall{stages}, {first['chain_cpu']:.0f} s CPU, load average "
                         f"{first['load']:.1f}.\n")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--json", help="raw results, written after each clip; clips already in it are not re-run")
    args = ap.parse_args()
    results = {}
    if args.json and Path(args.json).is_file():  # resume: clips already measured are kept
        results = json.loads(Path(args.json).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.clips.split(","):
            if name in results:
                continue
            if not CLIPS[name][1].is_file():
                print("skip", name)
                continue
            try:
                results[name] = run_clip(name, args.variants.split(","), Path(tmp))
            except RuntimeError as exc:  # one clip's failure is reported, the others still run
                print(f"{name}: {exc}", flush=True)
                continue
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))
    results = {k: results[k] for k in args.clips.split(",") if k in results}
    text = table(results)
    print(text)
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from report import machine, update_section

        header = (f"Machine: {machine()} (shared with other jobs: wall times depend on the load given). "
                  f"`nice -n 10 python benchmarks/bench_video_roundtrip.py --write`: CLI only (`video prepare "
                  f"--from TRUTH`, `inbetween --video-dir JOB`, `eval --reference`), AnyMoLe protocol, "
                  f"256x256 frames at 15 fps. Targets (issue 16): L2P <= 0.35x interp on "
                  f"locomotion, <= 0.5x on the others; whole chain < 5 min for the 6 s walk.\n\n")
        notes = Path(__file__).with_suffix(".md")  # measured findings written by hand beside the table
        update_section(SECTION, header + text + ("\n" + notes.read_text() if notes.exists() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
