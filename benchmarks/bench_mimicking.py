"""Mimicking benchmarks (issue 7): oracle, image-term ablation, trained estimator, whole-shot timing.

AnyMoLe protocol (2 s context, keyframes every 1 s; CesiumMan, 2 s long at 24 fps:
frames 0-24 context, keys 36 and 47). Results are upsampled to the stage rate,
composed with the known samples and scored with the metric plugins (L2Q, HL2Q,
L2P, NPSS) beside `interp` on the same windows. Parts:

- ``oracle``: the "estimator output" is the true joints projected by the shot's
  front camera plus their camera depth (joint term only), on four clips;
- ``ablation``: the "video" is the truth rendered at 256x256 (no floor) and the
  terms are switched: joint(+depth) only, image only, both; each with and without
  the regularisers (image term rendered at ``MimicSettings.image_size``), on CesiumMan, CMU 01_01
  and the crab;
- ``estimator``: the library path of ``anymole-usd inbetween --prior video
  --video-dir DIR`` (``VideoPrior.fill``): the truth's in-between frames are
  rendered with the shot's cameras (floor included) into a folder, the estimator
  is trained on the known frames' renders (fresh cache, so training is timed),
  predicts joints on the folder's frames, mimicking lifts them. CesiumMan and the
  whole 8 s Bandai kick window (30 fps, 22 joints, 6 keys): time per stage.

    python benchmarks/bench_mimicking.py [--parts oracle,ablation,estimator] [--write]

Each part rewrites only its own ``###`` block of the docs section.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BVH = DATA / "bvh"

CESIUM = ("CesiumMan (mesh)", DATA / "usd" / "CesiumMan.usdz", (0, 24), [36, 47])
CMU = ("CMU 01_01 (humanoid BVH, bone proxies)", BVH / "humanoid" / "cmu" / "01_01.bvh", None, 2)
ELEPHANT = ("Elephant idle (non-humanoid BVH, proxies)", BVH / "nonhumanoid" / "truebones" / "Elephant_idle1.bvh",
            None, 2)
CRAB = ("Crab dance (non-humanoid BVH, proxies)", BVH / "nonhumanoid" / "truebones" / "Crabnew_Crab-dance-long.bvh",
        None, 2)
KICK = ("Bandai kick, whole 8 s window (22 joints, bone proxies)",
        BVH / "humanoid" / "bandai_namco" / "dataset-1_kick_normal_001.bvh", None, 6)
WALK = ("Bandai walk, 6 s window (22 joints, bone proxies; trajectory root at the origin)",
        BVH / "humanoid" / "bandai_namco" / "dataset-1_walk_normal_001.bvh", None, 4)

ORACLE = {
    "joint+depth, regularisers (default)": {},
    "joint+depth, no regularisers": {"lambda_pos": 0.0, "lambda_rot": 0.0},
    "joint+depth, paper lr 2e-3": {"lr": 2e-3},
}
NO_REG = {"lambda_pos": 0.0, "lambda_rot": 0.0}
ABLATION = {
    "joint+depth only, regularisers": {"lambda_img": 0.0},
    "joint+depth only, no regularisers": {"lambda_img": 0.0, **NO_REG},
    "image only, regularisers": {"lambda_joint": 0.0},
    "image only, no regularisers": {"lambda_joint": 0.0, **NO_REG},
    "joint+depth+image, regularisers (default)": {},
    "joint+depth+image, no regularisers": NO_REG,
}
TITLES = {"oracle": "Oracle joints (joint term only)", "ablation": "Ablation: joint term, image term, regularisers",
          "estimator": "Trained estimator through the video prior (`--video-dir` library path), whole-shot time"}


def window_of(clip, context, keys):
    from anymole_usd.protocols import Window, anymole_windows

    if context:
        return Window(clip, context, list(keys), "anymole")
    w = anymole_windows(clip)[0]
    return Window(clip, w.context, w.keys[:keys], "anymole")


def scorer(clip, req):
    from anymole_usd.evaluation import compose, gap_windows, score_windows
    from anymole_usd.metric import load_metrics

    metrics = load_metrics(["l2q", "hl2q", "l2p", "npss"])
    return lambda gen: score_windows(gap_windows(clip, compose(req.known, gen, req.timeline), req.timeline), metrics)


def interp_row(req, score):
    from anymole_usd import registry

    t0 = time.perf_counter()
    gen = registry.load("priors", "interp")().fill(req)
    return score(gen), time.perf_counter() - t0, 0


def windows(clips):
    """Per clip found on disk: (label, clip, window, request, scorer, {"interp": its row})."""
    from anymole_usd.evaluation import make_request
    from anymole_usd.protocols import load_clips

    for label, path, context, keys in clips:
        if not path.is_file():
            print("skip", path)
            continue
        clip = load_clips([path])[0]
        w = window_of(clip, context, keys)
        req = make_request(w)
        score = scorer(clip, req)
        yield label, clip, w, req, score, {"interp": interp_row(req, score)}


def run_mimic(clips, conditions, images: bool):
    """Oracle-target rows: true joints (+depth) and, with ``images``, the truth rendered as the frames."""
    from anymole_usd.plugins.mimicking.optimizer import MimicSettings, mimic
    from anymole_usd.plugins.mimicking.oracle import oracle_case
    from anymole_usd.plugins.mimicking.upsample import upsample

    rows = []
    for label, clip, w, req, score, res in windows(clips):
        case = oracle_case(clip, w.context, w.keys, size=(256, 256), images=images, soft_renderer=images)
        for name, kw in conditions.items():
            settings = MimicSettings(**kw)
            t0 = time.perf_counter()
            g = mimic(clip.skeleton.parents, case.known, case.grid, case.targets, case.view, settings)
            spent = time.perf_counter() - t0
            res[name] = (score(upsample(g, case.known, req.target_times)), spent, len(case.grid.interior))
            print(label, name, round(res[name][0]["l2p"] / res["interp"][0]["l2p"], 3), f"{spent:.1f}s", flush=True)
        rows.append((label, clip, w, res))
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


# ------------------------------------------------------------------ trained estimator, library path
def write_video_dir(folder: Path, character, known, truth_motion, size):
    """The truth's in-between frames at the prior's grid times, rendered with the shot's cameras."""
    import imageio.v3 as iio

    from anymole_usd.plugins.estimator.renders import render_motion
    from anymole_usd.plugins.mimicking.schedule import build_grid
    from anymole_usd.plugins.mimicking.upsample import resample
    from anymole_usd.plugins.mimicking.video_source import frame_name
    from anymole_usd.plugins.render.shot_cameras import shot_cameras

    grid = build_grid(known.times, known.fps, 15.0)
    fill = grid.times[~grid.known]
    cams = shot_cameras(character, known, size=size)
    renders, _ = render_motion(character, resample(truth_motion, fill), cameras=cams, size=size)
    front = renders.views == "front"
    folder.mkdir(parents=True, exist_ok=True)
    for t, img in zip(renders.times[front], renders.images[front]):
        iio.imwrite(folder / frame_name(float(t)), img)
    return len(fill)


