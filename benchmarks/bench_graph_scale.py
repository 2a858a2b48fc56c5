"""Growth of the `graph` prior's cost with context length (issue 13 item 8, issue 14 scale).

    python benchmarks/bench_graph_scale.py [--sizes 5000,10000,20000,50000] [--write]

One shot per size: a context of N frames at 120 fps on the 31-joint CMU
skeleton (the four CMU takes of ../shared/data/library/bvh/humanoid/
cmu_3dsmax_zombiehorse, 142_22 + 144_20 + 143_37 + 102_23 = 8,398 frames,
concatenated; beyond that, the same takes replayed at other speeds (x0.85,
x1.15, x0.93, x1.07, ...; slerp-resampled, so no frame repeats exactly),
then two keys 300 and 751 frames after the context (2.5 s and 3.75 s gaps, as
in the issue's reproduction `--context 0:1999 --keys 2300,2751`: one DP gap,
one beam-search gap).

Each size runs in its own child process; the child reports the wall time of
``GraphPrior().fill`` (graph construction, path search, assembly, foot
locking, cleanup and the per-gap choice) and its own peak RSS from
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (which includes the ~0.3 GB of
Python, numpy and the loaded takes), plus the RSS before ``fill``. ``interp``
on the same shot is the reference run. ``--write`` puts the table in
docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ANYMOLE_USD_DATA", REPO.parent / "shared" / "data"))
TAKES = ["142_22", "144_20", "143_37", "102_23"]
SPEEDS = [1.0, 0.85, 1.15, 0.93, 1.07, 0.8, 1.2, 0.9, 1.1, 0.96, 1.04]
GAPS = (300, 751)


def long_take(frames: int):
    """(skeleton, Motion) of ``frames`` consecutive samples at 120 fps from the CMU takes."""
    from anymole_usd.motion import Motion
    from anymole_usd.plugins.io.bvh import read_bvh
    from anymole_usd.plugins.priors.motion_graph.runs import resample_to

    folder = DATA / "library" / "bvh" / "humanoid" / "cmu_3dsmax_zombiehorse"
    clips = [read_bvh(folder / f"{name}.bvh") for name in TAKES]
    skeleton = clips[0].skeleton
    parts, total = [], 0
    for speed in SPEEDS * (1 + frames // 50_000):
        for c in clips:
            m = c.motion.normalized()
            if speed != 1.0:  # the same take played faster or slower: new frames, same motion
                m = resample_to(Motion(m.times, m.rotations, m.translations, m.scales, m.fps * speed,
                                       list(m.joints)), m.fps)
            parts.append(m)
            total += m.num_frames
            if total >= frames:
                break
        if total >= frames:
            break
    rot = np.concatenate([p.rotations for p in parts])[:frames]
    tr = np.concatenate([p.translations for p in parts])[:frames]
    sc = np.concatenate([p.scales for p in parts])[:frames]
    return skeleton, Motion(np.arange(frames, dtype=np.float64), rot, tr, sc, 120.0, list(parts[0].joints))


def shot(context: int):
    from anymole_usd.prior import InbetweenRequest
    from anymole_usd.timeline import build_timeline

    skeleton, motion = long_take(context + GAPS[1] + 1)
    keys = [context - 1 + GAPS[0], context - 1 + GAPS[1]]
    known = motion.select(np.concatenate([np.arange(context), keys]))
    timeline = build_timeline(known.times, context=(0.0, float(context - 1)), keys=[float(k) for k in keys])
    return InbetweenRequest(skeleton, known, timeline, up_axis="Y", name=f"cmu x{context}")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def child(context: int, prior_name: str) -> None:
    import logging

    from anymole_usd import registry

    logging.getLogger("anymole_usd").setLevel(logging.ERROR)
    request = shot(context)
    before = rss_mb()
    prior = registry.load("priors", prior_name)()
    t0, c0 = time.perf_counter(), time.process_time()
    out = prior.fill(request)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    row = {"context": context, "prior": prior_name, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": rss_mb(),
           "rss_before_mb": before, "frames": int(out.num_frames)}
    stats = getattr(prior, "stats", None)
    if stats:
        row.update(stats)
    row["fallbacks"] = len(getattr(prior, "fallbacks", []))
    print(json.dumps(row))


def measure(context: int, prior_name: str, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", str(context), "--prior", prior_name]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"context": context, "prior": prior_name, "error": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        return {"context": context, "prior": prior_name, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def count(v) -> str:
    return f"{v:,}" if isinstance(v, int) else "-"


def table(rows: list[dict]) -> str:
    lines = ["| context frames | graph nodes | edges | graph fill, wall | CPU | peak RSS | RSS before fill | interp fill | "
             "CPU growth | RSS growth |", "|---|---|---|---|---|---|---|---|---|---|"]
    prev = None
    for g, i in rows:
        if "error" in g:
            lines.append(f"| {g['context']:,} | - | - | {g['error']} | - | - | - | - | - | - |")
            continue
        grow_t = grow_m = "-"
        if prev is not None:
            k = np.log(g["context"] / prev["context"])
            grow_t = f"n^{np.log(g['cpu_seconds'] / prev['cpu_seconds']) / k:.2f}"
            extra, extra0 = g["peak_rss_mb"] - g["rss_before_mb"], prev["peak_rss_mb"] - prev["rss_before_mb"]
            grow_m = f"n^{np.log(max(extra, 1) / max(extra0, 1)) / k:.2f}"
        lines.append(f"| {g['context']:,} | {count(g.get('nodes'))} | {count(g.get('edges'))} | {g['seconds']:.1f} s | "
                     f"{g['cpu_seconds']:.1f} s | {g['peak_rss_mb'] / 1024:.2f} GB | {g['rss_before_mb'] / 1024:.2f} GB | "
                     f"{i.get('seconds', float('nan')) * 1e3:.0f} ms | {grow_t} | {grow_m} |")
        prev = g
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="5000,10000,20000,50000")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per child")
    ap.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--prior", default="graph", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.prior)
        return
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        g = measure(n, "graph", args.timeout)
        i = measure(n, "interp", args.timeout)
        print(json.dumps(g), file=sys.stderr)
        rows.append((g, i))
    text = table(rows)
    print(text)
    if args.write:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from report import machine, update_section

        update_section("Graph prior: cost against context length", GROWTH_TEXT.format(machine=machine(), table=text))


GROWTH_TEXT = """`python benchmarks/bench_graph_scale.py --write` ({machine}; the 2 cores are shared with other jobs).
A context of N frames at 120 fps on the 31-joint CMU skeleton (four CMU takes concatenated, replayed at
other speeds beyond their 8,398 frames), then keys 300 and 751 frames later (one DP gap, one beam gap).
One child process per size; "CPU" is the child's process time during `fill` (all threads: less
sensitive than wall time to the other jobs on the machine), peak RSS the child's `ru_maxrss` (Python,
numpy and the loaded takes included; "RSS before fill" is that part); growth exponents are between
consecutive rows (CPU; RSS on the part above "before").

{table}
"""


if __name__ == "__main__":
    main()
