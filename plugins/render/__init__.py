"""Render stage: multi-view images of any UsdSkel character (Warp ray casting) and a differentiable renderer.

Public API (imported lazily so ``import anymole_usd.plugins.render`` stays cheap):

- :func:`load_scene` / :func:`read_character`: USD -> :class:`Character` (+ Motion)
- :func:`proxy_character`: bone proxies for a mesh-less :class:`~anymole_usd.skeleton.Skeleton`
- :func:`render_views`, :class:`Renderer`: images (V, F, H, W, 3) + :class:`JointAnnotations`
- :class:`Cameras`, :func:`auto_cameras`, :func:`read_usd_camera`
- :class:`SoftRenderer` (torch): images differentiable w.r.t. root translation and joint rotations
- :class:`RenderWriter`, :func:`render_file`: PNG/MP4 per view + annotations (JSON and NPZ), atomically
- :class:`RenderStage`: the ``anymole_usd.stages`` entry point (content-addressed cache)
"""
from __future__ import annotations

from anymole_usd.lazy import lazy_attributes

_LAZY = {
    "Character": ".character",
    "read_character": ".character",
    "proxy_character": ".proxies",
    "Scene": ".scene",
    "load_scene": ".scene",
    "Cameras": ".cameras",
    "auto_cameras": ".cameras",
    "read_usd_camera": ".cameras",
    "VIEWS": ".cameras",
    "JointAnnotations": ".annotations",
    "Renderer": ".views",
    "RenderResult": ".views",
    "render_views": ".views",
    "parse_size": ".views",
    "pose_character": ".skinning",
    "SoftRenderer": ".soft",
    "RenderWriter": ".outputs",
    "render_file": ".render_job",
    "RenderStage": ".stage",
    "write_preview": ".preview",
}

__all__ = list(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
