"""Motion library scale: build time and peak memory, a growth table, query and compose times.

1. ``full``: a library of every clip under ../shared/data/{bvh,library,usd}: build
   (wall and CPU seconds, peak RSS of the build process), a no-change rebuild,
   and composing 60 s (``compose`` in-process after the build, and the CLI).
2. ``growth``: libraries of 10k / 50k / 100k / 500k source frames made of the
   Bandai Namco clips replicated (symbolic links; replicated clips are fine for
   the curve): build time, peak RSS, and the time of 1,000 k=8 queries, with
   each time divided by n log n of the smallest size (flat or falling = at
   most n log n).

Every measurement runs in its own process (peak RSS is that process's).

    python benchmarks/bench_library.py [--data ../shared/data] [--parts full,growth]
        [--sizes 10000,50000,100000,500000] [--json OUT.json]
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

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")
BANDAI = "bvh/humanoid/bandai_namco"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker_build(lib: str, inputs: list[str]) -> dict:
    from anymole_usd.library import build_library

    w, c = time.perf_counter(), time.process_time()
    report = build_library(lib, inputs)
    return {"wall_s": time.perf_counter() - w, "cpu_s": time.process_time() - c, "peak_rss_mb": _peak_rss_mb(),
            "clips": report.clips, "frames": report.frames, "nodes": report.nodes,
            "added": len(report.added), "unchanged": len(report.unchanged)}


def worker_query(lib: str, queries: int = 1000, k: int = 8) -> dict:
    from anymole_usd.library import Library

    library = Library.open(lib)
    sk = library.skeleton()
    nodes = library.nodes(sk.key)
    w = time.perf_counter()
    library.index(sk.key)  # the tree is built when a library is first queried
    open_s = time.perf_counter() - w
    rng = np.random.default_rng(0)
    q = nodes.features[rng.integers(0, nodes.size, queries)].astype(np.float64)
    q += rng.normal(0, 0.01, q.shape)
    library.query(sk.key, q[:10], k=k)
    walls, cpus = [], []
    for _ in range(5):  # median of 5: one batch is a fraction of a second on a shared machine
        w, c = time.perf_counter(), time.process_time()
        library.query(sk.key, q, k=k)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return {"tree_s": open_s, "query_wall_s": float(np.median(walls)), "query_cpu_s": float(np.median(cpus)),
            "nodes": int(nodes.size), "peak_rss_mb": _peak_rss_mb()}


def worker_compose(lib: str, seconds: float, tags: str | None, skeleton: str | None, repeats: int = 3) -> dict:
    from anymole_usd.library.compose import ComposeRequest, compose

    request = ComposeRequest(lib, seconds, skeleton=skeleton, tags=tags)
    compose(request)  # imports; every timed run opens the library and reads its clips again
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        comp = compose(request)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return {"wall_s": float(np.median(walls)), "cpu_s": float(np.median(cpus)), "frames": comp.motion.num_frames,
            "segments": len(comp.segments), "realtime_factor": seconds / float(np.median(walls))}


def in_process(fn: str, *args) -> dict:
    """Run ``worker_<fn>(*args)`` in a fresh Python process; its JSON result."""
    code = (f"import json, sys; sys.path.insert(0, {HERE!r}); import bench_library as b; "
            f"print(json.dumps(b.worker_{fn}(*json.loads(sys.argv[1]))))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def full(data: str, tmp: str) -> dict:
    lib = os.path.join(tmp, "full")
    inputs = [os.path.join(data, d) for d in ("bvh", "library", "usd")]
    res = {"build": in_process("build", lib, inputs)}
    res["rebuild"] = in_process("build", lib, inputs)
    csv = os.path.join(tmp, "tags.csv")
    with open(csv, "w") as fh:
        fh.write("file,start,end,tag\n")
        for f in sorted(os.listdir(os.path.join(data, BANDAI))):
            if f.endswith(".bvh"):
                fh.write(f"{f},,,{f.split('_')[1].split('-')[0]}\n")
    from anymole_usd.library import build_library

    build_library(lib, [], tags=csv)
    res["compose_60s"] = in_process("compose", lib, 60.0, "walk:0-30,run:30-60", None)
    out = os.path.join(tmp, "c.usda")
    w = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "anymole_usd.cli.main", "compose", lib, "-o", out, "--duration", "60",
                        "--tags", "walk:0-30,run:30-60", "--json"], capture_output=True, text=True)
    res["compose_60s_cli_wall_s"] = time.perf_counter() - w if r.returncode == 0 else None
    res["query"] = in_process("query", lib)
    return res


def growth(data: str, tmp: str, sizes: list[int]) -> list[dict]:
    src = os.path.join(data, BANDAI)
    files = sorted(f for f in os.listdir(src) if f.endswith(".bvh"))
    from anymole_usd.library.sources import read_clips

    frames_per_set = sum(read_clips(os.path.join(src, f))[0][0].motion.num_frames for f in files)
    rows = []
    for n in sizes:
        folder = os.path.join(tmp, f"rep{n}")
        os.makedirs(folder, exist_ok=True)
        copies = int(np.ceil(n / frames_per_set))
        for c in range(copies):
            for f in files:
                os.symlink(os.path.join(src, f), os.path.join(folder, f"{c:04d}_{f}"))
        lib = os.path.join(tmp, f"lib{n}")
        b = in_process("build", lib, [folder])
        q = in_process("query", lib)
        rows.append({"target_frames": n, "frames": b["frames"], "nodes": b["nodes"], "build_wall_s": b["wall_s"],
                     "build_cpu_s": b["cpu_s"], "build_peak_rss_mb": b["peak_rss_mb"],
                     "tree_s": q["tree_s"], "query_1000_s": q["query_cpu_s"]})
        shutil.rmtree(lib, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
    n0 = rows[0]["frames"]
    for r in rows:
        nlogn = r["frames"] * np.log(r["frames"]) / (n0 * np.log(n0))
        r["build_per_nlogn"] = r["build_cpu_s"] / nlogn / rows[0]["build_cpu_s"]
        logn = np.log(r["nodes"]) / np.log(rows[0]["nodes"])
        r["query_per_logn"] = r["query_1000_s"] / logn / rows[0]["query_1000_s"]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("ANYMOLE_USD_DATA", DEFAULT_DATA))
    ap.add_argument("--parts", default="full,growth")
    ap.add_argument("--sizes", default="10000,50000,100000,500000")
    ap.add_argument("--json")
    a = ap.parse_args()
    parts = a.parts.split(",")
    out = {"load_average": os.getloadavg(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench_library_") as tmp:
        if "full" in parts:
            out["full"] = full(a.data, tmp)
            print(json.dumps(out["full"], indent=1))
        if "growth" in parts:
            out["growth"] = growth(a.data, tmp, [int(s) for s in a.sizes.split(",")])
            print("frames  nodes  build wall/cpu s  peak MB  tree s  1000 queries s  build/nlogn  query/logn")
            for r in out["growth"]:
                print(f"{r['frames']:7d} {r['nodes']:6d} {r['build_wall_s']:7.1f}/{r['build_cpu_s']:6.1f} "
                      f"{r['build_peak_rss_mb']:8.0f} {r['tree_s']:7.3f} {r['query_1000_s']:8.3f} "
                      f"{r['build_per_nlogn']:10.2f} {r['query_per_logn']:10.2f}")
    out["load_average_after"] = os.getloadavg()
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
