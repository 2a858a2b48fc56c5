"""Fit per-frame root position and joint rotations to video frames (AnyMoLe Eq. 3).

Per optimised frame the parameters are the root translation ``P`` (every root
and the top-most joints whose translation the known samples animate: a
trajectory-root rig moves its body through the root's child;
:func:`.translations.translated_joints`) and, per joint,
a rotation vector ``v`` applied to the frame's initial quaternion
(``q = q_init * exp(v)``), so every pose stays on unit quaternions and ``v = 0``
is the neighbour the frame starts from. The loss of one frame is

    L = l_joint * E_joint + l_img * E_img + l_pos * E_pos + l_rot * E_rot

with these normalisations (defaults 1 / 50 / 7000 / 30000, the paper's weights):

- ``E_joint``: sum over joints of the squared 2D distance between the projected FK
  joints and the target joints, in pixels of a 256-pixel-high image (pixels x 256 / H),
  through the Warp FK and joint-loss kernels; per-joint weights (visibility,
  confidence) multiply it. When the targets carry depth (the estimator predicts it),
  the squared camera-depth error is added, expressed like an image offset at the
  frame's mean depth (``dz * f / z_mean``, same pixel unit): a single view leaves
  limbs free to swing towards or away from the camera otherwise;
- ``E_img``: sum over pixels of the channel-summed squared difference between the
  soft render and the frame (RGB in [0, 1]), divided by the frame's foreground
  pixel count (pixels that differ from the background), i.e. per character pixel;
  rendered at ``image_size`` pixels high (64 by default) against the frame
  area-averaged to that size, which keeps it per character pixel and cuts the soft
  rasteriser's cost by the area ratio (see :func:`image_term_renderer`);
- ``E_pos``: squared distance of ``P`` from its value linearly interpolated between
  the gap's two keyframes, in character heights;
- ``E_rot``: mean over joints of the squared quaternion difference to the previous
  (already optimised, keyframe-side) frame's rotations, signs aligned.

Adam (lr 1e-2; the paper's 2e-3 under-converges in 100 steps with this
parameterisation, measured on four clips in docs/benchmarks.md) with a triangular
cyclic learning rate (``lr / 10`` to ``lr``, cycles of ``cycle`` steps), 100
iterations per front, the gradient norm clipped at 1.0 per frame, and per frame a
reset to its best parameters when its loss exceeds ``reset_factor`` x its best or
has not improved for ``patience`` steps. A reset clears that frame's Adam momentum
and halves its step length from then on (``reset_shrink``, down to
``min_step_scale``): backtracking, so a frame near its optimum takes shorter steps
instead of being kicked out again at full length.
Root parameters are in character heights, so one learning rate suits rotations
(radians) and positions alike. Every term is vectorised over the frames of a front.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

from anymole_usd.kernels.torch_ops import forward_kinematics, joint_loss
from anymole_usd.motion import Motion

from .schedule import Grid, interpolate_between_keys
from .translations import translated_joints

REFERENCE_HEIGHT = 256.0  # joint errors are expressed in pixels of an image this high


@dataclass
class MimicSettings:
    lambda_joint: float = 1.0
    lambda_img: float = 50.0
    lambda_pos: float = 7000.0
    lambda_rot: float = 30000.0
    # "absolute": camera-depth errors as they are (the video prior first puts the estimator's depths at the
    # interpolated pose's distance); "relative": about each frame's mean depth (measured worse with both
    # oracle and estimator depths, docs/benchmarks.md); "none": 2D only
    depth_term: str = "absolute"
    lr: float = 1e-2  # the paper's 2e-3 moves too little in 100 steps here (see docs/benchmarks.md)
    iterations: int = 100
    cycle: int = 50  # steps per learning-rate cycle
    lr_floor: float = 0.1  # the cycle's lowest learning rate as a fraction of lr
    lr_mode: str = "triangular"  # CyclicLR mode: "triangular" (constant peaks) or "triangular2" (peaks halve per cycle)
    grad_clip: float = 1.0
    reset_factor: float = 2.0
    patience: int = 40
    reset_shrink: float = 0.5  # a frame's step length is multiplied by this at each reset (backtracking)
    min_step_scale: float = 1.0 / 64
    image_size: int = 64  # height in pixels the image term renders and compares at (0: the frames' own size)
    # "animated": the translations of translated_joints() are optimised, the others interpolated between the
    # gap's keyframes; "roots": the roots' only, the others copied from the frame each front starts from (the
    # previous behaviour: a trajectory root's child, which carries the walk, stayed behind)
    translations: str = "animated"
    visible_every: int = 10  # re-ray-cast the soft renderer's visible triangles every k steps
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.depth_term not in ("absolute", "relative", "none"):
            raise ValueError(f"depth_term must be 'absolute', 'relative' or 'none', got {self.depth_term!r}")
        if self.lr_mode not in ("triangular", "triangular2"):
            raise ValueError(f"lr_mode must be 'triangular' or 'triangular2', got {self.lr_mode!r}")
        if self.translations not in ("animated", "roots"):
            raise ValueError(f"translations must be 'animated' or 'roots', got {self.translations!r}")

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class MimicTargets:
    """What the frames say, on the grid's times (rows of known samples are ignored)."""

    joints2d: np.ndarray | None = None  # (N, J, 2) pixels, pixel centres at +0.5
    depth: np.ndarray | None = None  # (N, J) camera-space z of the joints (the estimator's depth), or None
    joint_weights: np.ndarray | None = None  # (N, J) or (J,) confidence / visibility
    images: np.ndarray | None = None  # (N, H, W, 3) uint8 video frames


