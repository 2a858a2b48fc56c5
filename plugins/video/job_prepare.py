"""``anymole-usd video prepare``: write a video job folder for any generator (layout in :mod:`.job`).

JOB/
    job.json              frame times, fps, size, cameras, gaps, shot hash, prompt
    README.txt            how to feed it to a diffusers script or a ComfyUI workflow
    known/<time>.png      the known samples (context + keyframes), shot camera, named by time code
    conditioning.mp4      the video's frames: known frames in place, neutral grey elsewhere
    mask.mp4              white = generate, black = keep (the VACE convention)
    gaps/<n>/first.png, last.png   per gap, its known ends (first/last-frame models)
    frames/frame_<i>.png  (--from TRUTH) the truth rendered at every video frame: a perfect generator

Everything is written to a temporary folder beside JOB and renamed into place.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from anymole_usd.errors import InputError

from .job import GREY, JOB_FILE, job_json, job_layout, shot_digest

VIDEO_VIEWS = ("front", "left", "right")  # the estimator never trains on the back view


def _shot_job(shot: str, prim: str | None, context, keys):
    """(stage, AnimationJob) of the shot's one animation to fill, earlier results set aside in memory."""
    from anymole_usd.pipeline import InbetweenOptions, plan
    from anymole_usd.reading import open_stage
    from anymole_usd.transaction import show_in_memory, user_bases

    # The shot as the user authored it: an earlier `inbetween` result is set aside in memory only, exactly as
    # the runner reads it (otherwise its filled samples would look like context and leave nothing to generate).
    bases, _ = user_bases(os.path.abspath(shot))
    held = show_in_memory(bases)  # noqa: F841 - the stage sees these layers only while they are referenced
    stage = open_stage(shot)
    stage, jobs = plan(shot, InbetweenOptions(prim=prim, context=context, keys=keys), stage)
    todo = [j for j in jobs if j.timeline.gaps]
    if not todo:
        raise InputError("no gaps to fill: nothing to generate", file=shot, prim=prim)
    if len(todo) > 1:
        raise InputError(f"the shot has {len(todo)} animations with gaps ({', '.join(j.anim_path for j in todo)}): "
                         "choose one with --prim", file=shot)
    return stage, todo[0]


def read_truth(path: str, anim_path: str, joints: list[str], times: np.ndarray):
    """The dense animation in ``path`` at ``times``: the prim at ``anim_path``, else the one bound animation
    with the shot's joints. USD interpolates between its samples."""
    from anymole_usd.reading import authored_times, find_bindings, open_stage, read_motion

    if not os.path.exists(path):
        raise InputError("truth file does not exist", file=path)
    stage = open_stage(path)
    bindings = [b for b in find_bindings(stage, path) if b.animation_path]
    same = [b for b in bindings if b.animation_path == anim_path] or \
        [b for b in bindings if list(b.skeleton.joints) == list(joints)]
    if len(same) != 1:
        raise InputError(f"no single animation with the shot's {len(joints)} joints (found {len(same)})", file=path,
                         prim=anim_path)
    b = same[0]
    if list(b.skeleton.joints) != list(joints):
        raise InputError("the truth's skeleton has other joints than the shot's", file=path, prim=b.skeleton_path)
    authored = authored_times(stage.GetPrimAtPath(b.animation_path))
    if len(authored) == 0 or times.min() < authored.min() - 1e-3 or times.max() > authored.max() + 1e-3:
        span = f"{authored.min():g}-{authored.max():g}" if len(authored) else "none"
        raise InputError(f"the truth's samples ({span}) do not cover the job's times "
                         f"{times.min():g}-{times.max():g}", file=path, prim=b.animation_path)
    return read_motion(stage, b, times=times, file=path)


def _render(renderer, motion, cameras, pose=None, ground_height=None) -> np.ndarray:
    """(F, H, W, 3) uint8 of the cameras' one view."""
    chunks = [c.images[0] for c in renderer.iter_chunks(motion, cameras, pose=pose, ground_height=ground_height)]
    return np.concatenate(chunks) if chunks else np.zeros((0, cameras.height, cameras.width, 3), np.uint8)