def run_estimator(clips, conditions):
    from anymole_usd import registry
    from anymole_usd.plugins.mimicking.oracle import clip_character

    rows = []
    for label, clip, w, req, score, res in windows(clips):
        character = clip_character(clip)
        stages = {}
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            n = write_video_dir(Path(tmp) / "frames", character, req.known, clip.motion, (256, 256))
            stages["render the video (not part of the prior)"] = time.perf_counter() - t0
            for name, kw in conditions.items():
                marks = []

                def progress(message, fraction, marks=marks):
                    marks.append((time.perf_counter(), message))

                req.progress, req.cache_dir = progress, str(Path(tmp) / "cache")  # first condition trains
                prior = registry.load("priors", "video")(video_dir=str(Path(tmp) / "frames"), character=character,
                                                         **kw)
                t0 = time.perf_counter()
                gen = prior.fill(req)
                spent = time.perf_counter() - t0
                res[name] = (score(gen), spent, n)
                stages[name] = stage_times(t0, marks, time.perf_counter())
                print(label, name, round(res[name][0]["l2p"] / res["interp"][0]["l2p"], 3), f"{spent:.1f}s",
                      stages[name], flush=True)
        rows.append((label, clip, w, res, stages))
    return rows


def stage_times(t0: float, marks, t_end: float) -> dict:
    """Seconds per prior stage from its progress messages ("video prior: <stage>")."""
    out, cur, start = {}, "setup", t0
    for t, msg in marks:
        if msg.startswith("video prior: "):
            out[cur] = out.get(cur, 0.0) + t - start
            cur, start = msg[len("video prior: "):], t
    out[cur] = out.get(cur, 0.0) + t_end - start
    return {k: round(v, 1) for k, v in out.items()}


def estimator_table(rows) -> str:
    out = [table([r[:4] for r in rows])]
    out.append("Time per stage (s; `estimator` includes training at 256x256 renders, a fresh cache for the first "
               "row, the cached model after):\n")
    for label, _, _, _, stages in rows:
        for name, st in stages.items():
            out.append(f"- {label} / {name}: " + (f"{st:.1f}" if isinstance(st, float) else
                                                  ", ".join(f"{k} {v}" for k, v in st.items())))
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ docs
def update_part(part: str, body: str, header: str) -> None:
    """Replace the ``### <title>`` block of the Mimicking section (others kept)."""
    from report import DOC, update_section

    text = open(DOC).read()
    m = re.search(r"^## Mimicking\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    blocks = {k: v.strip() + "\n\n" for k, v in re.findall(r"^### (.+?)\n(.*?)(?=^### |\Z)", m.group(1),
                                                            re.S | re.M)} if m else {}
    blocks[TITLES[part]] = body.strip() + "\n\n"
    order = [TITLES[p] for p in ("oracle", "ablation", "estimator")] + ["Findings"]
    notes_path = Path(__file__).with_suffix(".md")
    if notes_path.exists():
        blocks["Findings"] = notes_path.read_text().strip() + "\n"
    keys = [k for k in order if k in blocks] + [k for k in blocks if k not in order]
    update_section("Mimicking", header + "\n\n" + "".join(f"### {k}\n\n{blocks[k]}" for k in keys))


def main() -> None:
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="oracle", help="comma list of oracle, ablation, estimator")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    from report import machine

    header = (f"Machine: {machine()} (shared; torch 1 thread). `python benchmarks/bench_mimicking.py --parts "
              f"oracle,ablation,estimator --write` (each part rewrites its own block). L2P in the metric plugin's "
              f"units (file units for BVH); compare the L2P / interp column.")
    for part in args.parts.split(","):
        if part == "oracle":
            text = table(run_mimic([CESIUM, CMU, ELEPHANT, CRAB], ORACLE, images=False))
        elif part == "ablation":
            text = table(run_mimic([CESIUM, CMU, CRAB], ABLATION, images=True))
        elif part == "estimator":
            text = estimator_table(run_estimator([CESIUM, KICK, WALK], {
                "video prior, defaults (joint+depth+image)": {},
                "video prior, joint+depth only (lambda_img=0)": {"lambda_img": 0.0}}))
        else:
            raise SystemExit(f"unknown part {part}")
        print(text, flush=True)
        if args.write:
            update_part(part, text, header)


if __name__ == "__main__":
    main()
