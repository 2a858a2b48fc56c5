"""The ``video`` prior: render known frames -> estimator -> video frames -> mimicking -> upsampling.

Parameters (``--param key=value`` in the CLI; ``video_dir`` may become ``--video-dir``):

- ``video_source``: a name under ``anymole_usd.video_sources`` (default: ``folder`` when
  ``video_dir`` is set, else ``diffusion`` when ``video_model`` is set);
- ``video_dir``: the folder of frames (see ``video_source``), named by frame time;
- ``rate``: mimicking frame rate (default 15 fps); the grid inside each gap has
  ``round(gap seconds x rate) - 1`` evenly spaced frames, and the video source is
  asked for exactly those times;
- ``size``: render/frame size ``HxW`` (default: the folder frames' size, else 256x256);
- ``sigma``: Gaussian temporal filter after upsampling, in stage frames (default 0: off);
- ``iterations``, ``lr``, ``lambda_joint``, ``lambda_img``, ``lambda_pos``, ``lambda_rot``, ``image_size``: see
  :mod:`.optimizer`; ``estimator_steps``: estimator training steps;
- ``estimator_distance``: ``interp`` (default) places the estimator's joint depths at the camera
  distance of the pose interpolated between the nearest known samples (the network keeps the depths
  about their mean); ``estimator``: the estimator's own distance from rigid lengths;
- ``character``: (programmatic use) a render Character; without it the skeleton is
  drawn with bone proxies, because an InbetweenRequest carries no mesh.

The frames must be seen from the shot's front camera at ``size``:
``anymole_usd.plugins.render.shot_cameras.shot_cameras(character, known, size=size)``
(fitted once per shot from the known frames, shared with the estimator).
"""
from __future__ import annotations


import numpy as np

from anymole_usd.errors import InputError
from anymole_usd.motion import Motion
from anymole_usd.prior import InbetweenRequest, Prior

SETTING_KEYS = ("iterations", "lr", "lambda_joint", "lambda_img", "lambda_pos", "lambda_rot", "image_size",
                "depth_term", "device")


# Parameters handed through to a diffusion video source (plugins/video DiffusionVideoPrior).
DIFFUSION_KEYS = ("steps", "guidance_scale", "context_threshold", "coarse_fps", "fine_fps", "window", "two_stage",
                  "icadapt_steps", "icadapt_lr", "variant", "device", "dtype", "seed", "cache_dir")


def load_video_source(params: dict):
    """``folder`` when video_dir is set, else ``diffusion`` (its model comes from --video-model, the
    ANYMOLE_USD_VIDEO_MODEL variable or the config file; a missing one is a clear ModelUnavailableError)."""
    from anymole_usd import registry

    from anymole_usd.settings import video_model_setting

    name = params.get("video_source") or ("folder" if params.get("video_dir") else "diffusion")
    if name == "diffusion" and not video_model_setting(params.get("video_model")):
        raise InputError("the video prior needs frames: --video-dir DIR (a folder of frames named by frame time, "
                         "--param video_dir=DIR) or a video model (--video-model, ANYMOLE_USD_VIDEO_MODEL or the "
                         "config file)")
    cls = registry.load("video_sources", name)
    if name == "folder":
        return cls(video_dir=params["video_dir"])
    kwargs = {k: params[k] for k in DIFFUSION_KEYS if k in params}
    if params.get("video_model"):
        kwargs["model"] = params["video_model"]
    return cls(**kwargs)