@dataclass
class MimicView:
    """The camera the frames were taken with, in skeleton space, and the character's scale."""

    camera: np.ndarray  # (3, 4) K @ [R | t] mapping skel-space points to pixels (column vectors)
    image_size: tuple[int, int]  # (H, W)
    height: float  # character height in skeleton units
    renderer: object | None = None  # render plugin SoftRenderer with this single view, for E_img
    focal: float = 1.0  # fy in pixels (depth errors are turned into pixels with it)


@dataclass
class MimicStats:
    losses: list[np.ndarray] = field(default_factory=list)  # per front, final best loss per frame
    resets: int = 0
    iterations: int = 0


def skel_camera(cameras, skel_to_world: np.ndarray, view: int = 0) -> np.ndarray:
    """(3, 4) projection of skel-space points to pixels for one view of render ``Cameras``."""
    w2c = np.asarray(cameras.world_to_cam)[view, 0]
    return np.asarray(cameras.K)[view] @ (w2c @ np.asarray(skel_to_world).T)[:3]


def image_term_renderer(character, cameras, settings: "MimicSettings", background: np.ndarray | None = None):
    """The soft renderer for E_img, at ``settings.image_size`` pixels high (same aspect and view).

    The image term matches silhouettes and part colours; a lower resolution keeps
    that signal and cuts the soft rasteriser's pairs by the area ratio (the frames
    are area-averaged to the same size in :class:`FrontProblem`). ``background``
    (V, H, W, 3) uint8 at the cameras' size is the backdrop behind the character
    (e.g. the floor the frames show, ``Renderer.background``), area-averaged likewise.
    """
    from anymole_usd.plugins.render.soft import SoftRenderer

    h = min(int(settings.image_size) or cameras.height, cameras.height)
    w = max(1, round(cameras.width * h / cameras.height))
    bg = None
    if background is not None:
        bg = area_resize(torch.as_tensor(np.asarray(background), dtype=torch.float32) / 255.0, h, w)
    if h < cameras.height:
        k = np.array(cameras.K, dtype=np.float64, copy=True)
        k[:, :2] *= h / cameras.height  # pixel coordinates (centres at +0.5) scale with the image
        cameras = replace(cameras, K=k, width=w, height=h)
    return SoftRenderer(character, cameras, device=settings.device, background=bg)


