"""Report figures with matplotlib, returned as SVG text (no pyplot state, no display, no files).

Every figure shares one visual language with the clips: context blue, keyframes
green, gaps orange; each motion has one colour and line style in every plot
(:func:`panel_styles`), the reference dashed dark grey.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np

CONTEXT, KEY, GAP = "#3c6edc", "#28aa46", "#f08c1e"
RESULT, REFERENCE = "#d0451b", "#333333"
OTHERS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
FOOT_COLOURS = ("#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d")
RC = {"svg.fonttype": "none", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
      "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "anymole-usd"}


@dataclass
class Style:
    name: str
    colour: str
    dashes: str  # matplotlib linestyle


def panel_styles(names: Sequence[str], reference: bool) -> list[Style]:
    """One style per panel: the result first, compared priors next, the reference (if any) last."""
    styles = []
    for i, name in enumerate(names):
        if reference and i == len(names) - 1:
            styles.append(Style(name, REFERENCE, "--"))
        elif i == 0:
            styles.append(Style(name, RESULT, "-"))
        else:
            styles.append(Style(name, OTHERS[(i - 1) % len(OTHERS)], "-"))
    return styles


@dataclass
class Marks:
    """What to shade on every time axis (time codes)."""

    context: tuple[float, float]
    keys: np.ndarray
    gaps: list[tuple[float, float]]  # (known before, known after) of each gap

    def draw(self, ax, highlight: int | None = None) -> None:
        ax.axvspan(*self.context, color=CONTEXT, alpha=0.07, lw=0)
        for i, (a, b) in enumerate(self.gaps):
            ax.axvspan(a, b, color=GAP, alpha=0.22 if i == highlight else 0.12, lw=0)
        for k in self.keys:
            ax.axvline(k, color=KEY, lw=1.2, alpha=0.8)


def to_svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": "anymole-usd"})
    return buffer.getvalue()


def _figure(width: float, height: float):
    import matplotlib

    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        return Figure(figsize=(width, height), dpi=100)


def timeline_svg(span: tuple[float, float], marks: Marks, fps: float, highlight: int | None = None,
                 generated: np.ndarray | None = None) -> str:
    """A strip over the whole shot: context, gaps (numbered), keyframes, generated frames as ticks."""
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = _figure(10, 1.15)
        ax = fig.add_subplot()
        a, b = marks.context
        ax.broken_barh([(a, max(b - a, 0.5))], (0.55, 0.35), color=CONTEXT)
        ax.text(0.5 * (a + b), 0.98, "context", ha="center", va="bottom", color=CONTEXT, fontsize=8)
        for i, (g0, g1) in enumerate(marks.gaps):
            ax.broken_barh([(g0, g1 - g0)], (0.1, 0.35), color=GAP, alpha=1.0 if highlight in (None, i) else 0.35)
            ax.text(0.5 * (g0 + g1), 0.27, f"gap {i + 1}", ha="center", va="center", color="white", fontsize=8,
                    fontweight="bold")
        if generated is not None and len(generated):
            ax.vlines(generated, 0.05, 0.1, color=GAP, lw=0.6)
        ax.plot(marks.keys, np.full(len(marks.keys), 0.72), "D", color=KEY, ms=6, label="keyframe")
        for k in marks.keys:
            ax.text(k, 0.98, f"{k:g}", ha="center", va="bottom", color=KEY, fontsize=8)
        pad = 0.01 * max(span[1] - span[0], 1.0)
        ax.set_xlim(span[0] - pad, span[1] + pad)
        ax.set_ylim(0, 1.25)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_xlabel(f"time code ({fps:g} per second)")
        return to_svg(fig)


@dataclass
class CurveSet:
    """One motion's curves (time codes ``t``): root height (m), horizontal root speed (m/s), contact-joint
    heights above ground (F, C) and contacts (F, C)."""

    style: Style
    t: np.ndarray
    root_height: np.ndarray
    root_speed: np.ndarray
    foot_heights: np.ndarray
    contacts: np.ndarray


def curves_svg(curves: Sequence[CurveSet], feet: Sequence[str], marks: Marks, xlim: tuple[float, float] | None = None,
               highlight: int | None = None, feet_of: Sequence[int] = (0, -1), title: str = "") -> str:
    """Three stacked plots: root height, horizontal root speed, contact-joint heights with contact strips.

    Feet are drawn for the motions ``feet_of`` (by default the result and the last one, the reference) to
    keep the plot legible: one colour per joint, each motion in its own line style.
    """
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = _figure(10, 6.4)
        axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1, 1.35], "hspace": 0.12})
        for ax in axes:
            marks.draw(ax, highlight)
        for c in curves:
            kw = {"color": c.style.colour, "ls": c.style.dashes, "lw": 1.4, "label": c.style.name}
            axes[0].plot(c.t, c.root_height, **kw)
            axes[1].plot(c.t, c.root_speed, **kw)
        axes[0].set_ylabel("root height (m)")
        axes[1].set_ylabel("root speed,\nhorizontal (m/s)")
        shown = list(dict.fromkeys(i % len(curves) for i in feet_of)) if curves else []
        top = max([float(np.nanmax(curves[i].foot_heights)) for i in shown if curves[i].foot_heights.size] + [0.05])
        lane = 0.06 * top
        for row, i in enumerate(shown):
            c = curves[i]
            for j, name in enumerate(feet):
                colour = FOOT_COLOURS[j % len(FOOT_COLOURS)]
                axes[2].plot(c.t, c.foot_heights[:, j], color=colour, ls=c.style.dashes, lw=1.2,
                             label=f"{name} ({c.style.name})")
                y = -lane * (1.3 + row * len(feet) + j)
                axes[2].broken_barh(_runs(c.t, c.contacts[:, j]), (y, 0.8 * lane), color=colour,
                                    alpha=1.0 if c.style.dashes == "-" else 0.45)
        axes[2].axhline(0, color="#999999", lw=0.6)
        axes[2].set_ylabel("contact joints above\nground (m); bars: contact")
        axes[2].set_xlabel("time code")
        if xlim:
            axes[2].set_xlim(*xlim)
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        if shown and len(feet):
            axes[2].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        if title:
            axes[0].set_title(title, loc="left")
        return to_svg(fig)


def _runs(t: np.ndarray, mask: np.ndarray) -> list[tuple[float, float]]:
    """(start, width) of each run of True in ``mask`` over times ``t`` (each frame covers half a step around it)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    half = 0.5 * (np.median(np.diff(t)) if len(t) > 1 else 1.0)
    return [(float(t[s] - half), float(t[e] - t[s] + 2 * half)) for s, e in zip(starts, ends)]


