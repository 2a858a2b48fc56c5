"""Render stage benchmark: skinning, ray casting, the differentiable renderer, and `anymole-usd render`.

    python benchmarks/bench_render.py [--repeat 3] [--device cpu|cuda:0] [--skip-cli]

Prints markdown tables (pasted into docs/benchmarks.md, section "Render").
Every figure is the best of ``--repeat`` runs after a warm-up (Warp kernels
compiled and cached beforehand); the machine's load average is printed at
start and end because the development machines are shared.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ANYMOLE_USD_DATA", REPO.parent / "shared" / "data"))
CESIUM = DATA / "usd" / "CesiumMan.usdz"


def best(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def subdivide(ch, levels: int):
    """Midpoint subdivision (x4 triangles per level); new points copy one endpoint's skin weights."""
    from dataclasses import replace

    for _ in range(levels):
        f = ch.faces
        edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        uniq, inv = np.unique(edges, axis=0, return_inverse=True)
        n = len(ch.points)
        mid = n + inv.reshape(3, -1).T  # (T, 3) midpoint of edges 01, 12, 20
        pts = np.concatenate([ch.points, 0.5 * (ch.points[uniq[:, 0]] + ch.points[uniq[:, 1]])])
        idx = np.concatenate([ch.joint_indices, ch.joint_indices[uniq[:, 0]]])
        w = np.concatenate([ch.joint_weights, ch.joint_weights[uniq[:, 0]]])
        a, b, c = f[:, 0], f[:, 1], f[:, 2]
        m01, m12, m20 = mid[:, 0], mid[:, 1], mid[:, 2]
        faces = np.concatenate([np.stack(t, 1) for t in ((a, m01, m20), (m01, b, m12), (m20, m12, c), (m01, m12, m20))])
        ch = replace(ch, points=pts, faces=faces, joint_indices=idx, joint_weights=w,
                     face_parts=np.tile(ch.face_parts, 4), joint_radius=ch.joint_radius)
    return ch


def bench_skinning(scene, repeat: int, device: str) -> list[str]:
    from anymole_usd.plugins.render.skinning import Skinner, skel_transforms, skin_numpy, skinning_matrices
    from pxr import Usd, UsdGeom, UsdSkel, Vt

    ch, motion = scene.character, scene.motion
    mats = skinning_matrices(ch, skel_transforms(ch, motion))
    skinner = Skinner(ch, device)

    def warp_lbs():
        skinner.skin(mats).numpy()

    def numpy_lbs():
        skin_numpy(ch.points, ch.joint_indices, ch.joint_weights, mats)

    stage = Usd.Stage.Open(str(CESIUM))
    root = UsdSkel.Root(stage.GetPrimAtPath("/CesiumMan/Geom/Z_UP/Armature/Skeleton_torso_joint_1_3"))
    cache = UsdSkel.Cache()
    cache.Populate(root, Usd.TraverseInstanceProxies())
    (binding,) = cache.ComputeSkelBindings(root, Usd.TraverseInstanceProxies())
    query = cache.GetSkelQuery(binding.GetSkeleton())
    skinning = binding.GetSkinningTargets()[0]
    points = UsdGeom.Mesh(skinning.GetPrim()).GetPointsAttr().Get()

    def usdskel():
        for t in motion.times:  # UsdSkel has no batched API: one call per timecode
            p = Vt.Vec3fArray(points)
            skinning.ComputeSkinnedPoints(query.ComputeSkinningTransforms(t), p, t)

    rows = []
    ref = best(usdskel, repeat)
    for name, fn in (("UsdSkel ComputeSkinnedPoints loop", usdskel), ("numpy reference (float64)", numpy_lbs),
                     (f"Warp LBS kernel ({device}, float32)", warp_lbs)):
        t = ref if fn is usdskel else best(fn, repeat)
        rows.append(f"| {name} | {motion.num_frames} x {len(ch.points)} | {t * 1e3:.1f} | {ref / t:.1f}x |")
    return rows


