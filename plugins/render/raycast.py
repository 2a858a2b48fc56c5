"""Ray-cast renderer: a Warp BVH over the posed mesh, refit per frame, one ray per pixel of every view.

Each frame costs one BVH refit and one kernel launch covering all views, so
the Python loop runs over frames only (the BVH must be refit between them).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cameras import Cameras
from .skinning import Skinner, default_device

BACKGROUND_TOP = (0.86, 0.87, 0.89)
BACKGROUND_BOTTOM = (0.62, 0.63, 0.66)


@dataclass
class FrameImages:
    """One frame, every view."""

    rgb: np.ndarray  # (V, H, W, 3) uint8
    depth: np.ndarray  # (V, H, W) float32 camera z of the character, 0 where none
    parts: np.ndarray  # (V, H, W) int32 joint label, -1 background, -2 ground
    faces: np.ndarray  # (V, H, W) int32 triangle hit, -1 where none


class RayCaster:
    """Renders a :class:`~.character.Character` posed by :class:`~.skinning.Skinner` output."""

    def __init__(self, character, device: str | None = None, *, ground: bool = True, shadows: bool = True,
                 ground_height: float | None = None, tile: float | None = None) -> None:
        import warp as wp

        from . import kernels  # noqa: F401

        self.wp = wp
        self.device = device or default_device()
        self.character = character
        self.skinner = Skinner(character, self.device)
        self.ground = ground
        self.shadows = shadows
        self.ground_height = ground_height
        self.tile = tile or max(0.25 * character.height(), 1e-3)
        self._points = wp.array(character.points.astype(np.float32),
                                dtype=wp.vec3, device=self.device)
        self._faces = wp.array(character.faces.reshape(-1).astype(np.int32), dtype=wp.int32, device=self.device)
        self.mesh = wp.Mesh(points=self._points, indices=self._faces)
        self._parts = wp.array(character.face_parts.astype(np.int32), dtype=wp.int32, device=self.device)
        self._colours = wp.array(character.part_colours(), dtype=wp.vec3, device=self.device)

    def frames(self, vertices, cameras: Cameras, frame_indices=None, ground_height: float | None = None):
        """Yield :class:`FrameImages` for each frame of ``vertices`` ((F, P) Warp array or (F, P, 3) numpy).

        ``cameras`` must have one frame or as many as ``vertices``; ``frame_indices``
        picks which camera frame goes with each vertex frame (default: the same index).
        """
        wp = self.wp
        from .kernels import raycast

        if isinstance(vertices, np.ndarray):
            vertices = wp.array(vertices.astype(np.float32), dtype=wp.vec3, device=self.device)
        n_f = vertices.shape[0]
        v, h, w = cameras.num_views, cameras.height, cameras.width
        centres, rots = cameras.cam_to_world(cameras.num_frames)
        intr = np.stack([cameras.K[:, 0, 0], cameras.K[:, 1, 1], cameras.K[:, 0, 2], cameras.K[:, 1, 2]], -1)
        intr_wp = wp.array(intr.astype(np.float32), dtype=wp.vec4, device=self.device)
        up = wp.vec3(*self.character.up.astype(np.float32))
        ground_h = self.ground_height if ground_height is None else ground_height
        if ground_h is None:
            ground_h = float((vertices.numpy().reshape(-1, 3) @ self.character.up).min()) if n_f else 0.0
        boxes_np = self.pixel_boxes(vertices.numpy(), cameras, ground_h, frame_indices)
        boxes = wp.array(boxes_np, dtype=wp.int32, device=self.device)
        bufs = [wp.empty((v, h, w, 3), dtype=wp.uint8, device=self.device)] + [
            wp.empty((v, h, w), dtype=t, device=self.device) for t in (wp.float32, wp.int32, wp.int32)]
        fixed = cameras.num_frames == 1
        background = None
        for f in range(n_f):
            cf = f if frame_indices is None else int(frame_indices[f])
            cf = 0 if fixed else cf
            args = [wp.array(centres[:, cf].astype(np.float32), dtype=wp.vec3, device=self.device),
                    wp.array(rots[:, cf].astype(np.float32), dtype=wp.mat33, device=self.device), intr_wp]
            if fixed and background is None:
                # Fixed cameras see the same floor every frame: draw it once, then redraw only
                # the pixels the character and its shadow can reach.
                empty = wp.array(np.tile([w, h, -1, -1, w, h, -1, -1, 0, 0, w - 1, h - 1], (v, 1)).astype(np.int32),
                                 dtype=wp.int32, device=self.device)
                self._launch(raycast, (v, h, w), args, empty, 0, up, ground_h, bufs)
                background = [wp.clone(b) for b in bufs]
            wp.copy(self.mesh.points, vertices[f])
            self.mesh.refit()
            if fixed:
                for b, bg in zip(bufs, background):
                    wp.copy(b, bg)
                work = boxes_np[f, :, 10:12] - boxes_np[f, :, 8:10] + 1
                dim = (v, int(max(work[:, 1].max(), 0)), int(max(work[:, 0].max(), 0)))
                if dim[1] and dim[2]:
                    self._launch(raycast, dim, args, boxes[f], 1, up, ground_h, bufs)
            else:
                self._launch(raycast, (v, h, w), args, boxes[f], 0, up, ground_h, bufs)
            yield FrameImages(*(b.numpy().copy() for b in bufs))

    def background(self, cameras: Cameras, ground_height: float, frame: int = 0) -> np.ndarray:
        """(V, H, W, 3) uint8: floor and background without the character (a backdrop for soft renders)."""
        wp = self.wp
        from .kernels import raycast

        v, h, w = cameras.num_views, cameras.height, cameras.width
        centres, rots = cameras.cam_to_world(cameras.num_frames)
        cf = 0 if cameras.num_frames == 1 else frame
        intr = np.stack([cameras.K[:, 0, 0], cameras.K[:, 1, 1], cameras.K[:, 0, 2], cameras.K[:, 1, 2]], -1)
        args = [wp.array(centres[:, cf].astype(np.float32), dtype=wp.vec3, device=self.device),
                wp.array(rots[:, cf].astype(np.float32), dtype=wp.mat33, device=self.device),
                wp.array(intr.astype(np.float32), dtype=wp.vec4, device=self.device)]
        bufs = [wp.empty((v, h, w, 3), dtype=wp.uint8, device=self.device)] + [
            wp.empty((v, h, w), dtype=t, device=self.device) for t in (wp.float32, wp.int32, wp.int32)]
        empty = wp.array(np.tile([w, h, -1, -1, w, h, -1, -1, 0, 0, w - 1, h - 1], (v, 1)).astype(np.int32),
                         dtype=wp.int32, device=self.device)
        up = wp.vec3(*self.character.up.astype(np.float32))
        self._launch(raycast, (v, h, w), args, empty, 0, up, ground_height, bufs)
        return bufs[0].numpy().copy()

    def _launch(self, kernel, dim, args, boxes, tiled, up, ground_h, bufs) -> None:
        wp = self.wp
        wp.launch(kernel, dim=dim, device=self.device, inputs=[
            self.mesh.id, self._parts, self._colours, *args, boxes, int(tiled), up, float(ground_h),
            int(self.ground), int(self.shadows), float(self.tile), wp.vec3(*BACKGROUND_TOP),
            wp.vec3(*BACKGROUND_BOTTOM), *bufs])

    def pixel_boxes(self, vertices: np.ndarray, cameras: Cameras, ground_h: float, frame_indices=None) -> np.ndarray:
        """(F, V, 12) int32 pixel boxes: projected mesh, mesh + its vertical shadow, and the pixels to redraw.

        A triangle projects inside the box of its corners when all lie in front of
        the camera; otherwise the box is the whole image.
        """
        n_f = len(vertices)
        full = np.array([0, 0, cameras.width - 1, cameras.height - 1])
        if n_f == 0:
            return np.zeros((0, cameras.num_views, 12), dtype=np.int32)
        cams = cameras if frame_indices is None else cameras.select_frames(frame_indices)
        up = self.character.up
        dropped = vertices - ((vertices @ up) - ground_h)[..., None] * up
        out = []
        for pts in (vertices, np.concatenate([vertices, dropped], 1)):
            px, z = cams.project(pts)  # (V, F, P, 2), (V, F, P)
            lo = np.floor(px.min(2)).astype(np.int64) - 1
            hi = np.ceil(px.max(2)).astype(np.int64) + 1
            box = np.concatenate([lo, hi], -1)
            behind = (z <= cams.near[:, None, None]).any(2)
            box = np.where(behind[..., None], full, box)
            box = np.clip(box, -1, np.array([cameras.width, cameras.height] * 2))
            out.append(box)
        # pixels that can differ from the plain floor: the mesh, plus its shadow when drawn
        work = out[1] if (self.ground and self.shadows) else out[0]
        out.append(np.clip(work, 0, np.array([cameras.width - 1, cameras.height - 1] * 2)))
        return np.ascontiguousarray(np.concatenate(out, -1).transpose(1, 0, 2)).astype(np.int32)
