"""One self-contained HTML review report per shot (``anymole-usd report``).

Public API (imported lazily so ``import anymole_usd.plugins.report`` stays cheap):

- :func:`write_report`: SHOT (+ reference, + compared priors) -> one HTML file with looping side-by-side clips
  per filled gap, timeline, curves, metrics and provenance; no network, no external files
- :func:`compare_priors`: other priors on the gaps a result filled, in memory (nothing written)
- :func:`encode_clip`: frames -> H.264 MP4, or animated WebP/GIF without an encoder
"""
from __future__ import annotations

from anymole_usd.lazy import lazy_attributes

_LAZY = {
    "write_report": ".build",
    "compare_priors": ".compare",
    "CompareRun": ".compare",
    "encode_clip": ".clips",
}

__all__ = list(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