def area_resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, H, W, C) -> (N, height, width, C) by area averaging (identity when the size matches)."""
    if images.shape[1:3] == (height, width):
        return images
    x = torch.nn.functional.interpolate(images.permute(0, 3, 1, 2), size=(height, width), mode="area")
    return x.permute(0, 2, 3, 1).contiguous()


# ------------------------------------------------------------------ quaternions (xyzw, torch)
def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ax, ay, az, aw = a.unbind(-1)
    bx, by, bz, bw = b.unbind(-1)
    return torch.stack([aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx,
                        aw * bz + ax * by - ay * bx + az * bw,
                        aw * bw - ax * bx - ay * by - az * bz], -1)


def quat_exp(v: torch.Tensor) -> torch.Tensor:
    """Rotation vector (..., 3) -> unit quaternion (..., 4); smooth at 0."""
    th2 = (v * v).sum(-1, keepdim=True)
    th = th2.clamp_min(1e-12).sqrt()
    small = th2 < 1e-8
    s = torch.where(small, 0.5 - th2 / 48.0, torch.sin(0.5 * th) / th)
    c = torch.where(small, 1.0 - th2 / 8.0, torch.cos(0.5 * th))
    return torch.cat([v * s, c], -1)


# ------------------------------------------------------------------ optimisation
class FrontProblem:
    """Loss of one front's frames as a function of (v, p); everything batched over frames."""

    def __init__(self, parents, view: MimicView, settings: MimicSettings, q_init, t_base, scales, p_interp,
                 q_anchor, w_anchor, targets2d, weights2d, images, depth=None, dtype=torch.float32, moving=None):
        self.parents, self.view, self.s = np.asarray(parents), view, settings
        # joints whose translation is optimised (``P``): the roots, or :func:`translated_joints`
        self.roots = np.flatnonzero(self.parents < 0) if moving is None else np.asarray(moving)
        dev = torch.device(settings.device)

        def t(a):
            return None if a is None else torch.as_tensor(np.asarray(a), dtype=dtype, device=dev)

        self.q_init, self.t_base, self.scales, self.p_interp = t(q_init), t(t_base), t(scales), t(p_interp)
        self.q_anchor, self.w_anchor = t(q_anchor), t(w_anchor)  # (B, 2, J, 4), (B, 2)
        self.targets2d, self.images = t(targets2d), None if images is None else t(images) / 255.0
        if self.images is not None and view.renderer is not None:
            self.images = area_resize(self.images, view.renderer.cameras.height, view.renderer.cameras.width)
        h_img = view.image_size[0]
        if weights2d is not None:
            self.w2d = t(weights2d) * (REFERENCE_HEIGHT / h_img) ** 2
        self.camera = t(view.camera)
        self.depth = t(depth)
        if self.depth is not None:
            # depth error -> pixels at the frame's mean depth, then the 256-pixel reference
            focal = view.focal
            self.depth_scale = (focal * REFERENCE_HEIGHT / h_img / self.depth.mean(-1, keepdim=True)) ** 2
        self.height = float(view.height)
        self.visible = None
        if self.images is not None and view.renderer is not None:
            bg = view.renderer.background[0].to(dtype=dtype, device=dev)
            fg = (self.images - bg[None]).abs().amax(-1) > 0.1
            self.fg_count = fg.flatten(1).sum(-1).clamp_min(1).to(dtype)

    def pose(self, v, p):
        q = quat_mul(self.q_init, quat_exp(v))
        trans = self.t_base.clone()
        trans[:, self.roots] = self.p_interp + self.height * p
        return q, trans

    def losses(self, v, p, step: int) -> torch.Tensor:
        """Per-frame total loss (B,)."""
        s = self.s
        q, trans = self.pose(v, p)
        total = torch.zeros(v.shape[0], dtype=v.dtype, device=v.device)
        if s.lambda_joint and self.targets2d is not None:
            pos, _ = forward_kinematics(self.parents, q, trans, self.scales)
            total = total + s.lambda_joint * joint_loss(pos, self.targets2d, self.w2d, self.camera, reduction="none")
            if self.depth is not None and s.depth_term != "none":
                z = pos @ self.camera[2, :3] + self.camera[2, 3]
                dz = z - self.depth
                if s.depth_term == "relative":  # about the frame's (weighted) mean depth
                    wz = self.w2d / self.w2d.sum(-1, keepdim=True).clamp_min(1e-12)
                    dz = dz - (wz * dz).sum(-1, keepdim=True)
                total = total + s.lambda_joint * (self.w2d * self.depth_scale * dz ** 2).sum(-1)
        if s.lambda_img and self.images is not None:
            r = self.view.renderer
            if self.visible is None or step % max(1, s.visible_every) == 0:
                verts, _ = r.pose(q.detach(), trans.detach(), self.scales)
                self.visible = r.visible_triangles(verts)
            img = r.render(q, trans, self.scales, visible=self.visible).images[0]  # (B, H, W, 3)
            total = total + s.lambda_img * ((img - self.images) ** 2).flatten(1).sum(-1) / self.fg_count
        if s.lambda_pos:
            d = (trans[:, self.roots] - self.p_interp) / self.height
            total = total + s.lambda_pos * (d * d).flatten(1).sum(-1)
        if s.lambda_rot:
            qa = self.q_anchor
            sign = torch.where((qa * q[:, None]).sum(-1, keepdim=True) < 0, -1.0, 1.0)
            diff = ((q[:, None] - sign * qa) ** 2).sum(-1).mean(-1)  # (B, 2)
            total = total + s.lambda_rot * (diff * self.w_anchor).sum(-1)
        return total


