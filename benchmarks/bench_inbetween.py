"""In-betweening benchmark: the default prior (`graph`, no library) against `interp`, and graph speed.

    python benchmarks/bench_inbetween.py [--data ../shared/data] [--part tuning|held-out|both]
                                         [--protocols anymole,lafan1] [--json scores.json]
    python benchmarks/bench_inbetween.py --speed

Quality: every clip of ../shared/data/bvh, ../shared/data/library (BVH and
every glTF/GLB animation) and ../shared/data/usd, split BEFORE tuning into a
*tuning* part (the clips the default prior's choices were tuned on) and a
*held-out* part (never looked at while tuning), reported separately: see
``TUNING`` and ``HELD_OUT`` below. Protocols (anymole_usd/protocols.py): AnyMoLe
(2 s context, keys every 1 s up to 8 s) and LaFAN1 (10 context frames, one
key after 5/15/30/45 frames; 30 and 45 reported), both data-free (no
reference motion, no library). The rule checked per clip (issue 14): graph's
L2P at most 1.02 x interp's, NPSS not above interp's, key-jump at most 1.2
(or interp's own, where interpolation itself jumps more). L2P in metres (BVH
in the unit `import` guesses) and size-normalised.

Speed: `graph` against `interp` on a synthetic 65-joint humanoid (the Bandai
walk with 43 finger joints added) at 30 fps, 2 s context then keys every
second, for shots of 5, 10 and 20 s; median of 3 runs. Growth with context
length: benchmarks/bench_graph_scale.py.
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
PRIORS = ["interp", "graph"]
METRICS = ["l2p", "l2p-norm", "npss", "key-jump", "foot-skate"]
LIB = "library/bvh/humanoid/"
GLB = "library/gltf/nonhumanoid/mesh2motion/"
# The split, fixed before tuning (paths relative to the data folder). Tuning: the previous session's
# clips (bvh/, usd/) plus a spread of the library: two long CMU takes, martial arts, a noisy Kinect
# capture, dance, sitting, ballet, three creature files. Held out: everything else, including both
# Nikki files (the same take; one is the lower-body-only skeleton), the hand-only skeleton, the
# monkey, and the bird, dragon and shark.
TUNING = ["bvh", "usd",
          LIB + "cmu_3dsmax_zombiehorse/142_22.bvh", LIB + "cmu_3dsmax_zombiehorse/144_20.bvh",
          LIB + "cmu_daz_acrnn/martial_04.bvh", LIB + "creativeinquiry_bvh_examples/Jackson.bvh",
          LIB + "brynmawr_animation_toolkit/Beta_samba_dancing.bvh",
          LIB + "brynmawr_animation_toolkit/Mia_standToSit.bvh", LIB + "mass_humanik/pirouette.bvh",
          GLB + "horse-animations.glb", GLB + "spider-animations.glb", GLB + "snake-animations.glb"]
HELD_OUT = [LIB + "cmu_3dsmax_zombiehorse/143_37.bvh", LIB + "cmu_3dsmax_zombiehorse/102_23.bvh",
            LIB + "cmu_daz_acrnn/salsa_10.bvh", LIB + "creativeinquiry_bvh_examples/05_20-mb.bvh",
            LIB + "perfume_dev/A_test.bvh", LIB + "mass_humanik/backflip.bvh",
            LIB + "brynmawr_animation_toolkit/Beta_back_flip_to_uppercut.bvh",
            LIB + "brynmawr_animation_toolkit/Warrok_WarrokThriller.bvh",
            LIB + "brynmawr_animation_toolkit/Nikki_120_Nikki_JumpForward_Cal20.bvh",
            LIB + "brynmawr_animation_toolkit/Nikki_Lower_Nikki.Nikki_Cal_20.bvh",
            LIB + "brynmawr_animation_toolkit/SIB01-story01-bvh.bvh", LIB + "manipnet_hands/mug1_leftHand.bvh",
            "library/bvh/nonhumanoid/truebones_motion2motion/Monkey__Walk.bvh",
            GLB + "bird-animations.glb", GLB + "dragon-animations.glb", GLB + "shark-animations.glb"]
PARTS = {"tuning": TUNING, "held-out": HELD_OUT}
L2P_LIMIT, JUMP_LIMIT = 1.02, 1.2


def verdict(g: dict, i: dict) -> list[str]:
    """Which of the per-clip rules graph breaks against interp (empty: none)."""
    out = []
    if g["l2p-norm"] > L2P_LIMIT * i["l2p-norm"] + 1e-12:
        out.append("L2P")
    if g["npss"] > i["npss"] * (1 + 1e-9) + 1e-12:
        out.append("NPSS")
    if g["key-jump"] > max(JUMP_LIMIT, i["key-jump"]) + 1e-9:
        out.append("key-jump")
    return out


def run_part(data: Path, part: str, protocols: list[str]) -> list[dict]:
    from anymole_usd.evaluation import run_benchmark
    from anymole_usd.metric import load_metrics
    from anymole_usd.protocols import load_clips

    clips = load_clips([data / p for p in PARTS[part]])
    metrics = load_metrics(METRICS)
    rows = []
    for protocol in protocols:
        t0 = time.perf_counter()
        scores = run_benchmark(clips, PRIORS, protocol, metrics,
                               progress=lambda s, f: print(f"  {part} {f:4.0%} {s}", file=sys.stderr))
        print(f"{part}, {protocol}: {len(clips)} clips, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        rows += [{**s.to_dict(), "part": part, "protocol": protocol} for s in scores]
    return rows


def paired(rows: list[dict], setting: str) -> dict:
    """clip -> {prior: row} for one setting."""
    out: dict = {}
    for r in rows:
        if r["setting"] == setting:
            out.setdefault(r["clip"], {})[r["prior"]] = r
    return {c: d for c, d in out.items() if "graph" in d and "interp" in d}


def summary_table(rows: list[dict], settings: list[str]) -> str:
    lines = ["| part | setting | clips | L2P interp (m) | L2P graph (m) | L2P graph/interp: mean, worst | "
             "NPSS graph/interp: mean, worst | key-jump graph (interp) | clips breaking a rule |",
             "|---|---|---|---|---|---|---|---|---|"]
    for part in PARTS:
        for st in settings:
            pairs = paired([r for r in rows if r["part"] == part], st)
            if not pairs:
                continue
            g = {c: d["graph"] for c, d in pairs.items()}
            i = {c: d["interp"] for c, d in pairs.items()}
            l2p = np.array([g[c]["l2p-norm"] / i[c]["l2p-norm"] for c in pairs if i[c]["l2p-norm"] > 0])
            npss = np.array([g[c]["npss"] / i[c]["npss"] for c in pairs if i[c]["npss"] > 0])
            broken = [f"{c} ({', '.join(v)})" for c in pairs if (v := verdict(g[c], i[c]))]
            lines.append(f"| {part} | {st} | {len(pairs)} | {np.mean([d['l2p'] for d in i.values()]):.3f} | "
                         f"{np.mean([d['l2p'] for d in g.values()]):.3f} | {l2p.mean():.3f}, {l2p.max():.3f} | "
                         f"{npss.mean():.3f}, {npss.max():.3f} | "
                         f"{np.nanmean([d['key-jump'] for d in g.values()]):.2f} "
                         f"({np.nanmean([d['key-jump'] for d in i.values()]):.2f}) | "
                         f"{len(broken)}{': ' + '; '.join(broken) if broken else ''} |")
    return "\n".join(lines)


def clip_table(rows: list[dict], part: str, settings: list[str]) -> str:
    head = "| clip | group | windows | L2P interp (m) | " + " | ".join(
        f"{st}: L2P g/i | NPSS g/i | key-jump g (i) | interp gaps" for st in settings) + " | rules |"
    lines = [head, "|" + "---|" * (5 + 4 * len(settings))]
    mine = [r for r in rows if r["part"] == part]
    per = {st: paired(mine, st) for st in settings}
    clips = list(dict.fromkeys(r["clip"] for r in mine if r["prior"] == "graph"))
    for c in clips:
        first = next((per[st][c] for st in settings if c in per[st]), None)
        if first is None:
            continue
        cells, broken = [], set()
        for st in settings:
            d = per[st].get(c)
            if d is None:
                cells.append("- | - | - | -")
                continue
            g, i = d["graph"], d["interp"]
            ratio = g["l2p-norm"] / i["l2p-norm"] if i["l2p-norm"] > 0 else float("nan")
            nratio = g["npss"] / i["npss"] if i["npss"] > 0 else float("nan")
            cells.append(f"{ratio:.3f} | {nratio:.3f} | {g['key-jump']:.2f} ({i['key-jump']:.2f}) | "
                         f"{g['fallbacks']}")
            broken |= {f"{st} {v}" for v in verdict(g, i)}
        i0 = first["interp"]
        lines.append(f"| {c} | {i0['group']} | {i0['windows']} | {i0['l2p']:.3f} | " + " | ".join(cells)
                     + f" | {', '.join(sorted(broken)) or 'ok'} |")
    return "\n".join(lines)


def quality(data: Path, parts: list[str], protocols: list[str], json_path: str | None) -> None:
    logging.getLogger("anymole_usd").setLevel(logging.ERROR)
    rows = []
    for part in parts:
        rows += run_part(data, part, protocols)
    if json_path:
        Path(json_path).write_text(json.dumps(rows, indent=1))
    report(rows, protocols)


def report(rows: list[dict], protocols: list[str]) -> None:
    settings = (["anymole"] if "anymole" in protocols else []) + (
        ["lafan1-30", "lafan1-45"] if "lafan1" in protocols else [])
    print("\n### Summary per part (data-free: no reference, no library)\n")
    print(summary_table(rows, settings))
    for part in PARTS:
        if any(r["part"] == part for r in rows):
            print(f"\n### Per clip, {part}\n")
            print(clip_table(rows, part, settings))


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
    ap.add_argument("--part", choices=["tuning", "held-out", "both"], default="both")
    ap.add_argument("--protocols", default="anymole,lafan1")
    ap.add_argument("--json", default=None, help="also write every score to this JSON file")
    ap.add_argument("--from-json", default=None, help="only print the tables of an earlier --json run")
    ap.add_argument("--speed", action="store_true", help="only the speed benchmark")
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"no data at {args.data} (set ANYMOLE_USD_DATA)")
    protocols = [p for p in args.protocols.split(",") if p]
    if args.from_json:
        report(json.loads(Path(args.from_json).read_text()), protocols)
        return
    if not args.speed:
        parts = list(PARTS) if args.part == "both" else [args.part]
        quality(args.data, parts, protocols, args.json)
    speed(args.data)


if __name__ == "__main__":
    main()
