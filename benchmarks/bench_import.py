"""Import figures: BVH (largest file, growing frame counts) and Fox.glb, into docs/benchmarks.md.

    python benchmarks/bench_import.py [--data ../shared/data] [--no-write]

Side by side with a naive reference parser (a Python loop over lines and a
scipy call per joint per frame, the way many BVH loaders are written) so the
ratio shows what the vectorised MOTION parse buys. `anymole-usd import` is
also timed end to end as a subprocess (interpreter start-up included).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from report import timed  # noqa: E402
DEFAULT_DATA = os.environ.get("ANYMOLE_USD_DATA",
                              os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "data"))


def naive_parse(path: str, n_frames: int | None = None):
    """The reference: per-line float parsing and one scipy Rotation per joint per frame."""
    from scipy.spatial.transform import Rotation

    from anymole_usd.plugins.io.bvh import read_bvh

    clip = read_bvh(path, frames=slice(0, 1))  # hierarchy only; the loop below is the point
    lines = open(path).read().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().startswith("Frame Time")) + 1
    rows = lines[start:start + n_frames] if n_frames else lines[start:]
    out = []
    for line in rows:
        values = [float(v) for v in line.split()]
        frame = []
        for chans, cols in zip(clip.channels, clip.channel_columns):
            order = "".join(c[0] for c in chans if c.endswith("rotation"))
            angles = [values[c] for c, name in zip(cols, chans) if name.endswith("rotation")]
            frame.append(Rotation.from_euler(order, angles, degrees=True).as_quat())
        out.append(frame)
    return np.array(out)


def cli_run(cmd: list[str], repeat: int = 3) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of a subprocess."""
    import resource

    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def truncated_copy(src: str, frames: int, folder: str) -> str:
    """A valid BVH with the first ``frames`` frames (Frames: line rewritten)."""
    lines = open(src).read().splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.strip().startswith("Frames:"))
    out = lines[: i] + [f"Frames: {frames}", lines[i + 1]] + lines[i + 2: i + 2 + frames]
    path = os.path.join(folder, f"first_{frames}.bvh")
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    from anymole_usd.plugins.io.bvh import read_bvh
    from anymole_usd.plugins.io.convert import import_to_usd

    cmu = os.path.join(args.data, "bvh", "humanoid", "cmu", "01_01.bvh")
    fox = os.path.join(args.data, "gltf", "Fox.glb")
    tmp = tempfile.mkdtemp()
    try:
        rows = []
        for frames in (344, 688, 1376, 2752):
            path = truncated_copy(cmu, frames, tmp)
            parse = timed(lambda: read_bvh(path))
            naive = timed(lambda: naive_parse(path), 1 if frames > 700 else 3)
            usdc = timed(lambda: import_to_usd(path, os.path.join(tmp, "o.usdc")), 3)
            usda = timed(lambda: import_to_usd(path, os.path.join(tmp, "o.usda")), 3)
            rows.append((frames, parse, naive, usdc, usda))
            print(f"{frames:5d} frames: parse {parse:.3f}s (naive {naive:.2f}s, x{naive / parse:.0f}), "
                  f"import .usdc {usdc:.3f}s, .usda {usda:.3f}s")
        fox_s = timed(lambda: import_to_usd(fox, os.path.join(tmp, "fox.usdc")), 3)
        fox_a = timed(lambda: import_to_usd(fox, os.path.join(tmp, "fox.usda")), 3)
        print(f"Fox.glb (3 animations, mesh): import .usdc {fox_s:.3f}s, .usda {fox_a:.3f}s")
        exe = shutil.which("anymole-usd") or os.path.join(os.path.dirname(sys.executable), "anymole-usd")
        cli, cli_cpu = cli_run([exe, "import", cmu, "-o", os.path.join(tmp, "c.usda")])
        cli_fox, cli_fox_cpu = cli_run([exe, "import", fox, "-o", os.path.join(tmp, "f.usda")])
        print(f"CLI end to end: 01_01.bvh -> .usda {cli:.2f}s wall ({cli_cpu:.2f}s CPU), "
              f"Fox.glb -> .usda {cli_fox:.2f}s wall ({cli_fox_cpu:.2f}s CPU)")
        load = os.getloadavg()[0]
    finally:
        shutil.rmtree(tmp)

    if args.no_write:
        return
    from report import machine, update_section

    table = "\n".join(f"| {f} | {p * 1000:.0f} ms | {n:.2f} s | x{n / p:.0f} | {s * 1000:.0f} ms | {a * 1000:.0f} ms |"
                      for f, p, n, s, a in rows)
    body = f"""Machine: {machine()}, load average {load:.1f} while measuring (shared machine: wall
times are inflated by other jobs; CPU times are not). Median of 3-5 runs;
`python benchmarks/bench_import.py`.

CMU 01_01.bvh (31 joints, 120 fps), first N frames. *parse* is `read_bvh` (vectorised
MOTION block); *naive* is a reference loader written the usual way (a Python loop over
lines, one scipy call per joint per frame, rotations only); *import* is `import_to_usd`
(parse + Skeleton/SkelAnimation authoring through Sdf + atomic write).

| frames | parse | naive parse | ratio | import .usdc | import .usda |
|---|---|---|---|---|---|
{table}

Fox.glb (24 joints, 3 animations resampled to 120 fps, 1728-vertex skinned mesh):
import .usdc {fox_s * 1000:.0f} ms, .usda {fox_a * 1000:.0f} ms.

End to end, `anymole-usd import` as a subprocess (interpreter and USD start-up included):
01_01.bvh (2,752 frames) -> .usda {cli:.2f} s wall, {cli_cpu:.2f} s CPU (target < 2 s);
Fox.glb -> .usda {cli_fox:.2f} s wall, {cli_fox_cpu:.2f} s CPU.
"""
    update_section("Import", body)
    print("updated docs/benchmarks.md")


if __name__ == "__main__":
    main()