class VideoPrior(Prior):
    name = "video"
    description = "AnyMoLe: in-between video frames lifted to 3D by mimicking (estimator + Warp FK)"
    needs_character = True  # the runner reads the skinned mesh into request.character

    def parameters(self) -> dict:
        return {k: v for k, v in self.params.items() if k != "character"}

    def fill(self, request: InbetweenRequest) -> Motion:
        from anymole_usd.plugins.estimator.renders import render_motion
        from anymole_usd.plugins.render.proxies import proxy_character
        from anymole_usd.plugins.render.shot_cameras import select_views
        from anymole_usd.plugins.render.views import parse_size

        from .optimizer import MimicSettings, MimicTargets, MimicView, image_term_renderer, mimic, skel_camera
        from .schedule import build_grid
        from .upsample import upsample

        p = self.params
        # Bad parameters fail here, before minutes of rendering and estimator training.
        try:
            settings = MimicSettings(**{k: type(getattr(MimicSettings, k))(p[k]) for k in SETTING_KEYS if k in p})
        except ValueError as exc:
            raise InputError(f"video prior: bad parameter: {exc}") from None
        if p.get("estimator_distance", "interp") not in ("interp", "estimator"):
            raise InputError(f"video prior: estimator_distance must be 'interp' or 'estimator', "
                             f"got {p['estimator_distance']!r}")
        known, skel = request.known, request.skeleton
        rate = float(p.get("rate", 15.0))
        grid = build_grid(known.times, known.fps, rate)
        fill_times = grid.times[~grid.known]
        source = load_video_source({"cache_dir": request.cache_dir, "seed": request.seed, **p})
        size = parse_size(str(p["size"])) if p.get("size") else None
        if size is None and hasattr(source, "folder"):
            from .video_source import read_image, scan_folder

            files = scan_folder(source.folder)
            size = read_image(next(iter(files.values()))).shape[:2] if files else None
        size = size or (256, 256)
        character = p.get("character") or request.character or proxy_character(skel, up_axis=request.up_axis,
                                                          meters_per_unit=request.meters_per_unit)
        request.report("video prior: rendering known frames", 0.0)
        # the shot's cameras (shot_cameras with its default fill times): what users render frames with
        renders, cameras = render_motion(character, known, size=tuple(size), key_times=request.timeline.keys)
        known_frames = {float(t): img for t, img in zip(renders.times[renders.views == "front"],
                                                        renders.images[renders.views == "front"])}
        if getattr(source, "adapts", hasattr(source, "adapt")) and int(p.get("icadapt_steps", 500)) > 0:
            from anymole_usd.plugins.estimator.dataset import icadapt_clips

            request.report("video prior: ICAdapt", 0.1)
            source.adapt(icadapt_clips(renders), progress=request.progress)
        request.report("video prior: frames", 0.2)
        frames = source.generate(known_frames, fill_times, known.fps, keyframe_times=request.timeline.keys,
                                 seed=request.seed, progress=request.progress)
        images = np.zeros((len(grid.times),) + tuple(size) + (3,), np.uint8)
        images[~grid.known] = np.stack([frames[float(t)] for t in fill_times]) if len(fill_times) else images[:0]
        targets = MimicTargets(images=images)
        cams = select_views(cameras, ("front",))
        camera = skel_camera(cams, character.skel_to_world)
        lam_joint = float(p.get("lambda_joint", 1.0))
        if lam_joint > 0 and len(fill_times):
            from anymole_usd.plugins.estimator.predict import predict
            from anymole_usd.plugins.estimator.training import EstimatorSettings, train_estimator

            request.report("video prior: estimator", 0.3)
            est_settings = EstimatorSettings(steps=int(p.get("estimator_steps", 400)))
            est = train_estimator(renders, est_settings, cache_dir=request.cache_dir, progress=request.progress)
            distance = None
            if p.get("estimator_distance", "interp") == "interp":
                # A monocular estimator is least sure of the camera distance: use the distance of the pose
                # interpolated between the nearest known samples (what lambda_pos pulls the root to) and keep
                # the network's depths about their mean.
                from anymole_usd import kinematics

                from .upsample import resample

                guess = resample(known, fill_times)
                pos = kinematics.global_positions(skel.parents, guess.rotations, guess.translations, guess.scales)
                distance = (pos @ camera[2, :3] + camera[2, 3]).mean(-1)
            # times: joints no image shows are interpolated in time from the known renders
            pred = predict(est, images[~grid.known], view="front", distance=distance, times=fill_times)
            targets.joints2d = np.zeros((len(grid.times), skel.num_joints, 2))
            targets.depth = np.ones((len(grid.times), skel.num_joints))
            targets.joints2d[~grid.known], targets.depth[~grid.known] = pred.joints2d, pred.depth
        soft = None
        if settings.lambda_img > 0:
            from anymole_usd.plugins.render.views import Renderer

            # the frames show the floor the known renders stand on: the soft renders get the same backdrop
            backdrop = Renderer(character, shadows=False)
            soft = image_term_renderer(character, cams, settings, backdrop.background(cams, backdrop.pose(known)))
        height = float(np.ptp(request.skeleton.rest_pose_positions(), axis=0).max()) or 1.0
        view = MimicView(camera, tuple(size), height, soft, float(cams.K[0, 1, 1]))
        request.report("video prior: mimicking", 0.5)
        if p.get("keep_artifacts"):
            keep_artifacts(str(p["keep_artifacts"]), known_frames, dict(zip(map(float, fill_times),
                           images[~grid.known])), targets, grid)
        grid_motion = mimic(skel.parents, known, grid, targets, view, settings, progress=request.progress)
        return upsample(grid_motion, known, request.target_times, float(p.get("sigma", 0.0)))


def keep_artifacts(folder: str, known_frames: dict, generated: dict, targets, grid) -> None:
    """--keep-artifacts: front renders of the known frames, the video frames (PNG, and MP4 when
    imageio-ffmpeg is present), and the estimator's joints drawn on them plus as NPZ."""
    import os

    import imageio.v3 as iio

    from .video_source import frame_name

    for sub, frames in (("renders", known_frames), ("video", generated)):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
        for t, img in frames.items():
            iio.imwrite(os.path.join(folder, sub, frame_name(t)), img)
    if generated:
        try:
            iio.imwrite(os.path.join(folder, "video.mp4"), np.stack(list(generated.values())), fps=15)
        except Exception:  # no ffmpeg backend: the PNGs are there
            pass
    if targets.joints2d is not None:
        interior = ~grid.known
        np.savez(os.path.join(folder, "estimator_predictions.npz"), times=grid.times[interior],
                 joints2d=targets.joints2d[interior], depth=targets.depth[interior])
        os.makedirs(os.path.join(folder, "predictions"), exist_ok=True)
        for (t, img), pts in zip(generated.items(), targets.joints2d[interior]):
            drawn = img.copy()
            h, w = drawn.shape[:2]
            xy = np.clip(np.round(pts).astype(int), 0, [w - 1, h - 1])
            for dy in (-1, 0, 1):  # 3x3 red dots
                for dx in (-1, 0, 1):
                    drawn[np.clip(xy[:, 1] + dy, 0, h - 1), np.clip(xy[:, 0] + dx, 0, w - 1)] = (255, 0, 0)
            iio.imwrite(os.path.join(folder, "predictions", frame_name(t)), drawn)
