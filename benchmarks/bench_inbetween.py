"""In-betweening benchmark: every prior on identical windows of every real clip, and graph speed.

    python benchmarks/bench_inbetween.py [--data ../shared/data] [--json scores.json] [--quick]
    python benchmarks/bench_inbetween.py --speed

Quality: the AnyMoLe protocol (2 s context, keys every 1 s up to 8 s; data-free)
and the LaFAN1 protocol (10 context frames, transitions of 5/15/30/45 frames),
the latter both data-free and with leave-one-out references (the other clips on
the same skeleton, the analogue of LaFAN1's training set, for `graph` only).
Prints markdown tables: per protocol and clip group (mean over clips, every
clip weighing the same) and per clip, with `ground-truth`'s own foot skate.

Speed: `graph` against `interp` on a synthetic 65-joint humanoid (the Bandai
walk with 43 finger joints added) at 30 fps, 2 s context then keys every
second, for shots of 5, 10 and 20 s; median of 3 runs.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ANYMOLE_USD_DATA", REPO.parent / "shared" / "data"))
PRIORS = ["zero-velocity", "interp", "graph"]
METRICS = ["l2q", "hl2q", "l2p-norm", "npss", "foot-skate", "key-jump"]


def quality(data: Path, quick: bool, json_path: str | None) -> None:
    from anymole_usd.evaluation import aggregate, markdown_table, per_clip_table, run_benchmark
    from anymole_usd.metric import load_metrics
    from anymole_usd.protocols import load_clips

    logging.getLogger("anymole_usd").setLevel(logging.ERROR)
    paths = [data / "bvh", data / "usd"]
    clips = load_clips(paths)
    if quick:
        clips = [c for c in clips if "walk_normal_001" in c.name or "Elephant_idle1" in c.name]
    metrics = load_metrics(METRICS)
    runs = [("anymole", "none"), ("lafan1", "none"), ("lafan1", "others")]
    everything = {}
    for protocol, refs in runs:
        t0 = time.perf_counter()
        scores = run_benchmark(clips, PRIORS, protocol, metrics, references=refs,
                               progress=lambda s, f: print(f"  {f:4.0%} {s}", file=sys.stderr))
        wall = time.perf_counter() - t0
        everything[f"{protocol}/{refs}"] = [s.to_dict() for s in scores]
        title = f"{protocol} protocol, references: {refs}"
        print(f"\n### {title}\n\n({len(clips)} clips, {wall:.1f} s wall for all priors)\n")
        groups = [("humanoid", lambda s: s.group == "humanoid"),
                  ("non-humanoid", lambda s: s.group == "non-humanoid"),
                  ("locomotion", lambda s: "locomotion" in s.tags)]
        for name, sel in groups:
            agg = aggregate(scores, sel)
            if not agg:
                continue
            print(f"\n{name} (mean over clips):\n")
            print(markdown_table(agg, METRICS, PRIORS))
            ratio_table(agg)
        settings = ["anymole"] if protocol == "anymole" else ["lafan1-30", "lafan1-45"]
        for st in settings:
            for m in ("l2p-norm", "npss", "foot-skate"):
                print(f"\nper clip, {m}, {st}:\n")
                print(per_clip_table(scores, m, PRIORS, st))
    if json_path:
        Path(json_path).write_text(json.dumps(everything, indent=1))


def ratio_table(agg: dict) -> None:
    """graph / interp per setting, and graph's foot skate against the ground truth's own."""
    from anymole_usd.evaluation import setting_order

    lines = []
    for st in sorted({k[0] for k in agg}, key=setting_order):
        g, i, t = agg.get((st, "graph")), agg.get((st, "interp")), agg.get((st, "ground-truth"))
        if not g or not i:
            continue
        cells = [f"{g[m] / i[m]:.2f}" if i[m] else "-" for m in ("l2p-norm", "npss", "foot-skate")]
        skate = f"{g['foot-skate'] / t['foot-skate']:.2f}" if t and t["foot-skate"] else "-"
        lines.append(f"| {st} | " + " | ".join(cells) + f" | {skate} |")
    if lines:
        print("\n| setting | L2P graph/interp | NPSS graph/interp | skate graph/interp | skate graph/truth |")
        print("|---|---|---|---|---|")
        print("\n".join(lines))


def synthetic_shot(seconds: float, data: Path):
    """A 65-joint humanoid walking ``seconds`` at 30 fps: context 2 s, keys every 1 s."""
    from anymole_usd import rotations as rot
    from anymole_usd.motion import Motion
    from anymole_usd.plugins.io.bvh import read_bvh
    from anymole_usd.prior import InbetweenRequest
    from anymole_usd.skeleton import Skeleton
    from anymole_usd.timeline import build_timeline

    clip = read_bvh(data / "bvh/humanoid/bandai_namco/dataset-2_walk_normal_004.bvh")
    sk, m = clip.skeleton, clip.motion
    names, parents, rest = list(sk.joints), list(sk.parents), list(sk.rest_transforms)
    hands = [i for i, n in enumerate(sk.short_names) if "Hand" in n][:2]
    extra = 65 - len(names)
    for k in range(extra):  # finger chains of three joints, alternating hands
        p = hands[(k // 3) % 2] if k % 3 == 0 else len(names) - 1
        names.append(f"{names[p]}/f{k}")
        parents.append(p)
        t = np.eye(4)
        t[3, :3] = (2.0, 0.0, 0.0)
        rest.append(t)
    skeleton = Skeleton(names, np.array(parents), np.array(rest))
    n = int(round(seconds * 30))
    # Loop the walk forwards (ping-pong would reverse it): repeat the clip's frames with the root advanced.
    idx = np.arange(n) % m.num_frames
    laps = np.arange(n) // m.num_frames
    tr = m.translations[idx].copy()
    tr[:, 1, 2] += laps * (m.translations[-1, 1, 2] - m.translations[0, 1, 2])
    phase = np.random.default_rng(0).random(extra)[None] * 6
    ang = 0.2 * np.sin(np.arange(n)[:, None] / 5.0 + phase)
    fingers = rot.exp_map(np.stack([np.zeros_like(ang), np.zeros_like(ang), ang], -1))
    motion = Motion(np.arange(n, dtype=float), np.concatenate([m.rotations[idx], fingers], 1),
                    np.concatenate([tr, np.tile(np.array(rest)[len(sk.joints):, 3, :3], (n, 1, 1))], 1),
                    np.ones((n, 65, 3)), 30.0, names)
    keys = list(range(90, n, 30)) + ([n - 1] if (n - 1) % 30 else [])
    known = motion.select(np.array(list(range(61)) + keys))
    timeline = build_timeline(known.times, context=(0.0, 60.0), keys=[float(k) for k in keys])
    return InbetweenRequest(skeleton, known, timeline, up_axis="Y")


def speed(data: Path) -> None:
    from anymole_usd import registry

    logging.getLogger("anymole_usd").setLevel(logging.ERROR)
    print("\n| shot | frames to fill | interp | graph | graph / interp |")
    print("|---|---|---|---|---|")
    for seconds in (5, 10, 20):
        req = synthetic_shot(seconds, data)
        row = {}
        for name in ("interp", "graph"):
            prior = registry.load("priors", name)
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                prior().fill(req)
                times.append(time.perf_counter() - t0)
            row[name] = statistics.median(times)
        print(f"| {seconds} s, 65 joints | {len(req.target_times)} | {row['interp'] * 1e3:.0f} ms | "
              f"{row['graph'] * 1e3:.0f} ms | x{row['graph'] / row['interp']:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--json", default=None, help="also write every score to this JSON file")
    ap.add_argument("--quick", action="store_true", help="two clips only (smoke run)")
    ap.add_argument("--speed", action="store_true", help="only the speed benchmark")
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"no data at {args.data} (set ANYMOLE_USD_DATA)")
    if not args.speed:
        quality(args.data, args.quick, args.json)
    speed(args.data)


if __name__ == "__main__":
    main()
