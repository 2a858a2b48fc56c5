"""The ``video`` prior: render known frames -> video frames -> estimator -> mimicking -> upsampling.

Every parameter is declared once in ``PARAMS`` (``anymole-usd plugins --details``
lists them; ``--param key=value`` values are checked before any rendering).
The frames come from a video source (``video_source``): ``folder`` for
``--video-dir`` (a ``video prepare`` job folder, or images named by time code),
``diffusion`` for ``--video-model``. A video job carries its own rate, size and
view and must match the shot (content hash) and its cameras.

The grid: each gap between known samples gets ``round(gap seconds x rate) - 1``
evenly spaced frames (``rate`` 15 fps by default), and the video source is asked
for exactly those times, seen from the shot's ``view`` camera at ``size``:
``anymole_usd.plugins.render.shot_cameras.shot_cameras(character, known, size=size)``
(fitted once per shot from the known frames, shared with the estimator).
Without a ``character`` (programmatic) the runner's skinned mesh is used, else
bone proxies.
"""
from __future__ import annotations

import numpy as np

from anymole_usd.errors import InputError
from anymole_usd.motion import Motion
from anymole_usd.parameters import Param, Parameters
from anymole_usd.prior import InbetweenRequest, Prior

SETTING_KEYS = ("iterations", "lr", "lambda_joint", "lambda_img", "lambda_pos", "lambda_rot", "image_size",
                "depth_term", "lr_mode", "translations", "device")


# Parameters handed through to a diffusion video source (plugins/video DiffusionVideoPrior).
DIFFUSION_KEYS = ("steps", "guidance_scale", "context_threshold", "coarse_fps", "fine_fps", "window", "two_stage",
                  "icadapt_steps", "icadapt_lr", "lora_rank", "variant", "device", "dtype", "seed", "cache_dir")

