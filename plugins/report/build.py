"""``write_report``: one self-contained HTML review of an in-betweening result.

Reads the shot (the composed result and its provenance), runs the compared
priors in memory on the same gaps, renders one looping side-by-side clip per
gap (result, each compared prior, reference; one camera path for all),
plots the curves, scores every motion against the reference and writes one
HTML file (temporary file + rename) that needs nothing else to open.
"""
from __future__ import annotations

import datetime
import os
import time
from typing import Callable, Sequence

import numpy as np

from anymole_usd.errors import InputError
from anymole_usd.motion import Motion
from anymole_usd.timeline import TIME_TOLERANCE

CLIP_FPS = 30.0  # clips of faster shots play every k-th frame in real time


def default_output(shot: str) -> str:
    return os.path.splitext(os.path.abspath(shot))[0] + ".report.html"


def _check_output(out: str) -> None:
    if os.path.splitext(out)[1].lower() not in (".html", ".htm"):
        raise InputError("report output must end in .html", file=out)
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise InputError("output folder does not exist or cannot be written", file=out)


def _reordered(motion: Motion, order: np.ndarray, skeleton) -> Motion:
    return Motion(motion.times, motion.rotations[:, order], motion.translations[:, order], motion.scales[:, order],
                  motion.fps, list(skeleton.joints))


def _slice(curve, keep: np.ndarray):
    from .plots import CurveSet

    return CurveSet(curve.style, curve.t[keep], curve.root_height[keep], curve.root_speed[keep],
                    curve.foot_heights[keep], curve.contacts[keep])


def _result_layers(stage) -> list[tuple[str, str]]:
    """(path, modification time) of every anymole-usd result layer in the stage's layer stack."""
    out = []
    for layer in stage.GetLayerStack():
        if "anymole_usd" in dict(layer.customLayerData) and layer.realPath and os.path.exists(layer.realPath):
            stamp = datetime.datetime.fromtimestamp(os.path.getmtime(layer.realPath), datetime.timezone.utc)
            out.append((layer.realPath, stamp.isoformat(timespec="seconds")))
    return out


