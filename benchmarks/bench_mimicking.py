"""Oracle benchmark of mimicking (issue 7): ground-truth in-between frames as the "video".

AnyMoLe protocol (2 s context, keyframes every 1 s; CesiumMan, 2 s long at 24 fps:
frames 0-24 context, keys 36 and 47). The oracle "estimator output" is the true
joints projected by the front camera plus their camera depth. Results are
upsampled to the stage rate, composed with the known samples and scored with the
metric plugins (L2Q, HL2Q, L2P, NPSS) beside `interp` on the same windows.

    python benchmarks/bench_mimicking.py [--keys N] [--write]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

CLIPS = [("CesiumMan (mesh)", DATA / "usd" / "CesiumMan.usdz", (0, 24), [36, 47]),
         ("CMU 01_01 (humanoid BVH, bone proxies)", DATA / "bvh" / "humanoid" / "cmu" / "01_01.bvh", None, None),
         ("Elephant idle (non-humanoid BVH, proxies)", DATA / "bvh" / "nonhumanoid" / "truebones" / "Elephant_idle1.bvh",
          None, None)]
CONDITIONS = {
    "joint+depth, regularisers (default)": {},
    "joint+depth, no regularisers": {"lambda_pos": 0.0, "lambda_rot": 0.0},
    "joint+depth, paper lr 2e-3": {"lr": 2e-3},
}


def run(max_keys: int):
    from anymole_usd.evaluation import compose, gap_windows, make_request, score_windows
    from anymole_usd.metric import load_metrics
    from anymole_usd.plugins.mimicking.optimizer import MimicSettings, mimic
    from anymole_usd.plugins.mimicking.oracle import oracle_case
    from anymole_usd.plugins.mimicking.upsample import upsample
    from anymole_usd.protocols import Window, anymole_windows, load_clips
    from anymole_usd import registry

    metrics = load_metrics(["l2q", "hl2q", "l2p", "npss"])
    rows = []
    for label, path, context, keys in CLIPS:
        if not path.is_file():
            print("skip", path)
            continue
        clip = load_clips([path])[0]
        w = Window(clip, context, keys, "anymole") if context else anymole_windows(clip)[0]
        w = Window(clip, w.context, w.keys[:max_keys], "anymole")
        req = make_request(w)
        t0 = time.perf_counter()
        interp = registry.load("priors", "interp")().fill(req)
        res = {"interp": (score_windows(gap_windows(clip, compose(req.known, interp, req.timeline), req.timeline),
                                        metrics), time.perf_counter() - t0, 0)}
        case = oracle_case(clip, w.context, w.keys, size=(256, 256), images=False, soft_renderer=False)
        for name, kw in CONDITIONS.items():
            t0 = time.perf_counter()
            g = mimic(clip.skeleton.parents, case.known, case.grid, case.targets, case.view, MimicSettings(**kw))
            gen = upsample(g, case.known, req.target_times)
            spent = time.perf_counter() - t0
            res[name] = (score_windows(gap_windows(clip, compose(req.known, gen, req.timeline), req.timeline),
                                       metrics), spent, len(case.grid.interior))
        rows.append((label, clip, w, res))
        print(label, {k: (round(v[0]["l2p"], 4), round(v[1], 1)) for k, v in res.items()}, flush=True)
    return rows


def table(rows) -> str:
    out = []
    for label, clip, w, res in rows:
        out.append(f"**{label}** ({clip.skeleton.num_joints} joints, {clip.motion.fps:g} fps, context "
                   f"{w.context[0]}-{w.context[1]}, keys {w.keys})\n")
        out.append("| method | L2Q | HL2Q | L2P | NPSS | L2P / interp | time (s) | s per optimised frame |")
        out.append("|---|---|---|---|---|---|---|---|")
        base = res["interp"][0]["l2p"]
        for name, (v, spent, n) in res.items():
            per = f"{spent / n:.2f}" if n else "-"
            out.append(f"| {name} | {v['l2q']:.4f} | {v['hl2q']:.4f} | {v['l2p']:.4f} | {v['npss']:.4f} | "
                       f"{v['l2p'] / base:.3f} | {spent:.1f} | {per} |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=2, help="keyframes per window (bounds run time)")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    rows = run(args.keys)
    text = table(rows)
    print(text)
    if args.write:
        from report import machine, update_section

        note = open(Path(__file__).with_suffix(".md")).read() if Path(__file__).with_suffix(".md").exists() else ""
        update_section("Mimicking", f"Machine: {machine()}. `python benchmarks/bench_mimicking.py --keys "
                                    f"{args.keys} --write`.\n\n{text}\n{note}")


if __name__ == "__main__":
    main()