PARAMS = Parameters(
    Param("video_source", None, "video source plugin (default: folder with video_dir, else diffusion)", nullable=True),
    Param("video_dir", None, "frames from another generator: a `video prepare` job folder or images named by time",
          nullable=True),
    Param("video_model", None, "video diffusion model folder or hub id (also --video-model)", nullable=True),
    Param("rate", 15.0, "mimicking grid rate in frames per second (the video's frame rate)", min=1.0, max=120.0),
    Param("size", None, "render / frame size HxW (default: the job's or the frames' size, else 256x256)",
          nullable=True),
    Param("view", "front", "camera the video is seen from", choices=("front", "left", "right")),
    Param("sigma", 0.0, "Gaussian temporal filter after upsampling, in stage frames (0: off)", min=0.0),
    Param("iterations", 100, "mimicking Adam steps per front", min=1),
    Param("lr", 1e-2, "mimicking learning rate (peak of the cyclic schedule)", min=0.0, min_exclusive=True),
    Param("lr_mode", "triangular", "cyclic learning-rate mode", choices=("triangular", "triangular2")),
    Param("lambda_joint", 1.0, "weight of the 2D joint (+ depth) term", min=0.0),
    Param("lambda_img", None, "weight of the soft-render image term (default: the paper's 50 on CUDA, 0 on the CPU, "
          "where it costs most of mimicking's time for no measured gain)", type=float, min=0.0, nullable=True),
    Param("lambda_pos", 7000.0, "weight pulling the root to the keyframe-interpolated root", min=0.0),
    Param("lambda_rot", 30000.0, "weight pulling rotations to the previous frame's", min=0.0),
    Param("image_size", 64, "height in pixels the image term renders at (0: the frames' size)", min=0),
    Param("translations", "animated", "translations optimised: the roots' and the top-most animated joints' "
          "(others interpolated), or the roots' only (others from the neighbour frame, as before)",
          choices=("animated", "roots")),
    Param("depth_term", "absolute", "estimator depth in the joint term", choices=("absolute", "relative", "none")),
    Param("device", "cpu", "torch device for mimicking and the video model"),
    Param("estimator_steps", 800, "joint estimator training steps (400 halves the time; worse on every clip "
          "measured)", min=1),
    Param("estimator_stride", 4, "joint estimator heatmap cell in network pixels: 8 makes a training step cheaper, "
          "its 2D coarser (worse on CesiumMan: docs/benchmarks.md, video round trip)", choices=(4, 8)),
    Param("estimator_mirror", False, "estimator also trains on the known poses mirrored left to right "
          "(characters whose limbs pair up): CesiumMan's 1 s of walk 0.98 -> 0.63 x interp, the Bandai clips "
          "equal or worse (docs/benchmarks.md, video round trip)", type=bool),
    Param("estimator_distance", "interp", "camera distance of the predicted joints: interpolated pose or the "
          "estimator's own", choices=("interp", "estimator")),
    Param("distance_fusion", 100.0, "interp distance: Whittaker strength of the estimator's distance correction "
          "over each gap, keys held (0: the interpolated pose's distance only; docs/benchmarks.md, video round "
          "trip)", min=0.0),
    Param("distance_gate", 3.0, "interp distance: RMS 2D departure of the video from the interpolated pose over a "
          "gap (pixels of a 256-pixel image) at which the gap takes 1 - 1/e of the estimator's correction", min=0.0,
          min_exclusive=True),
    Param("relief", "blend", "joint depths about the character's mean: the network's, the nearest known poses', "
          "or blended by 2D pose distance", choices=("blend", "network", "nearest")),
    Param("relief_tau", 0.02, "blend: distance (mean squared, unit-spread 2D skeletons) at which the known poses' "
          "relief weighs 1/e", min=0.0, min_exclusive=True),
    Param("relief_reliable", 0.05, "blend: retrieval error on the known poses (0.25 s left out, relief in units of "
          "the 2D spread) up to which the retrieved relief keeps its full weight", min=0.0, min_exclusive=True),
    Param("relief_neighbours", 3, "known poses averaged (inverse-distance weights) for the retrieved relief", min=1),
    Param("target_smoothing", 0.0, "Whittaker smoothing of the estimator's joints over each gap, keyframes held "
          "(0: off; helped the walk, hurt the run: docs/benchmarks.md)", min=0.0),
    Param("keep_artifacts", None, "folder to keep renders, frames and predictions in", nullable=True),
    Param("character", None, "render Character (programmatic use only)", type=object, nullable=True),
    # diffusion video source (None: the model family's default)
    Param("steps", None, "denoising steps per window", type=int, min=1, nullable=True),
    Param("guidance_scale", None, "classifier-free guidance scale", type=float, min=0.0, nullable=True),
    Param("context_threshold", None, "context frames imposed while the noise level is above this (of 1000)",
          type=float, min=0.0, max=1000.0, nullable=True),
    Param("coarse_fps", None, "stage-1 (coarse) video rate", type=float, min=0.0, min_exclusive=True,
          nullable=True),
    Param("fine_fps", None, "stage-2 (fine) video rate", type=float, min=0.0, min_exclusive=True, nullable=True),
    Param("window", None, "frames per generation window", type=int, min=2, nullable=True),
    Param("two_stage", None, "coarse then fine generation (SVD family)", type=bool, nullable=True),
    Param("icadapt_steps", 500, "ICAdapt training steps (0: no adaptation)", min=0),
    Param("icadapt_lr", None, "ICAdapt learning rate (default: 1e-5 SVD, 1e-4 the transformer families' LoRA)",
          type=float, min=0.0, min_exclusive=True, nullable=True),
    Param("lora_rank", 16, "rank of the ICAdapt LoRA of the transformer families", min=1, max=256),
    Param("variant", None, "weight-file variant of the video model (e.g. fp16)", nullable=True),
    Param("dtype", None, "video model dtype (float32, float16, bfloat16)", nullable=True),
    Param("seed", None, "seed for the video source (default: --seed)", type=int, nullable=True),
    Param("cache_dir", None, "cache for adapted weights and videos (default: the shot cache)", nullable=True),
)


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
        return cls(video_dir=params.get("video_dir"))
    kwargs = {k: params[k] for k in DIFFUSION_KEYS if k in params}
    if params.get("video_model"):
        kwargs["model"] = params["video_model"]
    return cls(**kwargs)


