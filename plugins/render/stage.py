"""The render stage for pipelines: character + motion (arrays) -> renders and joint annotations.

Registered under the ``anymole_usd.stages`` entry-point group as ``render``.
Priors (AnyMoLe's ICAdapt, the joint estimator, mimicking) call it with
arrays, never with the USD stage. With a cache folder, results are stored
content-addressed (hash of the character, motion, cameras and parameters),
so a re-run after a keyframe edit renders only what changed.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from anymole_usd.motion import Motion
from anymole_usd.parameters import Param, Parameters

from .cameras import VIEWS, Cameras
from .character import Character


class RenderStage:
    name = "render"
    description = "Multi-view ray-cast renders (Warp) of a character's motion, with 2D joint annotations"
    param_spec = Parameters(
        Param("views", VIEWS, "views to render: front, left, right, back (list or comma-separated)", type=object),
        Param("size", (256, 256), "image size (height, width) or \"HxW\"", type=object),
        Param("follow", False, "cameras follow the character instead of framing the whole clip"),
        Param("ground", True, "draw the ground plane"),
        Param("shadows", True, "cast shadows on the ground"),
        Param("device", None, "Warp device (cpu, cuda:0; default: CUDA when present)", nullable=True),
    )

    def __init__(self, **params: Any) -> None:
        from anymole_usd.errors import InputError

        from .render_job import parse_views
        from .views import parse_size

        p = self.param_spec.resolve(params, owner="render stage")
        size = p["size"]
        try:
            size = parse_size(size) if isinstance(size, str) else tuple(int(s) for s in size)
        except (TypeError, ValueError) as exc:
            raise InputError(f"render stage: bad value {p['size']!r} for size: {exc}") from None
        if len(size) != 2 or min(size) <= 0:
            raise InputError(f"render stage: bad value {p['size']!r} for size (height, width)")
        self.params = {"views": tuple(parse_views(p["views"])), "size": size, "follow": p["follow"],
                       "ground": p["ground"], "shadows": p["shadows"]}
        self.device = p["device"]

    def parameters(self) -> dict:
        return dict(self.params)

    @staticmethod
    def read_character(stage, binding) -> Character:
        """The runner's one call into the stage for rendering priors: meshes, skinning, world transform."""
        from .character import read_character

        return read_character(stage, binding)

    def cache_key(self, character: Character, motion: Motion, cameras: Cameras | None = None) -> str:
        h = hashlib.sha256()
        for a in (character.points, character.faces, character.joint_indices, character.joint_weights,
                  character.bind_transforms, character.skel_to_world, character.skeleton.parents,
                  motion.times, motion.rotations, motion.translations, motion.scales):
            h.update(np.ascontiguousarray(a).tobytes())
        if cameras is not None:
            h.update(cameras.K.tobytes())
            h.update(np.ascontiguousarray(cameras.world_to_cam).tobytes())
        h.update(repr(sorted(self.params.items())).encode())
        return h.hexdigest()[:24]

    def run(self, character: Character, motion: Motion, cameras: Cameras | None = None, *,
            cache_dir: str | None = None):
        """A :class:`~.views.RenderResult` (from the cache folder when the same inputs were rendered before)."""
        from .views import Renderer

        path = None
        if cache_dir:
            path = os.path.join(cache_dir, f"render-{self.cache_key(character, motion, cameras)}.npz")
            if os.path.exists(path):
                return load_result(path)
        p = self.params
        renderer = Renderer(character, device=self.device, ground=p["ground"], shadows=p["shadows"])
        result = renderer.render(motion, cameras, views=p["views"], size=p["size"], follow=p["follow"])
        if path:
            save_result(path, result)
        return result


def save_result(path: str, result) -> None:
    """Write a RenderResult to ``path`` (.npz) atomically."""
    from anymole_usd.atomic_files import staging

    c, j = result.cameras, result.joints
    with staging(path) as tmp:
        np.savez_compressed(tmp, images=result.images, depth=result.depth, parts=result.parts, pixels=j.pixels,
                            jdepth=j.depth, jndc=j.depth_ndc, visible=j.visible, in_frame=j.in_frame,
                            times=result.times, names=np.asarray(c.names), K=c.K, world_to_cam=c.world_to_cam,
                            near=c.near, far=c.far,
                            size=np.array([c.height, c.width]), joint_names=np.asarray(result.joint_names))


def load_result(path: str):
    from .annotations import JointAnnotations
    from .views import RenderResult

    with np.load(path) as d:
        cams = Cameras([str(n) for n in d["names"]], d["K"], d["world_to_cam"], int(d["size"][1]),
                       int(d["size"][0]), d["near"], d["far"])
        joints = JointAnnotations(d["pixels"], d["jdepth"], d["jndc"], d["visible"], d["in_frame"])
        return RenderResult(d["images"], d["depth"], d["parts"], joints, cams, d["times"],
                            [str(n) for n in d["joint_names"]])