def bench_raycast(scene, repeat: int, device: str) -> list[str]:
    from anymole_usd.plugins.render.raycast import RayCaster
    from anymole_usd.plugins.render.views import Renderer

    ch, motion = scene.character, scene.motion
    rows = []
    for level in (0, 1, 2):
        c = subdivide(ch, level) if level else ch
        renderer = Renderer(c, device=device)
        pose = renderer.pose(motion)
        for size in ((128, 128), (256, 256), (320, 512), (512, 512)):
            if level and size not in ((256, 256),):
                continue
            for views in (("front",), ("front", "left", "right", "back")):
                cams = renderer.auto_cameras(pose, views=views, size=size)
                for ground in (True, False):
                    caster = RayCaster(c, device, ground=ground, shadows=ground)
                    verts = pose.vertices

                    def run(caster=caster, verts=verts, cams=cams):
                        for _ in caster.frames(verts, cams, ground_height=0.0):
                            pass

                    t = best(run, repeat)
                    n_img = motion.num_frames * len(views)
                    rows.append(f"| {len(c.faces)} | {size[0]}x{size[1]} | {len(views)} | "
                                f"{'yes' if ground else 'no'} | {t * 1e3 / motion.num_frames:.1f} | "
                                f"{n_img / t:.0f} | {motion.num_frames / t:.1f} |")
    return rows


def bench_soft(scene, repeat: int, device: str) -> list[str]:
    import torch
    from anymole_usd.plugins.render.soft import SoftRenderer
    from anymole_usd.plugins.render.views import Renderer

    torch.set_num_threads(1)  # intra-op threads thrash on these shared 2-core machines
    ch, motion = scene.character, scene.motion.select(np.array([12]))
    rows = []
    renderer = Renderer(ch, ground=False)
    pose = renderer.pose(motion)
    tdev = "cuda" if device.startswith("cuda") else "cpu"
    for size in ((128, 128), (256, 256), (320, 512)):
        for views in (("front",), ("front", "left", "right", "back")):
            cams = renderer.auto_cameras(pose, views=views, size=size)
            soft = SoftRenderer(ch, cams, device=tdev)
            rot = torch.tensor(motion.rotations, dtype=torch.float32, device=tdev)
            tr = torch.tensor(motion.translations, dtype=torch.float32, device=tdev)

            def forward(soft=soft, rot=rot, tr=tr):
                with torch.no_grad():
                    soft.render(rot, tr)

            def backward(soft=soft, rot=rot, tr=tr):
                r, t = rot.clone().requires_grad_(True), tr.clone().requires_grad_(True)
                soft.render(r, t).images.square().sum().backward()

            def raycast(cams=cams):
                renderer.render(motion, cams)

            tf, tb, tr_ = best(forward, repeat), best(backward, repeat), best(raycast, repeat)
            rows.append(f"| {size[0]}x{size[1]} | {len(views)} | {tr_ * 1e3:.0f} | {tf * 1e3:.0f} | "
                        f"{tb * 1e3:.0f} | {tf / tr_:.0f}x |")
    return rows


def bench_cli(repeat: int) -> list[str]:
    rows = []
    for size in ("256x256", "320x512"):
        walls, cpus = [], []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "anymole_usd.cli.main", "render", str(CESIUM), "-o",
                                os.path.join(tmp, "out"), "--size", size, "--json"], check=True,
                               capture_output=True)
                walls.append(time.perf_counter() - t)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        rows.append(f"| {size} | 4 x 48 | {min(walls):.2f} | {np.median(walls):.2f} | {min(cpus):.2f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default=None)
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--skip-soft", action="store_true")
    args = ap.parse_args()
    from anymole_usd.plugins.render.scene import load_scene
    from anymole_usd.plugins.render.skinning import default_device

    device = args.device or default_device()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"device {device}, load average at start {os.getloadavg()[0]:.1f}")
    scene = load_scene(CESIUM)
    print(f"CesiumMan: {len(scene.character.points)} points, {len(scene.character.faces)} triangles, "
          f"{scene.motion.num_frames} frames\n")
    print("| skinning | frames x points | ms | vs UsdSkel |\n|---|---|---:|---:|")
    print("\n".join(bench_skinning(scene, args.repeat, device)))
    print("\n| triangles | size | views | ground+shadow | ms per frame (all views) | images/s | frames/s |")
    print("|---:|---|---:|---|---:|---:|---:|")
    print("\n".join(bench_raycast(scene, args.repeat, device)))
    if not args.skip_soft:
        print("\n| size | views | ray cast ms | soft forward ms | soft fwd+bwd ms | soft fwd / ray cast |")
        print("|---|---:|---:|---:|---:|---:|")
        print("\n".join(bench_soft(scene, args.repeat, device)))
    if not args.skip_cli:
        print("\n| `anymole-usd render` | views x frames | best wall s | median wall s | CPU s |")
        print("|---|---|---:|---:|---:|")
        print("\n".join(bench_cli(args.repeat)))
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
