"""Forward kinematics side by side: per-frame UsdSkel loop, vectorised numpy
reference, Warp kernels (cpu, and cuda when present), forward and
forward+backward, on 1,000 and 10,000 frames of a 66-joint skeleton
(shared/data/usd/synthetic/skeleton.usda; a synthetic 65-joint tree when the
data folder is absent) with random rotations.

    python benchmarks/bench_fk.py [--frames 1000,10000] [--repeats 5] [--no-write] [--no-compile]

Timings are the best of ``--repeats`` runs after one warm-up call, so kernel
compile time is excluded; it is measured separately in fresh processes with
an empty kernel cache (cold) and again with that cache filled (warm). The
table is written to docs/benchmarks.md under "## Forward kinematics".
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ANYMOLE_USD_DATA") or ROOT.parent / "shared" / "data")
SECTION = "Forward kinematics"


def load_skeleton():
    """(name, joints, parents, rest (J,4,4)) of skeleton.usda, or a synthetic 65-joint tree."""
    path = DATA / "usd" / "synthetic" / "skeleton.usda"
    if path.exists():
        from anymole_usd.reading import find_bindings, open_stage

        skel = find_bindings(open_stage(path))[0].skeleton
        return "skeleton.usda (66 joints)", skel.joints, skel.parents, skel.rest_transforms
    rng = np.random.default_rng(0)
    parents = np.array([-1] + [int(rng.integers(max(0, j - 4), j)) for j in range(1, 65)])
    joints, rest = [], np.tile(np.eye(4), (65, 1, 1))
    rest[1:, 3, :3] = rng.normal(size=(64, 3)) * 10
    for j, p in enumerate(parents):
        joints.append(f"j{j}" if p < 0 else f"{joints[p]}/j{j}")
    return "synthetic tree (65 joints)", joints, parents, rest


def random_motion(parents, rest, n_frames, seed=0):
    from anymole_usd.kinematics import decompose_matrices

    rng = np.random.default_rng(seed)
    n_j = len(parents)
    rot = rng.normal(size=(n_frames, n_j, 4))
    rot /= np.linalg.norm(rot, axis=-1, keepdims=True)
    _, rest_t, _ = decompose_matrices(rest)
    trans = np.broadcast_to(rest_t, (n_frames, n_j, 3)).copy()
    roots = parents < 0
    trans[:, roots] += np.cumsum(rng.normal(size=(n_frames, roots.sum(), 3)), axis=0)
    # float32 values, so UsdSkel (quatf/float3) and the other methods see the same numbers
    return rot.astype(np.float32).astype(np.float64), trans.astype(np.float32).astype(np.float64)


def usdskel_query(joints, rest, rot, trans):
    """An in-memory stage whose SkelAnimation holds the motion as time samples 0..F-1."""
    from pxr import Gf, Sdf, Usd, UsdSkel, Vt

    stage = Usd.Stage.CreateInMemory()
    root = UsdSkel.Root.Define(stage, "/Char")
    skel = UsdSkel.Skeleton.Define(stage, "/Char/Skel")
    skel.CreateJointsAttr(joints)
    skel.CreateRestTransformsAttr(Vt.Matrix4dArray.FromNumpy(rest))
    skel.CreateBindTransformsAttr(Vt.Matrix4dArray([Gf.Matrix4d(1.0)] * len(joints)))
    anim = UsdSkel.Animation.Define(stage, "/Char/Skel/Anim")
    anim.CreateJointsAttr(joints)
    anim.CreateScalesAttr(Vt.Vec3hArray.FromNumpy(np.ones((len(joints), 3), np.float16)))
    r_attr, t_attr = anim.CreateRotationsAttr(), anim.CreateTranslationsAttr()
    with Sdf.ChangeBlock():
        for f in range(len(rot)):
            r_attr.Set(Vt.QuatfArray.FromNumpy(rot[f].astype(np.float32)), f)
            t_attr.Set(Vt.Vec3fArray.FromNumpy(trans[f].astype(np.float32)), f)
    UsdSkel.BindingAPI.Apply(skel.GetPrim()).CreateAnimationSourceRel().SetTargets([anim.GetPath()])
    cache = UsdSkel.Cache()
    cache.Populate(root, Usd.PrimDefaultPredicate)
    return stage, cache.GetSkelQuery(skel)


def usdskel_loop(query, n_frames, n_joints):
    from pxr import Usd

    out = np.empty((n_frames, n_joints, 4, 4))
    for f in range(n_frames):
        out[f] = np.asarray(query.ComputeJointSkelTransforms(Usd.TimeCode(f)))
    return out


def best_time(fn, repeats):
    fn()  # warm-up: compiles or loads kernels, touches memory
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def kernel_row(parents, rot, trans, device, dtype, backward, repeats):
    """The FK kernel alone on arrays already on ``device``: forward, and forward + tape backward."""
    import warp as wp

    from anymole_usd.kernels import fk

    arrays = fk.FKArrays(parents, rot, trans, device=device, dtype=dtype, requires_grad=True)
    p = arrays.precision
    seeds = {
        arrays.positions: wp.ones(arrays.positions.shape, dtype=p.vec3, device=device),
        arrays.linear: wp.ones(arrays.linear.shape, dtype=p.mat33, device=device),
    }

    def fwd():
        arrays.launch()
        wp.synchronize_device(device)

    def fwd_bwd():
        for a in (arrays.rotations, arrays.translations, arrays.scales):
            a.grad.zero_()
        tape = wp.Tape()
        with tape:
            arrays.launch(backward)
        tape.backward(grads=seeds)
        wp.synchronize_device(device)

    label = f"Warp {device} kernel {dtype.__name__}"
    if backward == "warp":
        label += " (Warp-generated adjoint)"
    return label, best_time(fwd, repeats), best_time(fwd_bwd, repeats), arrays.matrices()


def warp_rows(parents, rot, trans, device, repeats):
    """[(label, forward s, forward+backward s, result (F,J,4,4) or None)] for Warp on one device."""

    from anymole_usd.kernels import fk

    rows = [kernel_row(parents, rot, trans, device, dtype, backward, repeats)
            for dtype, backward in ((np.float32, "manual"), (np.float64, "manual"), (np.float32, "warp"))]
    g_pos, g_lin = np.ones(trans.shape), np.ones(trans.shape + (3,))
    rows.append((
        f"Warp {device} numpy API float64",
        best_time(lambda: fk.forward_kinematics(parents, rot, trans, device=device), repeats),
        best_time(lambda: fk.forward_kinematics_vjp(parents, rot, trans, None, g_pos, g_lin, device=device), repeats),
        fk.forward_kinematics(parents, rot, trans, device=device),
    ))
    try:
        rows.append(torch_row(parents, rot, trans, device, repeats))
    except ImportError:
        pass
    return rows


def torch_row(parents, rot, trans, device, repeats):
    """FK + 3D joint loss through the torch bridge, float32, as an optimiser would call it."""
    import torch

    from anymole_usd.kernels import torch_ops

    # torch's CPU thread pool stalls for milliseconds per tensor op on a loaded 2-core machine;
    # one thread matches the other (single-threaded) rows
    torch.set_num_threads(1)
    tdev = "cuda" if device.startswith("cuda") else "cpu"
    r = torch.tensor(rot, dtype=torch.float32, device=tdev, requires_grad=True)
    t = torch.tensor(trans, dtype=torch.float32, device=tdev, requires_grad=True)
    targets = torch.zeros(trans.shape, dtype=torch.float32, device=tdev)

    def sync():
        if tdev == "cuda":
            torch.cuda.synchronize()

    def fwd():
        with torch.no_grad():
            torch_ops.joint_loss(torch_ops.forward_kinematics(parents, r, t)[0], targets)
        sync()

    def fwd_bwd():
        r.grad = t.grad = None
        torch_ops.joint_loss(torch_ops.forward_kinematics(parents, r, t)[0], targets).backward()
        sync()

    return (f"Warp {device} torch bridge float32, FK + joint loss", best_time(fwd, repeats),
            best_time(fwd_bwd, repeats), None)


def compile_times() -> dict[str, float]:
    """First-launch time of each Warp module in a fresh process: empty cache, then warm cache."""
    code = (
        "import time, numpy as np\n"
        "t0 = time.perf_counter()\n"
        "from anymole_usd.kernels import fk, joint_loss, runtime\n"
        "runtime.init()\n"
        "t1 = time.perf_counter()\n"
        "p = np.array([-1, 0]); q = np.tile([0., 0, 0, 1], (1, 2, 1)); x = np.zeros((1, 2, 3))\n"
        "fk.forward_kinematics(p, q, x, device='cpu')\n"
        "t2 = time.perf_counter()\n"
        "joint_loss.joint_loss(p, q, x, x, device='cpu')\n"
        "t3 = time.perf_counter()\n"
        "print(t1 - t0, t2 - t1, t3 - t2)\n"
    )
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, WARP_CACHE_PATH=cache)
        for label in ("cold", "warm"):
            res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            imp, fk_s, loss_s = (float(v) for v in res.stdout.split()[-3:])
            out[f"import + wp.init ({label})"] = imp
            out[f"FK module first launch ({label} cache)"] = fk_s
            out[f"joint-loss module first launch ({label} cache)"] = loss_s
    return out


def size_rows(joints, parents, rest, n_frames, devices, repeats):
    """Every method on one motion of ``n_frames`` frames, checked against UsdSkel."""
    from anymole_usd import kinematics

    rot, trans = random_motion(parents, rest, n_frames)
    _stage, query = usdskel_query(joints, rest, rot, trans)
    n_j = len(joints)
    truth = usdskel_loop(query, n_frames, n_j)
    rows = [
        ("UsdSkel per-frame loop", best_time(lambda: usdskel_loop(query, n_frames, n_j), max(1, repeats // 2)),
         None, truth),
        ("numpy reference float64", best_time(lambda: kinematics.forward_kinematics(parents, rot, trans), repeats),
         None, kinematics.forward_kinematics(parents, rot, trans)),
    ]
    for device in devices:
        rows.extend(warp_rows(parents, rot, trans, device, repeats))
    extent = np.ptp(truth[..., 3, :3].reshape(-1, 3), axis=0).max()
    for label, _, _, result in rows:
        if result is not None:
            err = np.abs(result[..., 3, :3] - truth[..., 3, :3]).max() / extent
            assert err < 1e-5, f"{label}: position error {err:.2e} x motion extent vs UsdSkel"
    return rows


def format_table(results, n_joints) -> str:
    lines = [
        "| method | frames x joints | forward (ms) | fwd+bwd (ms) | forward vs UsdSkel | fwd+bwd vs UsdSkel fwd |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for n_frames, rows in results:
        usd = next(r[1] for r in rows if r[0].startswith("UsdSkel"))
        for label, fwd, fb, _ in rows:
            fb_s = f"{fb * 1e3:.1f}" if fb is not None else "-"
            ratio_fb = f"{usd / fb:.1f}x" if fb is not None else "-"
            lines.append(f"| {label} | {n_frames} x {n_joints} | {fwd * 1e3:.1f} | {fb_s} | {usd / fwd:.1f}x | "
                         f"{ratio_fb} |")
    return "\n".join(lines)


NOTES = (
    "Forward = skel-space transforms of every joint and frame; fwd+bwd = forward plus the backward pass "
    "(Warp tape, incoming gradients on all positions and linear parts; includes zeroing the input gradients "
    "and copying the seeds in). UsdSkel = `SkeletonQuery.ComputeJointSkelTransforms` per timecode on an "
    "in-memory stage holding the motion as time samples; it has no backward, so the last column divides its "
    "forward time by Warp's fwd+bwd (the issue's target: at least 10x on 10,000 x 65). \"kernel\" rows time "
    "the launch on arrays already on the device; \"numpy API\" rows include host/device copies and the "
    "(F, J, 4, 4) assembly; the torch bridge row runs FK and the 3D joint loss from torch tensors (wrapping, "
    "tape, torch autograd included; backward seeds positions only; torch.set_num_threads(1))."
)
def why_cpu(rows, usd_s) -> str:
    """The reason the CPU misses (or meets) the target, from this run's own figures."""
    get = {label: (fwd, fb) for label, fwd, fb, _ in rows}
    fwd, fb = get["Warp cpu kernel float32"]
    gen_fb = get["Warp cpu kernel float32 (Warp-generated adjoint)"][1]
    return (
        "On the CPU: the per-frame UsdSkel loop is C++ "
        f"({usd_s / len(rows[0][3]) * 1e6:.0f} us per frame here), while Warp's CPU backend runs each kernel on "
        "one thread with no vectorisation across frames. The float32 forward is "
        f"{usd_s / fwd:.1f}x faster than UsdSkel, but the backward (quaternion and 3x3 chain products, each "
        f"joint's 3x3 + 3 adjoint pushed to its parent) costs {(fb - fwd) / fwd:.1f}x the forward; fwd+bwd "
        f"with Warp's generated adjoint takes {gen_fb / fb:.2f}x the time of the hand-written one."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", default="1000,10000")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    ap.add_argument("--no-compile", action="store_true", help="skip the compile-time measurement")
    args = ap.parse_args()

    from anymole_usd.kernels import runtime

    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    devices = runtime.available_devices()
    name, joints, parents, rest = load_skeleton()
    n_j = len(joints)
    results = []
    for n_frames in (int(v) for v in args.frames.split(",")):
        results.append((n_frames, size_rows(joints, parents, rest, n_frames, devices, args.repeats)))
        print(f"{n_frames} frames done", flush=True)

    table = format_table(results, n_j)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    verdicts = []
    n_last, rows_last = results[-1]
    usd_last = rows_last[0][1]
    for device in devices:
        best_fb = min(fb for label, _, fb, _ in rows_last if label.startswith(f"Warp {device} kernel"))
        ratio = usd_last / best_fb
        verdicts.append(f"{device}: fwd+bwd {best_fb * 1e3:.1f} ms vs UsdSkel forward {usd_last * 1e3:.1f} ms = "
                        f"{ratio:.1f}x ({'meets' if ratio >= 10 else 'misses'} the 10x target)")
    compile_lines = []
    if not args.no_compile:
        compile_lines = [f"- {k}: {v:.2f} s" for k, v in compile_times().items()]
    gpu = "GPU: " + ", ".join(d for d in devices if d != "cpu") if len(devices) > 1 else "no GPU"
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()}-core CPU (shared; load average "
               f"{load_start:.1f} at start, {load_end:.1f} at end), {gpu}; Warp runs CPU kernels on one thread")
    body = "\n".join([
        (f"`python benchmarks/bench_fk.py` on {name}, random rotations, root random walk; best of "
         f"{args.repeats} runs after a warm-up (kernel compile excluded). Machine: {machine}."),
        NOTES,
        "",
        table,
        "",
        f"Target at {n_last} frames: " + "; ".join(verdicts) + ".",
        "",
        why_cpu(rows_last, usd_last),
        "",
        *((["First launch (compile or cache load), each in a fresh process:", "", *compile_lines, ""])
          if compile_lines else []),
    ])
    print()
    print(f"## {SECTION}\n\n{body}")
    if not args.no_write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from report import DOC, update_section

        update_section(SECTION, body)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
