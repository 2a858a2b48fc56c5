"""Retargeting figures (issue 15) into docs/benchmarks.md.

    nice -n 10 python benchmarks/bench_retarget.py [--data ../shared/data] [--quick] [--no-write]

Pairs from the shared data, measured on both sides in leg lengths
(plugins/retarget/quality.py): contact timing F1 against the source, foot
skate, root path length, end effectors relative to the hub after scaling,
largest frame-to-frame rotation change; the identity pair (a clip onto its
own skeleton) gives the largest joint difference in sizes. Each pair is also
scored for the initial pose alone (rest-corrected rotation transfer, no
solve), the reference the solver is compared with. Tuned on the first two
pairs (Bandai walk and CMU 01_01 onto AnimLabSimpleMale); the others are
held apart. Time: a 10 s, 30 fps clip onto the 65-joint Warrok skeleton,
in process (mapping + adaptation + solve) and end to end through the CLI
(interpreter start, reading, writing the layer), with growing clip lengths.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from report import machine, update_section  # noqa: E402

DEFAULT_DATA = os.environ.get("ANYMOLE_USD_DATA",
                              os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "data"))
LIB = "library/bvh/humanoid"

# (label, source, --animation, target (USD, or a file imported to USD first), target animation, tuned on it)
PAIRS = [
    ("Bandai walk -> AnimLabSimpleMale", "bvh/humanoid/bandai_namco/dataset-1_walk_normal_001.bvh", None,
     "usd/AnimLabSimpleMale.usd", None, True),
    ("CMU 01_01 -> AnimLabSimpleMale", "bvh/humanoid/cmu/01_01.bvh", None, "usd/AnimLabSimpleMale.usd", None, True),
    ("Beta samba -> CesiumMan", f"{LIB}/brynmawr_animation_toolkit/Beta_samba_dancing.bvh", None,
     "usd/CesiumMan.usdz", None, False),
    ("CMU 142_22 -> Warrok", f"{LIB}/cmu_3dsmax_zombiehorse/142_22.bvh", None,
     f"{LIB}/brynmawr_animation_toolkit/Warrok_WarrokThriller.bvh", None, False),
    ("horse walk -> Fox", "library/gltf/nonhumanoid/mesh2motion/horse-animations.glb", "Walk", "gltf/Fox.glb",
     "Walk", False),
    ("Bandai walk -> itself", "bvh/humanoid/bandai_namco/dataset-1_walk_normal_001.bvh", None,
     "bvh/humanoid/bandai_namco/dataset-1_walk_normal_001.bvh", None, False),
]


def as_usd(path: str, folder: str, animation: str | None) -> str:
    """A USD stage for a target: USD as is, anything else imported (at 30 fps for BVH)."""
    if path.endswith((".usd", ".usda", ".usdc", ".usdz")):
        return path
    from anymole_usd.plugins.io.base import ImportOptions
    from anymole_usd.plugins.io.convert import import_to_usd

    out = os.path.join(folder, os.path.splitext(os.path.basename(path))[0] + ".usda")
    if not os.path.exists(out):
        import_to_usd(path, out, ImportOptions(animation=animation, fps=30.0 if path.endswith(".bvh") else None))
    return out


def target_of(usd: str):
    from anymole_usd.metric import up_vector
    from anymole_usd.plugins.retarget.retarget import select_binding
    from anymole_usd.reading import find_bindings, open_stage, read_motion, skel_space_up

    stage = open_stage(usd)
    b = select_binding(find_bindings(stage, usd), None, usd, need_animation=False)
    current = read_motion(stage, b, file=usd) if b.animation_path else None
    return b, current, up_vector(skel_space_up(stage, b.skeleton_path)), stage.GetTimeCodesPerSecond()


def run_pair(data: str, folder: str, pair, seconds: float | None, settings=None, solve_it: bool = True):
    from anymole_usd.plugins.retarget.quality import evaluate, identity_error
    from anymole_usd.plugins.retarget.retarget import load_source, retarget
    from anymole_usd.plugins.retarget.solve import SolveSettings

    label, src, anim, tgt, tgt_anim, _ = pair
    clip = load_source(os.path.join(data, src), animation=anim)
    binding, current, up_t, fps = target_of(as_usd(os.path.join(data, tgt), folder, tgt_anim))
    span = clip.motion.seconds[-1] - clip.motion.seconds[0]
    if seconds:
        span = min(span, seconds)
    times = np.arange(int(np.floor(span * fps + 1e-6)) + 1, dtype=np.float64)
    settings = settings or SolveSettings()
    if not solve_it:
        settings = SolveSettings(iterations=0)
    t0 = time.perf_counter()
    res = retarget(clip.motion, clip.skeleton, binding.skeleton, times=times, fps=fps, source_up=clip.up,
                   target_up=up_t, target_motion=current, settings=settings)
    elapsed = time.perf_counter() - t0
    figures = evaluate(res)
    figures.update(seconds=elapsed, joints=binding.skeleton.num_joints, solve_seconds=res.stats.seconds,
                   iterations=res.stats.iterations, chains={c.name: round(c.confidence, 2) for c in res.mapping.chains},
                   mapped=len(res.mapping.pairs))
    if "itself" in label:
        figures["identity_error"] = identity_error(res)
    return figures


def timing(data: str, folder: str, frames_list=(75, 150, 300, 600, 1200), repeat: int = 3) -> list[dict]:
    """In-process time of 142_22 (resampled to 30 fps) onto Warrok, for growing clip lengths."""
    from anymole_usd.plugins.retarget.retarget import load_source, retarget

    clip = load_source(os.path.join(data, f"{LIB}/cmu_3dsmax_zombiehorse/142_22.bvh"))
    binding, current, up_t, fps = target_of(as_usd(os.path.join(data, f"{LIB}/brynmawr_animation_toolkit/"
                                                                 "Warrok_WarrokThriller.bvh"), folder, None))
    rows = []
    for n in frames_list:
        times = np.arange(n, dtype=np.float64)
        runs = []
        for _ in range(repeat):  # median of a few: the machine is shared
            t0 = time.perf_counter()
            res = retarget(clip.motion, clip.skeleton, binding.skeleton, times=times, fps=30.0, source_up=clip.up,
                           target_up=up_t, target_motion=current)
            runs.append((time.perf_counter() - t0, res.stats.seconds, res.stats.evaluations))
        wall, solve_s, evals = sorted(runs)[len(runs) // 2]
        rows.append({"frames": n, "seconds": wall, "solve": solve_s, "evaluations": evals})
    return rows


def cli_timing(data: str, folder: str) -> float:
    """Wall time of `anymole-usd retarget` (10 s of 142_22 at 30 fps onto Warrok), interpreter start included."""
    from anymole_usd.plugins.io.base import ImportOptions
    from anymole_usd.plugins.io.convert import import_to_usd

    src = os.path.join(folder, "142_22_10s.usda")
    import_to_usd(os.path.join(data, f"{LIB}/cmu_3dsmax_zombiehorse/142_22.bvh"), src,
                  ImportOptions(fps=30.0, frames=slice(0, 1200)))
    tgt = os.path.join(folder, "warrok_target.usda")
    import_to_usd(os.path.join(data, f"{LIB}/brynmawr_animation_toolkit/Warrok_WarrokThriller.bvh"), tgt,
                  ImportOptions(frames=slice(0, 1)))  # one static pose: the skeleton, nothing to keep
    walls = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "anymole_usd.cli.main", "retarget", src, "--to", tgt, "--json"],
                       check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
    return sorted(walls)[1]


def fmt(v, spec=".3f"):
    return "n/a" if v is None else format(v, spec)


def table(rows: list[tuple[str, dict, dict, bool]]) -> str:
    head = ("| pair | frames | contact F1 | skate tgt / src (leg/s) | root path tgt / src (legs) | "
            "effector err mean / p95 | max jump tgt / src (rad) | time (s) |\n|---|---|---|---|---|---|---|---|\n")
    lines = []
    for label, f, base, tuned in rows:
        mark = " (tuning)" if tuned else ""
        skate = (f"{fmt(f.get('skate_target'))} / {fmt(f.get('skate_source'))}" if "skate_target" in f else "n/a")
        lines.append(
            f"| {label}{mark} | {f['frames']} | {fmt(f.get('contact_f1'), '.2f')} "
            f"(transfer {fmt(base.get('contact_f1'), '.2f')}) | {skate} (transfer {fmt(base.get('skate_target'))}) | "
            f"{fmt(f['path_target'], '.2f')} / {fmt(f['path_source'], '.2f')} | "
            f"{fmt(100 * f.get('effector_error_mean', float('nan')), '.1f')}% / "
            f"{fmt(100 * f.get('effector_error_p95', float('nan')), '.1f')}% "
            f"(transfer {fmt(100 * base.get('effector_error_mean', float('nan')), '.1f')}%) | "
            f"{fmt(f.get('jump_target'), '.2f')} / {fmt(f.get('jump_source'), '.2f')} | {f['seconds']:.1f} |")
    return head + "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--quick", action="store_true", help="first 4 s of each clip, no timing section")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--only", help="substring of a pair label")
    args = ap.parse_args()
    seconds = 4.0 if args.quick else None
    rows, raw = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for pair in PAIRS:
            if args.only and args.only not in pair[0]:
                continue
            f = run_pair(args.data, folder, pair, seconds)
            base = run_pair(args.data, folder, pair, seconds, solve_it=False)
            rows.append((pair[0], f, base, pair[5]))
            raw[pair[0]] = {"solved": f, "transfer": base}
            print(json.dumps({pair[0]: f}, default=float), flush=True)
        grow = [] if args.quick or args.only else timing(args.data, folder)
        cli = None if args.quick or args.only else cli_timing(args.data, folder)
    for g in grow:
        print(json.dumps(g), flush=True)
    if cli is not None:
        print(json.dumps({"cli_seconds": cli}), flush=True)
    if args.no_write or args.quick or args.only:
        return
    ident = next((r[1].get("identity_error") for r in rows if "itself" in r[0]), None)
    body = [
        f"`python benchmarks/bench_retarget.py` on {machine()} (2 cores shared with other jobs while measured). "
        "Figures on both sides in leg lengths (plugins/retarget/quality.py); \"transfer\" is the initial pose "
        "alone (rest-corrected rotation transfer, no solve). Tuned on the two AnimLabSimpleMale pairs; the "
        "rest are held apart. Whole clips, sampled on the target's time codes.",
        "",
        table(rows),
        "",
        f"Identity (Bandai walk onto its own skeleton): largest joint difference {fmt(ident, '.2e')} x size.",
        "",
        "Time, CMU 142_22 resampled to 30 fps onto Warrok (65 joints), in process "
        "(mapping + adaptation + solve):",
        "",
        "| frames | seconds (median of 3) | of which solve | L-BFGS evaluations |\n|---|---|---|---|",
    ]
    body += [f"| {g['frames']} | {g['seconds']:.2f} | {g['solve']:.2f} | {g['evaluations']} |" for g in grow]
    if cli is not None:
        body += ["", f"End to end, `anymole-usd retarget 142_22_10s.usda --to warrok.usda --json` "
                     f"(300 frames, interpreter start and writing included): {cli:.1f} s."]
    update_section("Retargeting", "\n".join(body))


if __name__ == "__main__":
    main()
