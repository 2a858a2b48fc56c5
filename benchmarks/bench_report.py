"""Report benchmark: size and time of `anymole-usd report` on real shots, and what a browser shows.

    python benchmarks/bench_report.py [--out DIR] [--device cpu|cuda:0] [--clips cmu,walk,fox]

For each clip a shot is made from real motion (a dense import, a context and
keyframes held out with --context/--keys, filled by the default prior) and
reported with --reference (the dense import) and --compare interp. Prints a
markdown table (pasted into docs/benchmarks.md, section "Review report"):
report size (must stay under 25 MB for a 10 s shot: mail attachments), clip
share of it, wall time, and the time of the same report with one panel fewer
(no --compare: rendering and plotting is what grows with panels). With headless
Chromium (Debian's `chromium`) installed, each report is also screenshotted
into DIR (look at them) and checked non-blank; without it that column says so.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ANYMOLE_USD_DATA", REPO.parent / "shared" / "data"))

# name -> (file, import frames A:B, context, keys): 10 s of CMU at 120 fps with three 2 s gaps; a 6.5 s walk at
# 30 fps with two 1 s gaps; the glTF fox (mesh; its Survey clip, imported at 120 time codes/s), two gaps.
CLIPS = {
    "cmu": (DATA / "bvh" / "humanoid" / "cmu" / "01_01.bvh", "0:1200", "0:479", "720,960,1198"),
    "walk": (DATA / "bvh" / "humanoid" / "bandai_namco" / "dataset-1_walk_normal_001.bvh", "0:194", "0:59",
             "90,120"),
    "fox": (DATA / "gltf" / "Fox.glb", None, "0:120", "240,410"),
}


def cli(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "anymole_usd.cli.main", *args, "--json"], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"anymole-usd {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def screenshot(html: Path, png: Path) -> str:
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                   None)
    if browser is None:
        return "no Chromium"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", "--hide-scrollbars", "--window-size=1280,3000",
                        f"--screenshot={png}", f"file://{html}"], capture_output=True, timeout=300, check=False)
    if not png.is_file():
        return "failed"
    import imageio.v3 as iio

    img = iio.imread(png)[..., :3]
    return f"non-blank (std {img.reshape(-1, 3).std(0).min():.0f})" if img.reshape(-1, 3).std(0).min() > 20 \
        else "BLANK"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="folder for shots, reports and screenshots (default: a temp dir)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--clips", default=",".join(CLIPS))
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-report-")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.1f}; files in {out}")
    rows = []
    for name in args.clips.split(","):
        src, frames, context, keys = CLIPS[name]
        truth, shot = out / f"{name}.truth.usda", out / f"{name}.usda"
        extra = ["--frames", frames] if frames else []
        cli("import", str(src), "-o", str(truth), *extra)
        cli("import", str(src), "-o", str(shot), *extra)
        filled = cli("inbetween", str(shot), "--context", context, "--keys", keys)
        anim = filled["animations"][0]
        device = ["--device", args.device] if args.device else []
        t0 = time.perf_counter()
        one = cli("report", str(shot), "--reference", str(truth), "-o", str(out / f"{name}.two.html"), *device)
        two_panels = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = cli("report", str(shot), "--reference", str(truth), "--compare", "interp", *device)
        three_panels = time.perf_counter() - t0
        html = Path(rep["output"])
        look = screenshot(html, out / f"{name}.report.png")
        rows.append((name, src.name, shot_seconds(truth), anim["prior"], len(rep["gaps"]),
                     sum(g["generated"] for g in rep["gaps"]), rep["bytes"] / 1e6, rep["clip_bytes"] / 1e6,
                     rep["video"], three_panels, two_panels, one["bytes"] / 1e6, look))
    print("\n| clip | file | shot s | prior | gaps | generated frames | report MB (3 panels) | clips MB | format | "
          "time s (3 panels) | time s (2 panels) | report MB (2 panels) | Chromium screenshot |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]} | {r[4]} | {r[5]} | {r[6]:.2f} | {r[7]:.2f} | {r[8]} | "
              f"{r[9]:.1f} | {r[10]:.1f} | {r[11]:.2f} | {r[12]} |")
    print(f"\nload average {os.getloadavg()[0]:.1f}; screenshots in {out}")
    assert all(r[6] < 25 for r in rows), "a report is over 25 MB"


def shot_seconds(path: Path) -> float:
    from anymole_usd.plugins.render.scene import load_scene

    m = load_scene(path).motion
    return float((m.times[-1] - m.times[0]) / m.fps + 1.0 / m.fps)


if __name__ == "__main__":
    main()
