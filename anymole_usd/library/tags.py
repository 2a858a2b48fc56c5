"""Motion tags: a tags.csv for library clips, customData tags, and tag spans for ``compose``.

tags.csv has the columns ``file,start,end,tag`` (a header row with those names
is optional), one row per tag:

- ``file``: a file name (``walk.bvh``), a name without extension (``walk``),
  or a path (relative to the csv's folder or the working folder, absolute, or
  the end of a source's path: ``mocap/walk.bvh``); ``file#clip`` names
  one animation of a file with several (``horse-animations.glb#Walk``, or a
  USD SkelAnimation's name or prim path);
- ``start``, ``end``: seconds from the clip's first sample; empty = from the
  start / to the end (both empty: the whole clip);
- ``tag``: any text without ``,`` or ``:``.

A row that is malformed or names no clip of the library is an error naming
its line. SkelAnimation customData ``tags`` (``["walk"]`` or ``"walk, run"``,
also ``anymole:tags``) tags the whole clip.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

from anymole_usd.errors import InputError

COLUMNS = ("file", "start", "end", "tag")


@dataclass
class TagRow:
    line: int
    file: str
    clip: str | None  # the part after '#'
    start: float | None
    end: float | None
    tag: str


def valid_tag(tag: str) -> bool:
    return bool(tag) and "," not in tag and ":" not in tag


def read_tags_csv(path: str) -> list[TagRow]:
    """Parse tags.csv; a bad row raises InputError naming the file and line."""
    if not os.path.isfile(path):
        raise InputError("no such tags file", file=path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return _parse(csv.reader(fh), path)
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text CSV file (byte {exc.start} is not UTF-8)", file=path) from None
    except csv.Error as exc:
        raise InputError(f"not a readable CSV file ({exc})", file=path) from None


def _parse(reader, path: str) -> list[TagRow]:
    rows: list[TagRow] = []
    for record in reader:
        line = reader.line_num
        if not record or all(not c.strip() for c in record) or record[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in record]
        if [c.lower() for c in cells] == list(COLUMNS):
            continue
        if len(cells) != 4:
            raise InputError(f"line {line}: expected 4 columns file,start,end,tag, got {len(cells)}", file=path)
        name, start, end, tag = cells
        if not name:
            raise InputError(f"line {line}: empty file column", file=path)
        if not valid_tag(tag):
            raise InputError(f"line {line}: bad tag {tag!r} (empty, or contains ',' or ':')", file=path)
        a, b = _seconds(start, path, line, "start"), _seconds(end, path, line, "end")
        if a is not None and b is not None and b <= a:
            raise InputError(f"line {line}: end {b:g} s is not after start {a:g} s", file=path)
        file, _, clip = name.partition("#")
        rows.append(TagRow(line, file.strip(), clip.strip() or None, a, b, tag))
    return rows


def _seconds(text: str, path: str, line: int, what: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"line {line}: {what} {text!r} is not a number of seconds", file=path) from None
    if not np.isfinite(value) or value < 0:
        raise InputError(f"line {line}: {what} {text!r} must be a non-negative number of seconds", file=path)
    return value


def file_matches(row_file: str, csv_dir: str, source: str) -> bool:
    """Whether a tags.csv ``file`` cell names the source file ``source`` (an absolute path)."""
    base = os.path.basename(source)
    if row_file in (base, os.path.splitext(base)[0]):
        return True
    for candidate in (os.path.join(csv_dir, row_file), row_file):
        if os.path.abspath(candidate) == os.path.abspath(source):
            return True
    tail = os.path.normpath(row_file).replace(os.sep, "/").lstrip("./")
    return "/" in tail and os.path.abspath(source).replace(os.sep, "/").endswith("/" + tail)


def clip_matches(row_clip: str | None, label: str) -> bool:
    """``file#clip``: the clip label, or its last prim-path component, equals the cell."""
    if row_clip is None:
        return True
    return row_clip in (label, label.rsplit("/", 1)[-1])


def apply_rows(rows: list[TagRow], csv_path: str, clips: list[dict], source_of) -> None:
    """Replace every clip's csv tags by the rows that name it; a row naming no clip is an error.

    ``clips`` are manifest clip records (``label``, ``file``, ``duration``, ``tags``);
    ``source_of(clip)`` gives the clip's source file as an absolute path.
    """
    csv_dir = os.path.dirname(os.path.abspath(csv_path))
    for c in clips:
        c["tags"] = [t for t in c.get("tags", []) if t.get("source") != "csv"]
    for row in rows:
        hits = [c for c in clips
                if file_matches(row.file, csv_dir, source_of(c)) and clip_matches(row.clip, c["label"])]
        if not hits:
            what = row.file + (f"#{row.clip}" if row.clip else "")
            raise InputError(f"line {row.line}: {what!r} names no clip of the library", file=csv_path)
        for c in hits:
            if row.start is not None and row.start >= c["duration"] + 1e-6:
                raise InputError(f"line {row.line}: start {row.start:g} s is after the end of {c['label']} "
                                 f"({c['duration']:g} s)", file=csv_path)
            c["tags"].append({"tag": row.tag, "start": row.start, "end": row.end, "source": "csv"})


def tag_names(clips: list[dict]) -> list[str]:
    return sorted({t["tag"] for c in clips for t in c.get("tags", [])})


def node_mask(clip_tags: list[dict], tag: str, times: np.ndarray) -> np.ndarray:
    """(n,) True where node times (s from the clip's start) lie in a span of ``tag``."""
    out = np.zeros(len(times), dtype=bool)
    for t in clip_tags:
        if t["tag"] != tag:
            continue
        a = -np.inf if t.get("start") is None else t["start"]
        b = np.inf if t.get("end") is None else t["end"]
        out |= (times >= a - 1e-6) & (times <= b + 1e-6)
    return out


@dataclass
class TagSpan:
    tag: str
    start: float  # seconds of the output
    end: float


def parse_spans(text: str | None, duration: float) -> list[TagSpan]:
    """``"walk:0-6,run:6-12"`` (``walk`` alone: the whole duration; ``run:6-``: to the end)."""
    if not text:
        return []
    spans = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        tag, sep, rng = item.partition(":")
        tag = tag.strip()
        if not valid_tag(tag):
            raise InputError(f"--tags: bad tag in {item!r}")
        if not sep:
            spans.append(TagSpan(tag, 0.0, duration))
            continue
        a, dash, b = rng.partition("-")
        try:
            start = float(a) if a.strip() else 0.0
            end = float(b) if b.strip() else duration
        except ValueError:
            raise InputError(f"--tags: expected TAG:START-END in seconds, got {item!r}") from None
        if not dash or end <= start or start < 0:
            raise InputError(f"--tags: expected TAG:START-END with END > START >= 0, got {item!r}")
        if start >= duration:
            raise InputError(f"--tags: {item!r} starts after the end of the output ({duration:g} s)")
        spans.append(TagSpan(tag, start, min(end, duration)))
    return spans