def _write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    import imageio.v2 as iio2

    writer = iio2.get_writer(str(path), fps=fps, codec="libx264", quality=10, macro_block_size=1)
    try:
        for f in frames:
            writer.append_data(f)
    finally:
        writer.close()


def prepare_job(shot: str, out: str, *, size: tuple[int, int] = (256, 256), rate: float = 15.0,
                view: str = "front", truth: str | None = None, prim: str | None = None, context=None, keys=None,
                progress: Callable[[str, float], None] | None = None) -> dict:
    """Write the video job of ``shot`` into ``out``; returns a summary. InputError before writing anything."""
    import importlib.util

    import imageio.v3 as iio

    from anymole_usd.plugins.render.character import read_character
    from anymole_usd.plugins.render.frame_names import index_name, time_name
    from anymole_usd.plugins.render.shot_cameras import select_views, shot_cameras
    from anymole_usd.plugins.render.views import Renderer

    from .caption import load_captioner

    def report(message: str, fraction: float) -> None:
        if progress is not None:
            progress(message, fraction)

    if view not in VIDEO_VIEWS:
        raise InputError(f"--view must be one of {', '.join(VIDEO_VIEWS)} (the joint estimator never learns the "
                         f"back view), got {view!r}")
    if not (1.0 <= rate <= 120.0):
        raise InputError(f"--rate must be between 1 and 120 frames per second, got {rate:g}")
    if size[0] % 2 or size[1] % 2:
        raise InputError(f"--size {size[0]}x{size[1]}: MP4 (H.264) needs even sides")
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        raise InputError("video prepare writes MP4: pip install imageio-ffmpeg (or anymole-usd[video])")
    out_path = Path(out).absolute()
    if out_path.exists() and (not out_path.is_dir() or (any(out_path.iterdir()) and not (out_path / JOB_FILE).is_file())):
        raise InputError("output exists and is not a video job folder (not replaced)", file=str(out_path))
    if not out_path.parent.is_dir():
        raise InputError("the output folder's parent does not exist", file=str(out_path))

    report("video prepare: reading the shot", 0.0)
    stage, job = _shot_job(shot, prim, context, keys)
    tl = job.timeline
    known = job.authored.at_times(tl.known_times)
    character = read_character(stage, job.binding, file=shot)
    layout = job_layout(known.times, known.fps, rate)
    truth_motion = None
    if truth:
        truth_motion = read_truth(truth, job.anim_path, list(known.joints), layout.times)
    report("video prepare: fitting the shot's cameras", 0.05)
    renderer = Renderer(character)
    pose = renderer.pose(known)
    cameras = shot_cameras(character, known, size=size, pose=pose)  # what the video prior fits: same call
    cam = select_views(cameras, (view,))
    report(f"video prepare: rendering {known.num_frames} known frames", 0.1)
    known_images = _render(renderer, known, cam, pose)
    by_time = {float(t): img for t, img in zip(known.times, known_images)}
    frames = np.full((len(layout.times), size[0], size[1], 3), GREY, np.uint8)
    idx = known.index_of(layout.times[layout.known])
    frames[layout.known] = known_images[idx]
    mask = np.where(layout.known[:, None, None, None], 0, 255).astype(np.uint8) * np.ones((1,) + tuple(size) + (3,),
                                                                                           np.uint8)
    prompt = load_captioner().caption([known_images[len(known_images) // 2]], job.anim_path)
    digest = shot_digest(known, tl.keys, character)
    doc = job_json(layout, rate=rate, stage_fps=known.fps, size=size, view=view, cameras=cameras, digest=digest,
                   prompt=prompt, shot=shot, animation=job.anim_path)

    tmp = Path(tempfile.mkdtemp(prefix=".anymole-job-", dir=out_path.parent))
    from anymole_usd.atomic_files import new_dir_mode

    os.chmod(tmp, new_dir_mode())  # the user's umask, not mkdtemp's 0700
    try:
        (tmp / "known").mkdir()
        for t, img in by_time.items():
            iio.imwrite(tmp / "known" / time_name(t), img, compress_level=1)
        report("video prepare: conditioning video and mask", 0.4)
        _write_video(tmp / "conditioning.mp4", frames, rate)
        _write_video(tmp / "mask.mp4", mask, rate)
        for i, g in enumerate(layout.gaps):
            (tmp / "gaps" / str(i)).mkdir(parents=True)
            iio.imwrite(tmp / "gaps" / str(i) / "first.png", frames[g["first_index"]])
            iio.imwrite(tmp / "gaps" / str(i) / "last.png", frames[g["last_index"]])
        if truth_motion is not None:
            report(f"video prepare: rendering the truth at {len(layout.times)} frames", 0.5)
            (tmp / "frames").mkdir()
            images = _render(renderer, truth_motion, cam, ground_height=renderer.ground_height(pose))
            for i, img in enumerate(images):
                iio.imwrite(tmp / "frames" / index_name(i), img, compress_level=1)
        (tmp / JOB_FILE).write_text(json.dumps(doc, indent=1))
        (tmp / "README.txt").write_text(readme(doc))
        if out_path.exists():
            shutil.rmtree(out_path)  # an earlier job (checked above): replaced whole
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    report("video prepare: done", 1.0)
    return {"job": str(out_path), "shot": os.path.abspath(shot), "animation": job.anim_path,
            "frames": doc["num_frames"], "generate": int((~layout.known).sum()), "fps": rate,
            "size": [size[0], size[1]], "view": view, "gaps": len(layout.gaps), "shot_hash": digest,
            "truth_frames": 0 if truth_motion is None else doc["num_frames"], "prompt": prompt}


def readme(doc: dict) -> str:
    """README.txt: what each file is and how to bring frames back."""
    n, fps = doc["num_frames"], doc["fps"]
    h, w = doc["size"]["height"], doc["size"]["width"]
    wan = n if (n - 1) % 4 == 0 else n + (4 - (n - 1) % 4)
    gaps = "\n".join(f"  gaps/{g['index']}/: times {g['first']:g} -> {g['last']:g}, {g['num_frames']} frames "
                     f"(video frames {g['first_index']}-{g['last_index']})" for g in doc["gaps"])
    return f"""anymole-usd video job for {doc['animation']} ({doc['shot']})

The video: {n} frames at {fps:g} fps, {w}x{h} (width x height), seen from the shot's
{doc['view']} camera (job.json: "cameras"). job.json "times" gives each frame's time code and
"generate" which frames are to be generated; the others are known and must stay as they are.
Prompt: {doc['prompt']}

Files
  conditioning.mp4  the {n} frames: known frames in place, grey (128) where to generate
  mask.mp4          white (255) = generate, black (0) = keep: the VACE convention
  known/<time>.png  every known sample (context and keyframes), named by time code
  gaps/<n>/first.png, last.png: each gap's known ends, for first/last-frame models
{gaps}

Bring back ONE of these, then run
  anymole-usd inbetween SHOT --video-dir THIS_FOLDER
  - one video file (.mp4 or .webm) in this folder with exactly {n} frames, at {w}x{h} or any
    size of the same aspect (it is resized); or
  - frames/frame_0000.png ... frames/frame_{n - 1:04d}.png (frame index = position in "times"); or
  - frames/<time>.png named by time code for every frame to generate (e.g. 0036.5.png).
Frames at known times are not used (the known renders are).

diffusers, Wan 2.1 VACE (WanVACEPipeline): video = the frames of conditioning.mp4, mask = the
  frames of mask.mp4 (as PIL "L" images), num_frames = 4k+1 (Wan's VAE: pad to {wan} with grey /
  white frames and keep the first {n}), height={h}, width={w}.
diffusers, Wan first-last-frame (WanImageToVideoPipeline, image=first.png, last_image=last.png):
  one call per gap with its num_frames (rounded up to 4k+1, then resampled to the gap's frames).
diffusers, LTX-Video (LTXConditionPipeline): one LTXVideoCondition(image, frame_index=i) per known
  frame i of the video, num_frames = 8k+1.
ComfyUI: Load Video conditioning.mp4 and mask.mp4 (mask: convert image to mask, red channel) into
  WanVaceToVideo's control_video and control_masks, length {wan}, then trim to {n} frames and save
  as MP4 (Video Combine) into this folder.
`anymole-usd inbetween SHOT --video-model MODEL` runs these families itself (docs/video-prior.md).

A job belongs to one version of the shot (job.json "shot_hash") and its cameras: after editing
the shot's known samples, run `anymole-usd video prepare` again.
"""
