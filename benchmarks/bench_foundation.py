"""Foundation figures: USD read/write of the 3023-frame elephant, CLI start-up, whole `inbetween`.

    python benchmarks/bench_foundation.py [--data ../shared/data] [--no-write]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from report import timed  # noqa: E402


def bench_elephant(data):
    from pxr import Sdf

    from anymole_usd.animation_specs import to_animation_order, write_channels
    from anymole_usd.reading import find_bindings, open_stage, read_motion

    path = os.path.join(data, "usd", "SoC-ElephantWithMonochord.usdc")
    stage = open_stage(path)
    b = find_bindings(stage)[0]
    motion = read_motion(stage, b)
    read_s = timed(lambda: read_motion(stage, b), 3)

    def write():
        layer = Sdf.Layer.CreateAnonymous(".usdc")
        with Sdf.ChangeBlock():
            write_channels(layer, b.animation_path, motion.times, to_animation_order(motion, b.anim_to_skel))
        out = os.path.join(tempfile.mkdtemp(), "anim.usdc")
        layer.Export(out)
        shutil.rmtree(os.path.dirname(out))

    write_s = timed(write, 3)
    return motion, read_s, write_s


def bench_help():
    exe = shutil.which("anymole-usd") or os.path.join(os.path.dirname(sys.executable), "anymole-usd")
    subprocess.run([exe, "--help"], capture_output=True, check=True)  # warm the file cache
    return timed(lambda: subprocess.run([exe, "--help"], capture_output=True, check=True), 7)


def bench_inbetween(prior):
    exe = shutil.which("anymole-usd") or os.path.join(os.path.dirname(sys.executable), "anymole-usd")

    def once():
        tmp = tempfile.mkdtemp()
        shutil.copytree(os.path.join(REPO, "examples", "cesiumman"), os.path.join(tmp, "demo"))
        subprocess.run([exe, "inbetween", os.path.join(tmp, "demo", "shot.usda"), "--prior", prior, "--json"],
                       capture_output=True, check=True)
        shutil.rmtree(tmp)

    return timed(once, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("ANYMOLE_USD_DATA", os.path.join(REPO, "..", "shared", "data")))
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    from report import machine, update_section

    from anymole_usd import registry

    motion, read_s, write_s = bench_elephant(args.data)
    help_s = bench_help()
    rows = [
        f"| read SkelAnimation, elephant ({motion.num_frames} frames x {motion.num_joints} joints) | {read_s * 1e3:.0f} ms |",
        f"| write the same samples (Sdf, ChangeBlock) + export .usdc | {write_s * 1e3:.0f} ms |",
        f"| `anymole-usd --help` start-up (median of 7, target < 0.5 s) | {help_s * 1e3:.0f} ms |",
    ]
    for prior in [p for p in ("interp", "graph") if p in registry.names("priors")]:
        rows.append(f"| whole `anymole-usd inbetween` on examples/cesiumman (22 frames), prior `{prior}`, "
                    f"process start to exit | {bench_inbetween(prior):.2f} s |")
    body = (f"Machine: {machine()}, no GPU. `python benchmarks/bench_foundation.py`; medians.\n\n"
            "| what | time |\n|---|---|\n" + "\n".join(rows))
    print(body)
    if not args.no_write:
        update_section("Foundation: USD I/O and CLI", body)


if __name__ == "__main__":
    main()
