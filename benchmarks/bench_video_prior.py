"""Two-stage generation cost against the number of keyframes, on the tiny random-weight model (CPU).

    python benchmarks/bench_video_prior.py [--keys 1,2,4,8] [--size 32] [--steps 2] [--threads 1] [--no-write]

AnyMoLe's supplement (Table 1) reports generation time growing linearly with
the number of keyframes. This script plans and runs the real two-stage
generation (30 fps stage, 2 s context, a keyframe every second after it, a
15 fps fill, 16-frame windows) with the tiny model and reports windows, UNet
calls, seconds and seconds per keyframe for each keyframe count. The
tiny model says nothing about a real model's speed or quality: it measures
the scheduling and bookkeeping around the denoiser and shows the scaling.
The keyframe-conditioned families (Wan VACE, Wan first-last-frame, LTX-Video;
``--families``) are timed the same way, their windows planned over the video a
``video prepare`` job describes (17-frame windows, 32x32, no guidance). The
table goes to docs/benchmarks.md under "## Video prior".
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SECTION = "Video prior"


def shot(num_keys: int, size: int, fps: float = 30.0):
    rng = np.random.default_rng(0)
    known_t = list(np.arange(61.0)) + [60.0 + 30.0 * k for k in range(1, num_keys + 1)]
    known = {float(t): rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for t in known_t}
    fill = [60.0 + 2.0 * i for i in range(1, 15 * num_keys) if i % 15]
    return known, fill, fps


def family_rows(keys: list[int], size: int, steps: int, families: str) -> list[str]:
    """The keyframe-conditioned families on tiny random weights: windows, transformer calls, seconds."""
    from anymole_usd.plugins.video.families import load_transformer_family
    from anymole_usd.plugins.video.keyed_generation import generate_keyed_video
    from anymole_usd.plugins.video.tiny_models import save_tiny_family

    import tempfile

    out = ["Keyframe-conditioned families, same shots (tiny random weights, loaded through the real loader; "
           f"{size}x{size}, {steps} steps per window, no guidance, windows of 17 frames over the job's video: "
           "the context thinned to 15 fps, every frame to fill):", "",
           "| family | keyframes | frames filled | windows | transformer calls | seconds | seconds per keyframe |",
           "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for fam in families.split(","):
            folder = save_tiny_family(Path(tmp) / fam, fam)
            model = load_transformer_family(folder, fam, fam, device="cpu", dtype=__import__("torch").float32)
            calls, windows = [0], [0]
            net = model.pipe.transformer
            forward = net.forward

            def counted(*a, _f=forward, **k):
                calls[0] += 1
                return _f(*a, **k)

            net.forward = counted
            call = model._call

            def window(*a, _c=call, **k):
                windows[0] += 1
                return _c(*a, **k)

            model._call = window
            generate_keyed_video(model, *shot(1, size), window=17, steps=1, guidance_scale=1.0)  # warm-up
            for n in keys:
                known, fill, fps = shot(n, size)
                calls[0] = windows[0] = 0
                t0 = time.perf_counter()
                generate_keyed_video(model, known, fill, fps, window=17, steps=steps, guidance_scale=1.0)
                dt = time.perf_counter() - t0
                out.append(f"| {fam} | {n} | {len(fill)} | {windows[0]} | {calls[0]} | {dt:.2f} | {dt / n:.2f} |")
                print(out[-1], flush=True)
    return out + ["", "VACE and LTX windows hold context + gap + closing keyframe (17 frames: one window per 1 s gap "
                  "at 15 fps); first-last-frame runs once per gap. No coarse stage: the known frames condition "
                  "the model directly.", ""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", default="1,2,4,8")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--families", default="wan-vace,wan-flf2v,ltx")
    args = ap.parse_args()

    import torch

    from anymole_usd.plugins.video.generation import two_stage_generation
    from anymole_usd.plugins.video.tiny_models import tiny_video_model

    torch.set_num_threads(args.threads)
    model = tiny_video_model()
    calls = [0]
    unet_forward = model.unet.forward

    def counted(*a, **k):
        calls[0] += 1
        return unet_forward(*a, **k)

    model.unet.forward = counted
    two_stage_generation(model, *shot(1, args.size), num_inference_steps=1, guidance_scale=1.0)  # warm-up
    rows = []
    for n in [int(k) for k in args.keys.split(",")]:
        known, fill, fps = shot(n, args.size)
        calls[0] = 0
        t0 = time.perf_counter()
        res = two_stage_generation(model, known, fill, fps, num_inference_steps=args.steps, guidance_scale=1.0)
        dt = time.perf_counter() - t0
        s1 = sum(w.stage == 1 for w in res.windows)
        s2 = sum(w.stage == 2 for w in res.windows)
        rows.append((n, len(fill), s1, s2, calls[0], dt))
        print(f"{n} keys: {len(fill)} frames, windows {s1}+{s2}, {calls[0]} UNet calls, {dt:.2f} s", flush=True)

    lines = [f"## {SECTION}", "",
             f"Two-stage generation on the tiny random-weight SVD-family model (`benchmarks/bench_video_prior.py`), "
             f"{args.size}x{args.size} images, {args.steps} denoising steps per window, no guidance, "
             f"torch threads: {args.threads}, {platform.processor() or platform.machine()} shared 2-core CPU. "
             "30 fps stage, 2 s context, a keyframe every second, 15 fps fill, 16-frame windows.", "",
             "| keyframes | frames filled | windows (coarse + fine) | UNet calls | seconds | seconds per keyframe |",
             "|---|---|---|---|---|---|"]
    for n, f, s1, s2, c, dt in rows:
        lines.append(f"| {n} | {f} | {s1} + {s2} | {c} | {dt:.2f} | {dt / n:.2f} |")
    lines += ["", "Windows and UNet calls are exact (2 windows per keyframe, as in the official code); seconds "
              "are on a machine shared with other jobs. A real model's time is the UNet call count times its "
              "per-call cost: see docs/video-prior.md.", ""]
    lines += family_rows([int(k) for k in args.keys.split(",")], args.size, args.steps, args.families)
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        path = ROOT / "docs" / "benchmarks.md"
        doc = path.read_text() if path.exists() else "# Benchmarks\n"
        head = f"## {SECTION}\n"
        if head in doc:
            start = doc.index(head)
            nxt = doc.find("\n## ", start + len(head))
            doc = doc[:start] + text + (doc[nxt + 1:] if nxt >= 0 else "")
        else:
            doc = doc.rstrip("\n") + "\n\n" + text
        path.write_text(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