def write_report(shot: str, out: str | None = None, *, reference: str | None = None, compare: Sequence[str] = (),
                 skeleton: str | None = None, view: str = "auto", size: tuple[int, int] = (288, 224),
                 margin: float = 0.5, video: str = "auto", device: str | None = None,
                 progress: Callable[[str, float], None] | None = None) -> dict:
    """Write the report of ``shot`` to ``out`` (default ``SHOT.report.html``); returns a summary.

    ``margin``: seconds of known motion shown before and after each gap in its clip and curves.
    ``video``: auto (MP4 when imageio-ffmpeg is installed, else WebP, else GIF), mp4, webp or gif.
    ``view``: auto (front for an upright character, left for a long one), front, left, right or back.
    """
    from anymole_usd import __version__
    from anymole_usd.plugins.render.cameras import VIEWS
    from anymole_usd.plugins.render.preview import PanelRenderer, labelled_frames, preview_panels, side_by_side

    from . import page, plots
    from .clips import clip_format, encode_clip, encode_png
    from .curves import Feet, angular_speed, body_root, joint_order, root_curves, world_positions
    from .scores import gap_windows

    started = time.perf_counter()
    say = progress or (lambda message, fraction: None)
    out = os.path.abspath(out or default_output(shot))
    _check_output(out)
    if view != "auto" and view not in VIEWS:
        raise InputError(f"unknown view {view!r} (known: auto, {', '.join(VIEWS)})")
    fmt = clip_format(video)
    say("reading the shot", 0.0)
    inputs = preview_panels(shot, reference=reference, compare=compare, skeleton=skeleton,
                            progress=lambda m, f: say(m, 0.05 + 0.25 * f))
    scene, prov, roles, panels = inputs.scene, inputs.provenance, inputs.roles, inputs.panels
    if prov is None or not prov.generated_times:
        raise InputError("no in-between result is composed in this shot (run `anymole-usd inbetween` on it "
                         "first)", file=shot, prim=scene.animation_path)
    gaps = gap_windows(prov.generated_times, scene.authored_times, prov.keyframes)
    skel, fps, t = scene.character.skeleton, float(scene.motion.fps), scene.motion.times
    names = [p.name for p in panels]
    styles = plots.panel_styles(names, reference is not None)
    colours = {s.name: s.colour for s in styles}

    # Every motion in the result's joint order, world metres.
    motions, positions = [], []
    for p in panels:
        order = joint_order(p.character.skeleton, skel)
        if order is None:
            missing = sorted(set(j.rsplit("/", 1)[-1] for j in skel.joints)
                             - set(j.rsplit("/", 1)[-1] for j in p.character.skeleton.joints))
            raise InputError(f"the reference has no joint {missing[0]!r} of {scene.skeleton_path}", file=reference)
        motions.append(_reordered(p.motion, order, skel))
        positions.append(world_positions(p.character, p.motion)[:, order])
    up = scene.character.up
    feet = Feet.find(scene.character, positions[-1] if reference else positions[0])
    root = body_root(scene.character, positions[0])
    seconds = t / fps
    curves = []
    for style, pos in zip(styles, positions):
        height, speed = root_curves(pos, root, up, seconds)
        fh = feet.heights(pos, up)
        curves.append(plots.CurveSet(style, t, height, speed, fh, feet.contacts(fh)))
    marks = plots.Marks(tuple(prov.context_range), np.asarray(prov.keyframes), [(g.start, g.end) for g in gaps])
    generated = roles.roles == 3
    angular = np.stack([angular_speed(m)[generated].mean(axis=0) for m in motions])

    scores, metrics = None, []
    if reference:
        from anymole_usd.metric import load_metrics
        from anymole_usd.reading import skel_space_up
        from pxr import UsdGeom

        from .scores import score_panels

        say("scoring", 0.3)
        metrics = load_metrics()
        preds = list(zip(names, motions))
        preds[-1] = ("reference", motions[-1])
        scores = score_panels(skel, motions[-1], preds, gaps, metrics, skel_space_up(scene.stage, scene.skeleton_path),
                              float(UsdGeom.GetStageMetersPerUnit(scene.stage)))
    styles_by_row = dict(colours)
    if reference:
        styles_by_row["reference"] = colours[names[-1]]

    # One clip per gap, rendered through one camera path.
    render_start = time.perf_counter()
    renderer = PanelRenderer(panels, view=view, size=size, device=device)
    step = max(1, int(np.ceil(fps / CLIP_FPS - 1e-6)))
    pad = margin * fps
    gap_sections, clip_bytes = [], 0
    for i, g in enumerate(gaps):
        say(f"gap {g.number}: rendering", 0.35 + 0.55 * i / len(gaps))
        inside = (t >= g.start - pad - TIME_TOLERANCE) & (t <= g.end + pad + TIME_TOLERANCE)
        window = np.flatnonzero(inside)
        ends = np.flatnonzero(np.isin(np.round(t, 3), np.round([g.start, g.end], 3)))
        idx = np.union1d(window[::step], ends)
        images = renderer.render(idx)
        tiles = labelled_frames(images, names, roles.times[idx], roles.roles[idx])
        frames = np.stack([side_by_side(tiles[:, k]) for k in range(len(idx))])
        mid = int(np.argmin(np.abs(t[idx] - 0.5 * (g.start + g.end))))
        data, mime = encode_clip(frames, fps / step, fmt)
        clip_bytes += len(data)
        labels = [(n, colours[n]) for n in names]
        body = [f'<section class="gap" id="gap-{g.number}" data-gap="{g.number}">',
                f"<h2>Gap {g.number}: {g.start:g} → {g.end:g} ({int(g.generated.sum())} generated frames, "
                f"{(g.end - g.start) / fps:.2f} s)</h2>",
                page.clip(data, mime, encode_png(frames[mid]), labels, frames.shape[2],
                          f"gap {g.number}: " + ", ".join(names)),
                f'<p class="note">Looping from {t[idx[0]]:g} to {t[idx[-1]]:g} ({margin:g} s of known motion each '
                f"side{'' if step == 1 else f', every {step}th frame'}; {renderer.view} view); each tile: time code "
                "and role on top, motion at the bottom left.</p>",
                page.figure(plots.timeline_svg((float(t[0]), float(t[-1])), marks, fps, highlight=i),
                            f"timeline, gap {g.number} highlighted")]
        keep = inside
        body.append(page.figure(plots.curves_svg([_slice(c, keep) for c in curves], feet.names, marks, highlight=i,
                                                 xlim=(float(t[keep][0]), float(t[keep][-1]))),
                                f"curves around gap {g.number}",
                                "Root height and horizontal speed, contact joints' heights above their ground with "
                                "contact bars; gap shaded orange, context blue, keyframes green."))
        if scores is not None:
            body += ["<h3>Metrics on this gap</h3>", page.metrics_table(scores["gaps"][i], metrics, styles_by_row)]
        body.append("</section>")
        gap_sections.append("".join(body))
    render_seconds = time.perf_counter() - render_start

    say("plots", 0.92)
    overview = ['<section id="overview"><h2>Overview</h2>', page.legend(),
                page.figure(plots.timeline_svg((float(t[0]), float(t[-1])), marks, fps,
                                               generated=np.asarray(prov.generated_times)),
                            "timeline of the shot", "Context, keyframes and the filled gaps, in time codes.")]
    if scores is not None:
        overview += ["<h3>Metrics over every gap, against the reference</h3>",
                     page.metrics_table(scores["overall"], metrics, styles_by_row),
                     f'<p class="note">L2P in metres, l2p-norm in character sizes ({scores["size"]:.3g} skeleton '
                     "units, from the reference); the reference row is the truth scored against itself "
                     "(its own foot skate). Hover a column for its definition.</p>"]
    else:
        overview.append('<p class="note">No reference given: pass <code>--reference TRUTH</code> for L2Q, HL2Q, '
                        "L2P, NPSS, foot skate and key-jump.</p>")
    overview.append("</section>")
    whole = ['<section id="curves"><h2>Curves over the whole shot</h2>',
             page.figure(plots.curves_svg(curves, feet.names, marks), "curves over the whole shot",
                         f"Root joint {skel.short_names[root]}; contact joints {', '.join(feet.names) or 'none'} "
                         "(the foot-skate metric's rule)."),
             "<h3>Per-joint angular speed over the generated frames</h3>",
             page.figure(plots.angular_svg(skel.short_names, styles, angular), "per-joint angular speed",
                         "Mean angular speed of each joint's local rotation over every generated frame; the 20 "
                         "fastest joints."),
             "</section>"]

    params = prov.parameters if isinstance(prov.parameters, dict) else {}
    library = next((params[k] for k in ("library", "references", "clips") if params.get(k)), None)
    details = prov.details if isinstance(prov.details, dict) else {}
    from anymole_usd.schema import gap_source_lines, retrieval_offered

    offered = retrieval_offered(details)  # inbetween --library / --reference
    if offered:
        library = "; ".join([f"from {offered}"] + gap_source_lines(details))
    runs = [{"prior": r.name, "seconds": round(r.seconds, 2), "parameters": r.parameters,
             **({"error": r.error} if r.error else {})} for r in inputs.runs]
    generated_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    items = [("shot", os.path.abspath(shot)), ("animation", scene.animation_path), ("skeleton", scene.skeleton_path),
             ("prior", prov.prior), ("parameters", prov.parameters or "defaults"), ("seed", prov.seed),
             ("mode", prov.mode), ("made by", f"anymole-usd {prov.tool_version}"),
             ("source", f"{prov.source_layer} {prov.source_prim}"),
             ("context", f"{prov.context_range[0]:g}:{prov.context_range[1]:g}"),
             ("keyframes", ", ".join(f"{k:g}" for k in prov.keyframes) or "none"),
             ("generated frames", f"{len(prov.generated_times)} in {len(gaps)} gap(s)"),
             ("library clips used", library if library else "none recorded in the result's provenance")]
    items += [("result layer", f"{path} (written {stamp})") for path, stamp in _result_layers(scene.stage)]
    if reference:
        items.append(("reference", os.path.abspath(reference)))
    if runs:
        items.append(("compared priors (run for this report, nothing written)", runs))
    items += [("report", f"anymole-usd {__version__}, {generated_at}"),
              ("times", f"rendering {render_seconds:.1f} s, total {time.perf_counter() - started:.1f} s; clips "
                        f"{fmt.upper()}, {clip_bytes / 1e6:.2f} MB")]
    errors = "".join(f'<p class="error">{page.escape(r.name)} failed: {page.escape(r.error)}</p>'
                     for r in inputs.runs if r.error)
    prov_section = f'<section id="provenance"><h2>Provenance</h2>{errors}{page.definition_list(items)}</section>'
    nav = " ".join(f'<a href="#gap-{g.number}">gap {g.number}</a>' for g in gaps)
    header = (f"<header><h1>{page.escape(os.path.basename(shot))}</h1>"
              f"<p>{page.escape(scene.animation_path or '')} · prior <b>{page.escape(prov.prior)}</b> · "
              f"{len(gaps)} gap(s), {len(prov.generated_times)} generated frames · {fps:g} fps · panels: "
              f"{page.escape(', '.join(names))}</p>"
              f'<nav><a href="#overview">overview</a> {nav} <a href="#curves">curves</a> '
              f'<a href="#provenance">provenance</a></nav></header>')
    html = page.page(f"anymole-usd report: {os.path.basename(shot)}", header,
                     overview + gap_sections + whole + [prov_section],
                     f"Generated by anymole-usd {__version__} on {generated_at}. Self-contained: no network, "
                     "no external files.")
    from anymole_usd.atomic_files import staging

    with staging(out) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(html)
    say("done", 1.0)
    summary = {"shot": os.path.abspath(shot), "output": out, "bytes": os.path.getsize(out), "panels": names,
               "gaps": [{"gap": g.number, "start": g.start, "end": g.end, "generated": int(g.generated.sum())}
                        for g in gaps],
               "video": fmt, "view": renderer.view, "clip_bytes": clip_bytes, "reference": reference, "compare": runs,
               "seconds": round(time.perf_counter() - started, 2)}
    if scores is not None:
        summary["metrics"] = {"overall": scores["overall"], "gaps": scores["gaps"]}
    return summary