def optimise(problem: FrontProblem, settings: MimicSettings, stats: MimicStats | None = None,
             hook: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
             tick: Callable[[int], None] | None = None):
    """Run Adam on one front; returns the best (q, trans) and per-frame best losses.

    ``hook(step, v, p)`` may modify the parameters in place before a step's loss
    (tests inject a bad step to exercise the reset). ``tick(steps_done)`` is called
    every 10 steps and at least once a second (progress reporting).
    """
    import time

    last_tick = time.monotonic()
    b, n_j = problem.q_init.shape[:2]
    dt, dev = problem.q_init.dtype, problem.q_init.device
    v = torch.zeros((b, n_j, 3), dtype=dt, device=dev, requires_grad=True)
    p = torch.zeros((b, len(problem.roots), 3), dtype=dt, device=dev, requires_grad=True)
    opt = torch.optim.Adam([v, p], lr=settings.lr)
    sched = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=settings.lr * settings.lr_floor, max_lr=settings.lr,
                                              step_size_up=max(1, settings.cycle // 2), mode=settings.lr_mode,
                                              cycle_momentum=False)
    best = torch.full((b,), float("inf"), dtype=dt, device=dev)
    best_v, best_p = v.detach().clone(), p.detach().clone()
    stall = torch.zeros(b, dtype=torch.long, device=dev)
    step_scale = torch.ones(b, dtype=dt, device=dev)
    for step in range(settings.iterations):
        if hook is not None:
            with torch.no_grad():
                hook(step, v, p)
        opt.zero_grad(set_to_none=False)
        loss = problem.losses(v, p, step)
        loss.sum().backward()
        with torch.no_grad():
            cur = loss.detach()
            better = cur < best
            best = torch.where(better, cur, best)
            best_v[better], best_p[better] = v[better], p[better]
            stall = torch.where(better, torch.zeros_like(stall), stall + 1)
            reset = (cur > settings.reset_factor * best) | (stall >= settings.patience)
            # per-frame gradient clipping: frames of a front are independent problems
            norm = (v.grad.flatten(1).pow(2).sum(-1) + p.grad.flatten(1).pow(2).sum(-1)).sqrt()
            scale = (settings.grad_clip / norm.clamp_min(1e-12)).clamp(max=1.0)
            v.grad.mul_(scale[:, None, None])
            p.grad.mul_(scale[:, None, None])
            if reset.any():
                # Back to the best state with momentum cleared and this frame's steps halved. The second
                # moments stay: zeroing them made the next Adam step ~3x lr in every coordinate (bias
                # correction uses the global step count), which overshot again and looped on resets.
                v[reset], p[reset] = best_v[reset], best_p[reset]
                v.grad[reset], p.grad[reset] = 0.0, 0.0
                for param in (v, p):
                    st = opt.state.get(param)
                    if st:
                        st["exp_avg"][reset] = 0.0
                step_scale[reset] = (step_scale[reset] * settings.reset_shrink).clamp_min(settings.min_step_scale)
                stall[reset] = 0
                if stats is not None:
                    stats.resets += int(reset.sum())
            v0, p0 = v.detach().clone(), p.detach().clone()
        opt.step()
        sched.step()
        with torch.no_grad():  # per-frame step length (Adam's lr is shared by the front)
            v.copy_(v0 + step_scale[:, None, None] * (v - v0))
            p.copy_(p0 + step_scale[:, None, None] * (p - p0))
        if tick is not None and ((step + 1) % 10 == 0 or time.monotonic() - last_tick >= 1.0):
            tick(step + 1)
            last_tick = time.monotonic()
    with torch.no_grad():  # the last step's parameters are scored too
        final = problem.losses(v, p, settings.iterations)
        better = final < best
        best = torch.where(better, final, best)
        best_v[better], best_p[better] = v[better], p[better]
        q, trans = problem.pose(best_v, best_p)
    if stats is not None:
        stats.iterations += settings.iterations
        stats.losses.append(best.cpu().numpy())
    return q, trans, best


