"""The report's HTML: one self-contained page (inline CSS, images and video as data: URIs, no script, no network).

Small functions return HTML fragments; :func:`page` joins them. Every value
that comes from a file (names, paths, parameters) is escaped.
"""
from __future__ import annotations

import base64
import json
from html import escape
from typing import Sequence

import numpy as np

CSS = """
:root { color-scheme: light; --context: #3c6edc; --key: #28aa46; --gap: #f08c1e; --ink: #1d1d1f; --muted: #6b6b70; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); background: #f6f6f4; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 40px; }
header h1 { font-size: 22px; margin: 0 0 4px; word-break: break-all; }
header p { margin: 2px 0; color: var(--muted); }
section { background: #fff; border: 1px solid #e2e2de; border-radius: 8px; padding: 14px 18px; margin: 16px 0; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.legend span { display: inline-block; margin-right: 14px; }
.chip { display: inline-block; width: 11px; height: 11px; border-radius: 2px; vertical-align: -1px; margin-right: 4px; }
figure { margin: 8px 0; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; }
.clipbox { display: inline-block; max-width: 100%; }
.panel-labels { display: grid; gap: 4px; margin-bottom: 3px; }
.panel-label { font-weight: 600; text-align: center; border-bottom: 3px solid; padding: 1px 4px; white-space: nowrap;
               overflow: hidden; text-overflow: ellipsis; }
.clip { display: block; max-width: 100%; height: auto; background: #ddd; }
table.metrics { border-collapse: collapse; margin: 6px 0; font-variant-numeric: tabular-nums; }
table.metrics th, table.metrics td { padding: 3px 10px; border-bottom: 1px solid #e6e6e2; text-align: right; }
table.metrics th:first-child, table.metrics td:first-child { text-align: left; }
table.metrics td.best { font-weight: 700; color: #0b7a2a; }
table.metrics th small { color: var(--muted); font-weight: 400; }
dl.prov { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0; }
dl.prov dt { color: var(--muted); }
dl.prov dd { margin: 0; word-break: break-word; }
code, pre { font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
pre { background: #f3f3f0; padding: 6px 8px; border-radius: 4px; white-space: pre-wrap; margin: 0; }
.note { color: var(--muted); }
.error { color: #b00020; }
nav a { margin-right: 10px; }
"""


def data_uri(data: bytes | str, mime: str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def figure(svg: str, alt: str, caption: str = "", cls: str = "plot") -> str:
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (f'<figure class="{cls}"><img alt="{escape(alt)}" src="{data_uri(svg, "image/svg+xml")}">{cap}'
            f"</figure>")


def clip(video: bytes, mime: str, poster_png: bytes, labels: Sequence[tuple[str, str]], width: int,
         alt: str) -> str:
    """A looping clip with its panels labelled above it (``labels``: (name, colour) left to right)."""
    heads = "".join(f'<span class="panel-label" style="border-color:{c}">{escape(n)}</span>' for n, c in labels)
    grid = f'<div class="panel-labels" style="grid-template-columns:repeat({len(labels)},1fr)">{heads}</div>'
    poster = data_uri(poster_png, "image/png")
    if mime.startswith("video/"):
        body = (f'<video class="clip" width="{width}" autoplay loop muted playsinline controls '
                f'poster="{poster}" aria-label="{escape(alt)}" src="{data_uri(video, mime)}"></video>')
    else:
        body = f'<img class="clip" width="{width}" alt="{escape(alt)}" src="{data_uri(video, mime)}">'
    return f'<div class="clipbox" style="width:{width}px">{grid}{body}</div>'


def _fmt(value: float, unit: str) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    if unit == "fraction":
        return f"{value:.2f}"
    return f"{value:.4g}"


def metrics_table(rows: dict, metrics: Sequence, styles: dict[str, str] | None = None,
                  truth_only: Sequence[str] = ("foot-skate",)) -> str:
    """``rows``: {motion name: {metric name: value}}; the best value of each column is marked.

    The ``reference`` row (the truth scored against itself) shows only ``truth_only`` metrics: the
    others are zero by construction.
    """
    styles = styles or {}
    head = "".join(f'<th title="{escape(m.description)}">{escape(m.name)}<br><small>{escape(m.unit)}</small></th>'
                   for m in metrics)
    best = {}
    for m in metrics:
        vals = {n: v.get(m.name, np.nan) for n, v in rows.items() if n != "reference"}
        finite = {n: v for n, v in vals.items() if v is not None and np.isfinite(v)}
        if len(finite) > 1:
            pick = min if m.lower_is_better else max
            target = pick(finite.values())
            best[m.name] = {n for n, v in finite.items() if np.isclose(v, target)}
    body = []
    for name, values in rows.items():
        cells = []
        for m in metrics:
            v = values.get(m.name, np.nan)
            if name == "reference" and m.name not in truth_only:
                v = np.nan
            cls = ' class="best"' if name in best.get(m.name, ()) else ""
            cells.append(f"<td{cls}>{_fmt(v, m.unit)}</td>")
        chip = f'<span class="chip" style="background:{styles[name]}"></span>' if name in styles else ""
        body.append(f"<tr><td>{chip}{escape(name)}</td>{''.join(cells)}</tr>")
    return f'<table class="metrics"><thead><tr><th>motion</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def definition_list(items: Sequence[tuple[str, object]]) -> str:
    out = []
    for key, value in items:
        if isinstance(value, (dict, list)):
            text = f"<pre>{escape(json.dumps(value, indent=1, sort_keys=True, default=str))}</pre>"
        else:
            text = escape(str(value))
        out.append(f"<dt>{escape(key)}</dt><dd>{text}</dd>")
    return f'<dl class="prov">{"".join(out)}</dl>'


def legend() -> str:
    return ('<p class="legend"><span><i class="chip" style="background:var(--context)"></i>context</span>'
            '<span><i class="chip" style="background:var(--key)"></i>keyframe</span>'
            '<span><i class="chip" style="background:var(--gap)"></i>gap (generated frames)</span></p>')


def page(title: str, header: str, sections: Sequence[str], footer: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<meta name=\"generator\" content=\"anymole-usd\"><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body><main>{header}{''.join(sections)}"
            f"<footer class=\"note\">{footer}</footer></main></body></html>\n")
