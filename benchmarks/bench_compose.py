"""compose quality: tag coverage, joint steps, foot skate and beat alignment against the library itself.

Libraries are built from ../shared/data; tags come from file or clip names.
The weights of compose's search (anymole_usd/library/compose.py) were tuned on
the Bandai Namco set only; the CMU (ZombieHorse takes), horse and Fox
libraries are held apart and reported separately.

Per request: the share of frames in tag spans that come from clips carrying
the tag (target >= 95%), the largest per-frame joint step against the
library's 99th percentile (<= 1.2x), foot skate against the library's
(<= 1.2x), and AIST++ BAS (sigma 3 frames) with ``--music`` (a 100 BPM click
track) against the same request without music (>= 1.3x), mean over seeds.

    python benchmarks/bench_compose.py [--data ../shared/data] [--seeds 0,1,2] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import wave

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")

BANDAI = "bvh/humanoid/bandai_namco"
ZOMBIE = "library/bvh/humanoid/cmu_3dsmax_zombiehorse"
HORSE = "library/gltf/nonhumanoid/mesh2motion/horse-animations.glb"
FOX = "gltf/Fox.glb"

# name: (split, inputs, tags.csv rows, requests [(label, seconds, tags or None, music?)])
SETS = {
    "bandai": ("tuned", [BANDAI], None, [
        ("walk 0-10, run 10-20", 20.0, "walk:0-10,run:10-20"),
        ("walk, kick 5-10, walk", 15.0, "walk:0-5,kick:5-10,walk:10-15"),
        ("walk + music", 30.0, "walk"),
        ("free + music", 30.0, None),
    ]),
    "cmu": ("held apart", [ZOMBIE], [("142_22.bvh", "sneak"), ("144_20.bvh", "punch"), ("143_37.bvh", "climb"),
                                     ("102_23.bvh", "shuffle")], [
        ("sneak 0-10, punch 10-20", 20.0, "sneak:0-10,punch:10-20"),
        ("sneak + music", 30.0, "sneak"),
        ("free + music", 30.0, None),
    ]),
    "horse": ("held apart", [HORSE], [(f"horse-animations.glb#{clip}", tag) for clip, tag in (
        ("Walk", "walk"), ("Turn_Left", "walk"), ("Turn_Right", "walk"), ("Trot", "trot"), ("Run", "run"),
        ("Idle", "idle"), ("Eating", "eat"))], [
        ("walk 0-6, trot 6-12, run 12-18", 18.0, "walk:0-6,trot:6-12,run:12-18"),
        ("idle, eat, walk", 15.0, "idle:0-5,eat:5-10,walk:10-15"),
        ("free + music", 30.0, None),
    ]),
    "fox": ("held apart", [FOX], [("Fox.glb#Walk", "walk"), ("Fox.glb#Run", "run"), ("Fox.glb#Survey", "survey")], [
        ("survey 0-5, walk 5-10, run 10-15", 15.0, "survey:0-5,walk:5-10,run:10-15"),
        ("walk + music", 20.0, "walk"),
    ]),
}


def click_track(path: str, bpm: float, seconds: float, sr: int = 22050) -> None:
    y = np.zeros(int(seconds * sr))
    n = int(0.03 * sr)
    click = np.sin(2 * np.pi * 1000 * np.arange(n) / sr) * np.exp(-np.arange(n) / (0.005 * sr))
    for b in np.arange(0.0, seconds - 0.05, 60.0 / bpm):
        i = int(b * sr)
        y[i:i + n] += click[: len(y) - i]
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(y, -1, 1) * 30000).astype(np.int16).tobytes())


def bandai_rows(data: str) -> list[tuple[str, str]]:
    files = sorted(f for f in os.listdir(os.path.join(data, BANDAI)) if f.endswith(".bvh"))
    return [(f, f.split("_")[1].split("-")[0]) for f in files]


def evaluate(name: str, data: str, tmp: str, seeds: list[int], wav: str) -> list[dict]:
    from anymole_usd.library import Library, build_library
    from anymole_usd.library.compose import ComposeRequest, compose
    from anymole_usd.library.music import music_beats
    from anymole_usd.library.quality import beat_alignment, composition_quality, library_stats
    from anymole_usd.library.tags import parse_spans

    split, inputs, rows, requests = SETS[name]
    rows = rows or bandai_rows(data)
    csv = os.path.join(tmp, f"{name}.csv")
    with open(csv, "w") as fh:
        fh.write("file,start,end,tag\n" + "".join(f"{f},,,{t}\n" for f, t in rows))
    lib = os.path.join(tmp, name)
    build_library(lib, [os.path.join(data, i) for i in inputs], tags=csv)
    library = Library.open(lib)
    beats, _ = music_beats(wav)
    stats = None
    out = []
    for label, seconds, tags in requests:
        with_music = "music" in label
        figs, times = [], []
        for seed in seeds:
            t0 = time.perf_counter()
            comp = compose(ComposeRequest(lib, seconds, tags=tags, seed=seed))
            times.append(time.perf_counter() - t0)
            stats = stats or library_stats(library, comp.skeleton_name, comp.fps)
            q = composition_quality(library, comp, parse_spans(tags, seconds), stats)
            if with_music:
                b = beats[beats <= seconds]
                q["bas_without"] = beat_alignment(comp, b)
                comp_m = compose(ComposeRequest(lib, seconds, tags=tags, seed=seed, music=wav))
                q["bas_with"] = beat_alignment(comp_m, b)
                qm = composition_quality(library, comp_m, parse_spans(tags, seconds), stats)
                q["step_ratio_music"], q["skate_ratio_music"] = qm["step_ratio"], qm["skate_ratio"]
                q["step_vs_source_music"], q["skate_vs_source_music"] = qm["step_vs_source"], qm["skate_vs_source"]
                q["tag_coverage_music"] = qm["tag_coverage"]
            q["segments"] = len(comp.segments)
            figs.append(q)
        row = {"set": name, "split": split, "request": label, "seconds": seconds, "seeds": len(seeds),
               "compose_s": float(np.median(times))}
        for key in figs[0]:
            vals = np.array([f[key] for f in figs], dtype=np.float64)
            row[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else None
            if key in ("step_ratio", "skate_ratio", "step_ratio_music", "skate_ratio_music", "step_vs_source",
                       "skate_vs_source"):
                row[key + "_max"] = float(np.nanmax(vals))
            if key in ("tag_coverage", "tag_coverage_music") and np.isfinite(vals).any():
                row[key + "_min"] = float(np.nanmin(vals))
        if with_music:
            row["bas_ratio"] = row["bas_with"] / row["bas_without"] if row["bas_without"] else None
        out.append(row)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("ANYMOLE_USD_DATA", DEFAULT_DATA))
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_compose_") as tmp:
        wav = os.path.join(tmp, "click100.wav")
        click_track(wav, 100, 31)
        for name in a.sets.split(","):
            rows.extend(evaluate(name, a.data, tmp, seeds, wav))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"rows": rows, "load_average": os.getloadavg()}, fh, indent=1)


if __name__ == "__main__":
    sys.exit(main())
