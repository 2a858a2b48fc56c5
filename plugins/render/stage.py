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

from .cameras import VIEWS, Cameras
from .character import Character


class RenderStage:
    name = "render"
    description = "Multi-view ray-cast renders (Warp) of a character's motion, with 2D joint annotations"

    def __init__(self, *, views: tuple[str, ...] = VIEWS, size: tuple[int, int] = (256, 256), follow: bool = False,
                 ground: bool = True, shadows: bool = True, device: str | None = None, **extra: Any) -> None:
        self.params = {"views": tuple(views), "size": tuple(int(s) for s in size), "follow": bool(follow),
                       "ground": bool(ground), "shadows": bool(shadows), **extra}
        self.device = device

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
    tmp = f"{path}.tmp-{os.getpid()}.npz"
    c, j = result.cameras, result.joints
    np.savez_compressed(tmp, images=result.images, depth=result.depth, parts=result.parts, pixels=j.pixels,
                        jdepth=j.depth, jndc=j.depth_ndc, visible=j.visible, in_frame=j.in_frame, times=result.times,
                        names=np.asarray(c.names), K=c.K, world_to_cam=c.world_to_cam, near=c.near, far=c.far,
                        size=np.array([c.height, c.width]), joint_names=np.asarray(result.joint_names))
    os.replace(tmp, path)


def load_result(path: str):
    from .annotations import JointAnnotations
    from .views import RenderResult

    with np.load(path) as d:
        cams = Cameras([str(n) for n in d["names"]], d["K"], d["world_to_cam"], int(d["size"][1]),
                       int(d["size"][0]), d["near"], d["far"])
        joints = JointAnnotations(d["pixels"], d["jdepth"], d["jndc"], d["visible"], d["in_frame"])
        return RenderResult(d["images"], d["depth"], d["parts"], joints, cams, d["times"],
                            [str(n) for n in d["joint_names"]])