def angular_svg(joints: Sequence[str], styles: Sequence[Style], values: np.ndarray, top: int = 20) -> str:
    """Horizontal bars: mean angular speed (deg/s) over the generated frames, per joint and motion.

    ``values`` (P, J); the ``top`` joints with the largest value in any motion are shown.
    """
    import matplotlib

    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(-np.nanmax(values, axis=0))[:top][::-1]
    n, p = len(order), len(styles)
    with matplotlib.rc_context(RC):
        fig = _figure(10, 0.8 + 0.28 * n * max(1.0, p / 2.5))
        ax = fig.add_subplot()
        height = 0.8 / p
        y = np.arange(n)
        for i, s in enumerate(styles):
            ax.barh(y + (i - (p - 1) / 2) * height, values[i, order], height=height, color=s.colour,
                    alpha=0.55 if s.dashes == "--" else 0.9, label=s.name,
                    hatch="//" if s.dashes == "--" else None, edgecolor="white" if s.dashes != "--" else s.colour)
        ax.set_yticks(y)
        ax.set_yticklabels([joints[j] for j in order])
        ax.set_xlabel("mean angular speed of the joint's local rotation over the generated frames (deg/s)")
        ax.legend(loc="lower right", frameon=False)
        ax.set_ylim(-0.6, n - 0.4)
        return to_svg(fig)