def _front_ticker(progress: Callable[[str, float], None], front: int, fronts: int, frames: int,
                  iterations: int) -> Callable[[int], None]:
    """``tick(step)`` reporting a front's step as a message and the fraction of all fronts."""
    def tick(step: int) -> None:
        progress(f"mimicking: front {front + 1}/{fronts} ({frames} frames), step {step}/{iterations}",
                 (front + step / max(1, iterations)) / fronts)

    return tick


def mimic(parents, known: Motion, grid: Grid, targets: MimicTargets, view: MimicView,
          settings: MimicSettings | None = None, *, progress: Callable[[str, float], None] | None = None,
          stats: MimicStats | None = None, hook=None) -> Motion:
    """Optimise every interior grid frame, fronts from the keyframes inwards; returns the grid Motion.

    Known grid samples are copied from ``known`` exactly; each front starts from
    its neighbours' results.
    """
    settings = settings or MimicSettings()
    parents = np.asarray(parents)
    n, n_j = len(grid.times), known.num_joints
    moving = translated_joints(parents, known.translations, view.height) if settings.translations == "animated" \
        else np.flatnonzero(parents < 0)
    rot = np.zeros((n, n_j, 4))
    # translations and scales no term constrains: interpolated between the gap's keyframes (each frame's own,
    # not its neighbour's: a joint carrying a walk must keep walking while the fronts meet in the middle)
    trans = interpolate_between_keys(grid, known.translations, known)
    scl = interpolate_between_keys(grid, known.scales, known)
    k = known.index_of(grid.times[grid.known])
    rot[grid.known], trans[grid.known], scl[grid.known] = known.rotations[k], known.translations[k], known.scales[k]
    p_interp = trans[:, moving].copy()
    for fi, front in enumerate(grid.fronts):
        f, a, w = front.frames, front.anchors, front.anchor_weights
        qa = rot[a].copy()  # (B, 2, J, 4)
        qa[:, 1] *= np.where(np.sum(qa[:, 0] * qa[:, 1], -1, keepdims=True) < 0, -1.0, 1.0)
        q_init = (w[..., None, None] * qa).sum(1)
        q_init /= np.linalg.norm(q_init, axis=-1, keepdims=True)
        w2d = None
        if targets.joints2d is not None:
            w2d = np.ones((len(f), n_j)) if targets.joint_weights is None else \
                np.broadcast_to(targets.joint_weights, (n, n_j))[f]
        if settings.translations == "roots":
            trans[f], scl[f] = trans[a[:, 0]], scl[a[:, 0]]
        problem = FrontProblem(parents, view, settings, q_init, trans[f], scl[f], p_interp[f], qa, w,
                               None if targets.joints2d is None else targets.joints2d[f], w2d,
                               None if targets.images is None else targets.images[f],
                               None if targets.depth is None else targets.depth[f], moving=moving)
        tick = None if progress is None else _front_ticker(progress, fi, len(grid.fronts), len(f), settings.iterations)
        if tick is not None:
            tick(0)
        q, t, _ = optimise(problem, settings, stats, hook, tick)
        q = q.detach().cpu().numpy().astype(np.float64)
        rot[f], trans[f] = q / np.linalg.norm(q, axis=-1, keepdims=True), t.detach().cpu().numpy()
        if progress is not None:
            progress(f"mimicking: front {fi + 1}/{len(grid.fronts)} ({len(f)} frames) done", (fi + 1) / len(grid.fronts))
    return Motion(times=grid.times.copy(), rotations=rot, translations=trans, scales=scl, fps=known.fps,
                  joints=list(known.joints))