def stage_progress(progress, lo: float, hi: float):
    """``progress`` with a sub-stage's fractions (0-1) mapped into [lo, hi] of the whole prior."""
    if progress is None:
        return None
    return lambda message, fraction: progress(message, lo + (hi - lo) * min(max(float(fraction), 0.0), 1.0))


class VideoPrior(Prior):
    name = "video"
    description = "AnyMoLe: in-between video frames lifted to 3D by mimicking (estimator + Warp FK)"
    needs_character = True  # the runner reads the skinned mesh into request.character
    param_spec = PARAMS

    def __init__(self, **params) -> None:
        super().__init__(**params)
        # Checks beyond the declared ranges, here so a bad value fails before any rendering.
        if self.params.get("size"):
            from anymole_usd.plugins.render.views import parse_size

            try:
                parse_size(str(self.params["size"]))
            except ValueError as exc:
                raise InputError(f"video prior: bad value for size: {exc}") from None
        self.mimic_settings()

    def mimic_settings(self):
        from .optimizer import MimicSettings

        values = {k: self.option(k) for k in SETTING_KEYS}
        if values["lambda_img"] is None:  # the image term only where it is affordable (docs/benchmarks.md)
            values["lambda_img"] = 50.0 if str(values["device"]).startswith("cuda") else 0.0
        try:
            return MimicSettings(**values)
        except ValueError as exc:
            raise InputError(f"video prior: bad parameter: {exc}") from None

    def parameters(self) -> dict:
        return {k: v for k, v in self.params.items() if k != "character"}

    def _layout(self, source, known) -> tuple[float, tuple[int, int], str]:
        """(rate, size, view): a video job's own, else the parameters' (size: the frames' when not given)."""
        from anymole_usd.plugins.render.views import parse_size

        job = getattr(source, "job", None)
        if job is not None:
            for key, mine in (("rate", job.rate), ("view", job.view)):
                if key in self.params and self.params[key] != mine:
                    raise InputError(f"video job {job.folder} was prepared with {key} {mine}, not {self.params[key]}")
            if self.params.get("size") and parse_size(str(self.params["size"])) != tuple(job.size):
                raise InputError(f"video job {job.folder} was prepared at {job.size[0]}x{job.size[1]}, not "
                                 f"{self.params['size']}")
            return job.rate, tuple(job.size), job.view
        size = parse_size(str(self.params["size"])) if self.params.get("size") else None
        if size is None and hasattr(source, "frame_size"):
            size = source.frame_size()
        return float(self.option("rate")), tuple(size or (256, 256)), str(self.option("view"))

    def fill(self, request: InbetweenRequest) -> Motion:
        import torch

        from anymole_usd.plugins.estimator.training import training_threads

        # Many small kernels per step: on a busy CPU one thread beats two by far (docs/benchmarks.md).
        previous = torch.get_num_threads()
        torch.set_num_threads(training_threads(None, str(self.option("device"))))
        try:
            return self._fill(request)
        finally:
            torch.set_num_threads(previous)

    def _fill(self, request: InbetweenRequest) -> Motion:
        from anymole_usd.plugins.estimator.renders import render_motion
        from anymole_usd.plugins.render.proxies import proxy_character
        from anymole_usd.plugins.render.shot_cameras import select_views

        from .optimizer import MimicTargets, MimicView, image_term_renderer, mimic, skel_camera
        from .schedule import build_grid
        from .upsample import upsample

        p = self.option
        settings = self.mimic_settings()
        known, skel, keys = request.known, request.skeleton, request.timeline.keys
        source = load_video_source({"cache_dir": request.cache_dir, "seed": request.seed, **self.params})
        rate, size, view = self._layout(source, known)
        grid = build_grid(known.times, known.fps, rate)
        fill_times = grid.times[~grid.known]
        character = p("character") or request.character or proxy_character(skel, up_axis=request.up_axis,
                                                                            meters_per_unit=request.meters_per_unit)
        request.report("video prior: rendering known frames", 0.0)
        # the shot's cameras (shot_cameras with its default fill times): what `video prepare` renders with
        renders, cameras = render_motion(character, known, size=tuple(size), key_times=keys)
        job = getattr(source, "job", None)
        if job is not None:
            from anymole_usd.plugins.video.job import shot_digest

            job.check(shot_digest(known, keys, character), cameras)
        mine = renders.views == view
        known_frames = {float(t): img for t, img in zip(renders.times[mine], renders.images[mine])}
        prompt = ""
        if job is None and not hasattr(source, "folder"):
            from anymole_usd.plugins.video.caption import load_captioner

            prompt = load_captioner().caption([known_frames[max(known_frames)]], request.name)
        if source.adapts and int(p("icadapt_steps")) > 0:
            from anymole_usd.plugins.estimator.dataset import icadapt_clips

            request.report("video prior: ICAdapt", 0.05)
            source.adapt(icadapt_clips(renders), progress=stage_progress(request.progress, 0.05, 0.25), prompt=prompt)
        request.report("video prior: frames", 0.25)
        frames = source.generate(known_frames, fill_times, known.fps, prompt, keyframe_times=keys,
                                 seed=request.seed, progress=stage_progress(request.progress, 0.25, 0.45))
        images = np.zeros((len(grid.times),) + tuple(size) + (3,), np.uint8)
        images[~grid.known] = np.stack([frames[float(t)] for t in fill_times]) if len(fill_times) else images[:0]
        targets = MimicTargets(images=images)
        cams = select_views(cameras, (view,))
        camera = skel_camera(cams, character.skel_to_world)
        if float(p("lambda_joint")) > 0 and len(fill_times):
            from .estimation import estimator_targets

            mirrored = None
            if p("estimator_mirror"):
                from anymole_usd.plugins.estimator.mirror import render_mirrored

                request.report("video prior: rendering mirrored poses", 0.45)
                mirrored = render_mirrored(character, known, cameras)
            request.report("video prior: estimator", 0.45)
            estimator_targets(targets, renders, images, grid, known, skel, camera, float(cams.K[0, 1, 1]), view, self,
                              cache_dir=request.cache_dir, progress=stage_progress(request.progress, 0.45, 0.75),
                              extra=mirrored)
        soft = None
        if settings.lambda_img > 0:
            from anymole_usd.plugins.render.views import Renderer

            # the frames show the floor the known renders stand on: the soft renders get the same backdrop
            backdrop = Renderer(character, shadows=False)
            soft = image_term_renderer(character, cams, settings, backdrop.background(cams, backdrop.pose(known)))
        height = float(np.ptp(request.skeleton.rest_pose_positions(), axis=0).max()) or 1.0
        mview = MimicView(camera, tuple(size), height, soft, float(cams.K[0, 1, 1]))
        request.report("video prior: mimicking", 0.75)
        if p("keep_artifacts"):
            keep_artifacts(str(p("keep_artifacts")), known_frames, dict(zip(map(float, fill_times),
                           images[~grid.known])), targets, grid, rate)
        grid_motion = mimic(skel.parents, known, grid, targets, mview, settings,
                            progress=stage_progress(request.progress, 0.75, 0.99))
        request.report("video prior: upsampling", 0.99)
        return upsample(grid_motion, known, request.target_times, float(p("sigma")))


def keep_artifacts(folder: str, known_frames: dict, generated: dict, targets, grid, rate: float = 15.0) -> None:
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
            iio.imwrite(os.path.join(folder, "video.mp4"), np.stack(list(generated.values())), fps=rate)
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
