"""Retargeting figures (issue 15) into docs/benchmarks.md.

    nice -n 10 python benchmarks/bench_retarget.py [--data ../shared/data] [--quick] [--no-write]

Pairs from the shared data, measured on both sides in leg lengths
(plugins/retarget/quality.py): contact timing F1 against the source, foot
skate, root path length, end effectors relative to the hub after scaling,
largest frame-to-frame rotation change; the identity pair (a clip onto its
own skeleton) gives the largest joint difference in sizes. Each pair is also
scored for the initial pose alone (rest-corrected rotation transfer, no
solve), the reference the solver is compared with. Tuned on the Bandai walk
and CMU 01_01 onto AnimLabSimpleMale and on horse -> Fox; Beta samba ->
CesiumMan, CMU 142_22 -> Warrok and the identity pair are held apart.
Time: a 10 s, 30 fps clip onto the 65-joint Warrok skeleton, in process
(mapping + adaptation + solve, growing clip lengths) and end to end through
the CLI (interpreter start, reading, writing the layer).
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
     "Walk", True),
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
            t0, c0 = time.perf_counter(), time.process_time()
            res = retarget(clip.motion, clip.skeleton, binding.skeleton, times=times, fps=30.0, source_up=clip.up,
                           target_up=up_t, target_motion=current)
            runs.append((time.perf_counter() - t0, time.process_time() - c0, res.stats.seconds,
                         res.stats.evaluations))
        wall, cpu, solve_s, evals = sorted(runs)[len(runs) // 2]
        rows.append({"frames": n, "seconds": wall, "cpu": cpu, "solve": solve_s, "evaluations": evals})
    return rows


def cli_timing(data: str, folder: str) -> tuple[float, float]:
    """Wall time of `anymole-usd retarget` (10 s of 142_22 at 30 fps onto Warrok), interpreter start included."""
    from anymole_usd.plugins.io.base import ImportOptions
    from anymole_usd.plugins.io.convert import import_to_usd

    src = os.path.join(folder, "142_22_10s.usda")
    import_to_usd(os.path.join(data, f"{LIB}/cmu_3dsmax_zombiehorse/142_22.bvh"), src,
                  ImportOptions(fps=30.0, frames=slice(0, 1200)))
    tgt = os.path.join(folder, "warrok_target.usda")
    import_to_usd(os.path.join(data, f"{LIB}/brynmawr_animation_toolkit/Warrok_WarrokThriller.bvh"), tgt,
                  ImportOptions(frames=slice(0, 1)))  # one static pose: the skeleton, nothing to keep
    import resource

    runs = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "anymole_usd.cli.main", "retarget", src, "--to", tgt, "--json"],
                       check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        runs.append((time.perf_counter() - t0, cpu))
        subprocess.run([sys.executable, "-m", "anymole_usd.cli.main", "retarget", "--undo", "--to", tgt],
                       check=True, capture_output=True)
    return sorted(runs)[1]


def fmt(v, spec=".3f"):
    return "n/a" if v is None else format(v, spec)


def table(rows: list[tuple[str, dict, dict, bool]]) -> str:
    head = ("| pair | frames | contact F1 | skate tgt / src (leg/s) | root path tgt / src (legs) | "
            "effector err mean / p95 | one-ratio err | max jump tgt / src (rad) | time (s) |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for label, f, base, tuned in rows:
        mark = " (tuning)" if tuned else ""
        skate = f"{fmt(f.get('skate_target'))} / {fmt(f.get('skate_source'))}" if "skate_target" in f else "n/a"
        pct = lambda d, k: fmt(100 * d.get(k, float("nan")), ".1f") + "%"  # noqa: E731
        lines.append(
            f"| {label}{mark} | {f['frames']} | {fmt(f.get('contact_f1'), '.3f')} | {skate} | "
            f"{fmt(f['path_target'], '.2f')} / {fmt(f['path_source'], '.2f')} | "
            f"{pct(f, 'effector_error_mean')} / {pct(f, 'effector_error_p95')} | "
            f"{pct(f, 'effector_error_path_mean')} | "
            f"{fmt(f.get('jump_target'), '.3f')} / {fmt(f.get('jump_source'), '.3f')} | {f['seconds']:.1f} |")
    base_head = ("\n\nThe same pairs with the solver off (0 iterations: the rest-corrected transfer and the reaching "
                 "swing, then the same hub path, contact pins and leaf limit):\n\n"
                 "| pair | contact F1 | skate tgt (leg/s) | effector err mean / p95 | max jump (rad) |\n"
                 "|---|---|---|---|---|\n")
    base_lines = [f"| {label} | {fmt(b.get('contact_f1'), '.3f')} | {fmt(b.get('skate_target'))} | "
                  f"{fmt(100 * b.get('effector_error_mean', float('nan')), '.1f')}% / "
                  f"{fmt(100 * b.get('effector_error_p95', float('nan')), '.1f')}% | "
                  f"{fmt(b.get('jump_target'), '.3f')} |"
                  for label, _, b, _ in rows]
    return head + "\n".join(lines) + base_head + "\n".join(base_lines)


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
        f"`python benchmarks/bench_retarget.py` on {machine()}, shared with other jobs while measured (CPU "
        "times beside wall times where it matters). Figures on "
        "both sides in leg lengths (plugins/retarget/quality.py): contact F1 of the planted frames (graph "
        "prior's rule, same leg-length thresholds both sides); skate = horizontal foot speed on the steps the "
        "source's foot is in contact; effector error = distance of each limb, head or tail end from the hub "
        "against the part-wise scaled source (chest from the pelvis in units of spine, hand from the chest in "
        "units of arm), over the hub-to-end chain length; one-ratio error = the same against the source "
        "scaled by one ratio for the whole hub-to-end path (for information); max jump = the largest "
        "frame-to-frame change of any local rotation, both on the output times. Whole clips, sampled on the "
        "target's time codes (CesiumMan and AnimLabSimpleMale 24/s, Warrok imported at 30/s, Fox 24/s).",
        "",
        table(rows),
        "",
        f"Identity (Bandai walk onto its own skeleton, imported to USD): largest joint difference "
        f"{fmt(ident, '.1e')} x size (criterion 1e-4).",
        "",
        "Time, CMU 142_22 resampled to 30 fps onto Warrok (65 joints), in process (analysis, mapping, "
        "adaptation, solve, pins; median of 3):",
        "",
        "| frames | wall s | CPU s | of which solve (wall) | kernel evaluations |\n|---|---|---|---|---|",
    ]
    body += [f"| {g['frames']} | {g['seconds']:.2f} | {g['cpu']:.2f} | {g['solve']:.2f} | {g['evaluations']} |"
             for g in grow]
    if cli is not None:
        body += ["", f"End to end, `anymole-usd retarget 142_22_10s.usda --to warrok.usda --json` (10 s at 30 fps = "
                     f"300 frames, 65 joints; interpreter start, reading, writing the layer; median of 3): "
                     f"{cli[0]:.1f} s wall, {cli[1]:.1f} s CPU (criterion: < 10 s)."]
    body += ["", FINDINGS]
    update_section("Retargeting", "\n".join(body))


FINDINGS = """### How the pieces earned their place (development runs, 4 s of each pair)

- Hub-rooted versus chain-by-chain scaling: scaling every hub-to-end path by one ratio put the chest
  where three parts disagreed on it (arms 6-13% off on the AnimLabSimpleMale pairs); chains scaled from
  their own start (pelvis -> chest -> hand) are consistent, and the figure is measured against them.
- Joints inside a chain as light guides (weight 0.1; ends 4, hub 50, planted contacts 20): their scaled
  offsets cannot fit the target's proportions (a hip joint hangs from the pelvis, not from the leg's
  scale) and at weight 1 they dragged the hips 4% of the size off their target.
- Diagonal preconditioning by lever arm and the analytic reaching pass (each chain swung about its
  first joint towards its target) took the 60-iteration effector error on CMU 01_01 from 7.8% to 1.4%;
  two-bone IK in the reaching pass was dropped: it flipped straightening knees (0.67 rad jumps on a walk
  whose largest is 0.43).
- The final two-bone-IK pin of planted feet (the graph prior's `two_bone_ik`) took the skate ratio from
  1.8-2.2x to 1.0-1.1x; guarded against bend-plane flips (a frame whose pin would turn a limb joint by more
  than 0.15 rad gets half the move, a quarter, then none).
- Windows of 150 frames (16 shared, blended) give every frame the same iterations on a 40 s clip.
- The optimiser: torch.optim's L-BFGS over the torch bridge took 22 s on 91 frames x 23 joints (8 s of it
  importing torch._dynamo, then slow small-vector ops on the busy machine); scipy's L-BFGS-B on the Warp
  kernels' own numpy API 2 s, but on 300 frames x 65 joints a third of its time went to the bounds
  bookkeeping; a two-loop L-BFGS with the Warp arrays kept between evaluations and dot products without
  BLAS threads (OpenBLAS spun 3 ms per dot against the other processes) solves those 300 frames in
  about 1.2 s.

### Known limits and what changed for the quadruped pair

- Quadruped onto a quadruped (horse walk -> Fox; contact F1 0.899, largest joint change 0.295 rad against
  the source's 0.197, root path 0.04 against 0.01 legs before these four): (1) the pin's fallback
  fraction (whole move, half, a quarter, none) was chosen frame by frame, so a paw switching from the
  whole move to none turned by 0.30 rad in one frame; the fraction is now settled over 3 frames either
  side, never above what a frame allows (jump 0.295 -> 0.240). (2) The Fox's hind legs are short for the
  horse's stance: their pins lay up to 3.6% of the leg beyond reach, the legs straight and the feet
  hovering 1.6% of the size above their pins (contacts lost); after the solve, where a held limb cannot
  reach 99.5% of its length, every target but the contact joints' comes down along the up axis by what
  the limb needs (settled over 0.1 s, never less) and the clip is solved again (F1 0.897 -> 0.955; at 98%
  the humanoid walks' hips came down up to 2% of the leg, a visible knee bend at every heel strike; at
  99.5% at most 0.5%, at 100% the Fox reached 0.953). The second solve runs only where a limb falls
  short, which happens on the humanoid walks too: up to twice the solve time there. (3) Leaves that stand for several source joints (the Fox's
  paw carries the horse's ankle and hoof) summed their turns on the same hand-keyed frames (0.219 rad);
  their steps above the source's largest are spread over neighbouring frames (plugins/retarget/leaves.py;
  a leaf moves no position). (4) The hub is put exactly on its target's horizontal path before the pins
  (the solver left it millimetres off, differently per frame: 0.04 legs of path on a 0.01-leg sway).
- The head of CMU 01_01 (a chest anchor whose three spine joints map onto AnimLabSimpleMale's three with
  a different curve) converges slowest: its p95 is the largest of the humanoid pairs.
"""


if __name__ == "__main__":
    main()
