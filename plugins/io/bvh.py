"""BVH motion capture files: a strict, vectorised reader and a writer.

The HIERARCHY block is small and parsed token by token; the MOTION block
(thousands of lines) is parsed in one go with numpy: values with one
``bytes.split``, values-per-line with a byte-level count, so a frame or
channel count that disagrees with the file is reported with its line number
without a Python loop over frames.

Conventions (the ones Blender, MotionBuilder and the CMU/LaFAN tools use):
- rotation channels are intrinsic Euler angles in degrees, applied in the
  order listed (``Zrotation Xrotation Yrotation`` -> ``R = Rz Rx Ry``);
- position channels *replace* the OFFSET along their axis (the files in
  ../shared/data repeat the offset in them), others keep the OFFSET;
- End Sites carry no channels: they are kept on the clip (``end_sites``) to
  be written back, and only become joints when ``end_sites=True``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np

from anymole_usd import rotations as rot
from anymole_usd.errors import InputError
from anymole_usd.motion import Motion
from anymole_usd.skeleton import Skeleton

CHANNEL_NAMES = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
_AXIS = {"X": 0, "Y": 1, "Z": 2}


@dataclass
class BvhClip:
    """A parsed BVH file: the skeleton and motion plus the raw channel layout."""

    skeleton: Skeleton  # joints as paths "Hips/Spine", rest = OFFSET translations
    motion: Motion  # times are source frame indices, fps = 1 / frame_time
    names: list[str]  # original joint names, skeleton order (= file order)
    offsets: np.ndarray  # (J, 3) OFFSET values (scaled)
    channels: list[list[str]]  # per joint, channel names as listed
    values: np.ndarray  # (F, C) raw channel values of the selected frames (positions scaled)
    end_sites: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (parent joint, offset)
    frame_time: float = 1.0 / 30.0
    path: str = ""

    @property
    def channel_columns(self) -> list[np.ndarray]:
        """Column indices into ``values`` for each joint's channels."""
        starts = np.concatenate([[0], np.cumsum([len(c) for c in self.channels])])
        return [np.arange(starts[j], starts[j + 1]) for j in range(len(self.channels))]

    @property
    def rotation_orders(self) -> list[str]:
        """Per joint, the axes of its rotation channels in listed order, e.g. "ZXY"."""
        return [rotation_axes(c) for c in self.channels]


def rotation_axes(channels: list[str]) -> str:
    """Axes of the rotation channels in listed order, e.g. "ZXY" (the scipy intrinsic order)."""
    return "".join(c[0] for c in channels if c.endswith("rotation"))


def fps_from_frame_time(frame_time: float) -> float:
    """1 / frame_time, snapped to an integer rate when the file rounded it (0.0083333 -> 120)."""
    fps = 1.0 / frame_time
    nearest = round(fps)
    if nearest > 0 and abs(fps - nearest) <= 1e-4 * fps:
        return float(nearest)
    return fps


# --------------------------------------------------------------------------- reading


class _Tokens:
    """Whitespace tokens of the HIERARCHY block with their line numbers."""

    def __init__(self, lines: list[str], file: str):
        self.items: list[tuple[str, int]] = []
        for n, line in enumerate(lines, 1):
            self.items.extend((tok, n) for tok in line.split())
        self.pos = 0
        self.file = file
        self.last_line = len(lines)

    def error(self, message: str, line: int | None = None) -> InputError:
        line = line if line is not None else self.line
        return InputError(f"line {line}: {message}", file=self.file)

    @property
    def line(self) -> int:
        if self.pos < len(self.items):
            return self.items[self.pos][1]
        return self.last_line

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise self.error(f"file ends inside the HIERARCHY block (expected {what}; truncated?)")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def expect(self, word: str) -> int:
        tok, line = self.next(repr(word))
        if tok != word:
            raise self.error(f"expected {word!r}, found {tok!r}", line)
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            value = float(tok)
        except ValueError:
            raise self.error(f"{what}: {tok!r} is not a number", line) from None
        if not np.isfinite(value):
            raise self.error(f"{what}: {tok!r} is not finite", line)
        return value


@dataclass
class _Joint:
    name: str
    parent: int
    offset: np.ndarray
    channels: list[str]
    line: int


def _parse_joint(tokens: _Tokens, name: str, parent: int, line: int, joints: list[_Joint],
                 end_sites: list[tuple[int, np.ndarray]]) -> None:
    tokens.expect("{")
    index = len(joints)
    joint = _Joint(name, parent, None, [], line)  # type: ignore[arg-type]
    joints.append(joint)
    has_channels = False
    while True:
        tok, tline = tokens.next("'}'")
        if tok == "OFFSET":
            if joint.offset is not None:
                raise tokens.error(f"joint {name!r} has two OFFSET lines", tline)
            joint.offset = np.array([tokens.number(f"OFFSET of {name!r}") for _ in range(3)])
        elif tok == "CHANNELS":
            if has_channels:
                raise tokens.error(f"joint {name!r} has two CHANNELS lines", tline)
            has_channels = True
            count_tok, cline = tokens.next("a channel count")
            if not count_tok.isdigit():
                raise tokens.error(f"CHANNELS of {name!r}: expected a channel count, found {count_tok!r}", cline)
            count = int(count_tok)
            for _ in range(count):
                ch, chline = tokens.next(f"{count} channel names for {name!r}")
                if ch not in CHANNEL_NAMES:
                    if ch in ("JOINT", "End", "}", "OFFSET", "CHANNELS"):
                        raise tokens.error(
                            f"CHANNELS of {name!r} declares {count} channels but lists {len(joint.channels)}", chline)
                    raise tokens.error(f"unknown channel {ch!r} on joint {name!r} "
                                       f"(known: {', '.join(CHANNEL_NAMES)})", chline)
                if ch in joint.channels:
                    raise tokens.error(f"channel {ch!r} listed twice on joint {name!r}", chline)
                joint.channels.append(ch)
        elif tok == "JOINT":
            child, cline = tokens.next("a joint name")
            _check_offset(tokens, joint)
            _parse_joint(tokens, child, index, cline, joints, end_sites)
        elif tok == "End":
            tokens.expect("Site")
            _check_offset(tokens, joint)
            tokens.expect("{")
            tokens.expect("OFFSET")
            offset = np.array([tokens.number(f"End Site OFFSET of {name!r}") for _ in range(3)])
            tokens.expect("}")
            end_sites.append((index, offset))
        elif tok == "}":
            _check_offset(tokens, joint)
            return
        else:
            raise tokens.error(f"unexpected {tok!r} in joint {name!r}", tline)


def _check_offset(tokens: _Tokens, joint: _Joint) -> None:
    if joint.offset is None:
        raise tokens.error(f"joint {joint.name!r} has no OFFSET", joint.line)


def _identifier(name: str) -> str:
    """A valid USD path element (joint token component) for a BVH name."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not ident or ident[0].isdigit():
        ident = "_" + ident
    return ident


def joint_paths(names: list[str], parents: np.ndarray) -> list[str]:
    """UsdSkel joint paths ("Hips/Spine") with names made valid and unique among siblings."""
    paths: list[str] = []
    taken: set[str] = set()
    for name, parent in zip(names, parents):
        prefix = paths[parent] + "/" if parent >= 0 else ""
        base = prefix + _identifier(name)
        path, k = base, 2
        while path in taken:
            path, k = f"{base}_{k}", k + 1
        taken.add(path)
        paths.append(path)
    return paths


def _parse_header(lines: list[bytes], start: int, file: str) -> tuple[int, int, float, int]:
    """Parse 'Frames: N' and 'Frame Time: T' after MOTION.

    Returns (frames, 1-based line of 'Frames:', frame_time, 0-based index of the first data line).
    """
    found: list[tuple[str, int]] = []
    i = start
    while i < len(lines) and len(found) < 2:
        text = lines[i].decode("latin-1").strip()
        i += 1
        if text:
            found.append((text, i))
    if len(found) < 2:
        raise InputError(f"line {len(lines)}: file ends before 'Frames:' and 'Frame Time:' (truncated?)", file=file)
    (frames_text, frames_line), (time_text, time_line) = found
    m = re.fullmatch(r"Frames:\s*(\S+)", frames_text)
    if not m:
        raise InputError(f"line {frames_line}: expected 'Frames: N' after MOTION, found {frames_text[:40]!r}",
                         file=file)
    try:
        frames = int(m.group(1))
    except ValueError:
        raise InputError(f"line {frames_line}: frame count {m.group(1)!r} is not an integer", file=file) from None
    if frames <= 0:
        raise InputError(f"line {frames_line}: frame count must be positive, got {frames}", file=file)
    m = re.fullmatch(r"Frame\s+Time:\s*(\S+)", time_text)
    if not m:
        raise InputError(f"line {time_line}: expected 'Frame Time: T', found {time_text[:40]!r}", file=file)
    try:
        frame_time = float(m.group(1))
    except ValueError:
        frame_time = float("nan")
    if not np.isfinite(frame_time) or frame_time <= 0:
        raise InputError(f"line {time_line}: frame time must be a positive number, got {m.group(1)!r}", file=file)
    return frames, frames_line, frame_time, time_line


def _parse_motion_block(block: bytes, first_line: int, n_frames: int, n_channels: int,
                        file: str, header_line: int) -> np.ndarray:
    """(n_frames, n_channels) float64 from the MOTION data bytes, strictly checked."""
    a = np.frombuffer(block, dtype=np.uint8)
    ws = (a == 32) | (a == 9) | (a == 13) | (a == 10) | (a == 11) | (a == 12)
    newline = a == 10
    token_start = ~ws
    token_start[1:] &= ws[:-1]
    line_of = np.cumsum(newline) - newline  # a newline belongs to the line it ends
    n_lines = int(newline.sum()) + 1
    counts = np.bincount(line_of[token_start], minlength=n_lines)
    data_lines = np.flatnonzero(counts > 0)
    if len(data_lines) < n_frames:
        last = first_line + (int(data_lines[-1]) if len(data_lines) else 0)
        raise InputError(
            f"line {last}: file ends after {len(data_lines)} motion lines but line {header_line} "
            f"declares 'Frames: {n_frames}' (truncated?)", file=file)
    if len(data_lines) > n_frames:
        extra = first_line + int(data_lines[n_frames])
        raise InputError(
            f"line {extra}: {len(data_lines)} motion lines but line {header_line} declares "
            f"'Frames: {n_frames}'", file=file)
    wrong = np.flatnonzero(counts[data_lines] != n_channels)
    if len(wrong):
        k = int(data_lines[wrong[0]])
        raise InputError(
            f"line {first_line + k}: {int(counts[k])} values but the hierarchy declares {n_channels} channels",
            file=file)
    tokens = block.split()
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        values = None
    if values is None or not np.isfinite(values).all():
        bad = _first_bad_token(tokens)
        line = first_line + int(data_lines[bad // n_channels])
        raise InputError(f"line {line}: {tokens[bad].decode('latin-1')!r} is not a finite number", file=file)
    return values.reshape(n_frames, n_channels)


def _first_bad_token(tokens: list[bytes]) -> int:
    # Error path only: a Python loop is fine here.
    for i, tok in enumerate(tokens):
        try:
            if np.isfinite(float(tok)):
                continue
        except ValueError:
            pass
        return i
    return 0


def read_bvh(path: str | os.PathLike, frames: slice | None = None, *, scale: float = 1.0,
             end_sites: bool = False) -> BvhClip:
    """Parse a BVH file strictly; raise InputError naming the file and line on bad input.

    ``frames`` selects source frames (a slice, applied after the whole file is
    checked); the motion's times are the selected source frame indices.
    ``scale`` multiplies offsets and position channels. With ``end_sites`` the
    End Sites become joints (named ``<parent>_End``) with a constant offset.
    """
    file = os.fspath(path)
    if not os.path.isfile(file):
        raise InputError("no such file", file=file)
    with open(file, "rb") as fh:
        raw = fh.read()
    lines = raw.split(b"\n")
    motion_idx = next((i for i, ln in enumerate(lines) if ln.strip() == b"MOTION"), None)
    hier_lines = [ln.decode("latin-1") for ln in (lines if motion_idx is None else lines[:motion_idx])]
    tokens = _Tokens(hier_lines, file)
    if tokens.peek() != "HIERARCHY":
        raise tokens.error("not a BVH file (expected 'HIERARCHY')", 1 if tokens.peek() is None else tokens.line)
    tokens.next("HIERARCHY")
    joints: list[_Joint] = []
    sites: list[tuple[int, np.ndarray]] = []
    while tokens.peek() is not None:
        tok, line = tokens.next("ROOT")
        if tok != "ROOT":
            raise tokens.error(f"expected 'ROOT' or 'MOTION', found {tok!r}", line)
        name, nline = tokens.next("a root name")
        _parse_joint(tokens, name, -1, nline, joints, sites)
    if not joints:
        raise tokens.error("no ROOT joint in HIERARCHY")
    if motion_idx is None:
        raise InputError(f"line {len(lines)}: no MOTION block (truncated?)", file=file)

    n_frames, frames_line, frame_time, data_idx = _parse_header(lines, motion_idx + 1, file)
    n_channels = sum(len(j.channels) for j in joints)
    data_offset = sum(len(ln) + 1 for ln in lines[:data_idx])
    values = _parse_motion_block(raw[data_offset:], data_idx + 1, n_frames, n_channels, file, frames_line)
    index = np.arange(n_frames)
    if frames is not None:
        index = index[frames]
        if len(index) == 0:
            raise InputError(f"frame selection {frames.start}:{frames.stop} is empty "
                             f"(the file has {n_frames} frames)", file=file)
        values = values[index]
    channels = [list(j.channels) for j in joints]
    is_pos = np.array([c.endswith("position") for jc in channels for c in jc], dtype=bool)
    values = values.copy()
    values[:, is_pos] *= scale
    offsets = np.stack([j.offset for j in joints]) * scale
    names = [j.name for j in joints]
    parents = np.array([j.parent for j in joints], dtype=np.int64)
    sites = [(p, o * scale) for p, o in sites]
    clip = _build_clip(file, names, parents, offsets, channels, values, index, frame_time, sites)
    return _with_end_sites(clip) if end_sites else clip


def _build_clip(file, names, parents, offsets, channels, values, index, frame_time, sites) -> BvhClip:
    n_j, n_f = len(names), len(values)
    translations = np.broadcast_to(offsets, (n_f, n_j, 3)).copy()
    rotations = np.zeros((n_f, n_j, 4))
    rotations[..., 3] = 1.0
    pos_j, pos_axis, pos_col = [], [], []
    by_order: dict[str, tuple[list[int], list[list[int]]]] = {}
    col = 0
    for j, chans in enumerate(channels):
        rot_cols = []
        for c in chans:
            if c.endswith("position"):
                pos_j.append(j)
                pos_axis.append(_AXIS[c[0]])
                pos_col.append(col)
            else:
                rot_cols.append(col)
            col += 1
        order = rotation_axes(chans)
        if order:
            group = by_order.setdefault(order, ([], []))
            group[0].append(j)
            group[1].append(rot_cols)
    if pos_j:
        translations[:, pos_j, pos_axis] = values[:, pos_col]
    # One scipy call per distinct rotation order, covering every frame and joint with that order.
    for order, (js, cols) in by_order.items():
        angles = values[:, np.asarray(cols)]  # (F, n, len(order))
        rotations[:, js] = rot.euler_to_quat(angles, order)
    rest = np.tile(np.eye(4), (n_j, 1, 1))
    rest[:, 3, :3] = offsets
    from anymole_usd.kinematics import compose_local_matrices

    bind = compose_local_matrices(rest[None], parents)[0]
    paths = joint_paths(names, parents)
    skeleton = Skeleton(joints=paths, parents=parents, rest_transforms=rest, bind_transforms=bind,
                        name=os.path.splitext(os.path.basename(file))[0], joint_names=list(names),
                        meta={"source": file, "format": "bvh"})
    fps = fps_from_frame_time(frame_time)
    motion = Motion(times=index.astype(np.float64), rotations=rot.make_continuous(rotations, axis=0),
                    translations=translations, scales=np.ones((n_f, n_j, 3)), fps=fps, joints=list(paths))
    return BvhClip(skeleton=skeleton, motion=motion, names=list(names), offsets=offsets, channels=channels,
                   values=values, end_sites=list(sites), frame_time=frame_time, path=file)


def _with_end_sites(clip: BvhClip) -> BvhClip:
    """Turn End Sites into channel-less joints, keeping parent-first order (appended at the end)."""
    if not clip.end_sites:
        return clip
    names = clip.names + [f"{clip.names[p]}_End" for p, _ in clip.end_sites]
    parents = np.concatenate([clip.skeleton.parents, [p for p, _ in clip.end_sites]])
    offsets = np.concatenate([clip.offsets, np.stack([o for _, o in clip.end_sites])])
    channels = clip.channels + [[] for _ in clip.end_sites]
    return _build_clip(clip.path, names, parents, offsets, channels, clip.values,
                       clip.motion.times.astype(np.int64), clip.frame_time, [])


# --------------------------------------------------------------------------- writing


def _dfs_order(parents: np.ndarray) -> list[int]:
    children: list[list[int]] = [[] for _ in parents]
    roots = []
    for j, p in enumerate(parents):
        (children[p] if p >= 0 else roots).append(j)
    order: list[int] = []
    stack = list(reversed(roots))
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children[j]))
    return order


def default_channels(skeleton: Skeleton, motion: Motion, rotation_order: str = "ZXY",
                     tol: float = 1e-6) -> list[list[str]]:
    """Position + rotation channels on roots and on joints whose translation is animated; rotations elsewhere."""
    animated = _translation_animated(skeleton, motion, tol)
    out = []
    for j, p in enumerate(skeleton.parents):
        chans = [f"{a}rotation" for a in rotation_order]
        if p < 0 or animated[j]:
            chans = ["Xposition", "Yposition", "Zposition"] + chans
        out.append(chans)
    return out


def _translation_animated(skeleton: Skeleton, motion: Motion, tol: float) -> np.ndarray:
    offsets = skeleton.rest_transforms[:, 3, :3]
    dev = np.abs(motion.translations - offsets[None]).max(axis=(0, 2)) if motion.num_frames else 0
    return dev > tol * skeleton.height()


def write_bvh(path: str | os.PathLike, skeleton: Skeleton, motion: Motion, *,
              channels: list[list[str]] | None = None,
              end_sites: list[tuple[int, np.ndarray]] | None = None,
              rotation_order: str = "ZXY", frame_time: float | None = None, precision: int = 6) -> None:
    """Write ``motion`` (uniformly spaced frames) on ``skeleton`` as BVH, atomically.

    OFFSETs are the rest translations; the rest rotation and all scales are
    dropped (BVH has neither), the full local rotation is written per frame.
    ``channels`` (per skeleton joint, e.g. from :class:`BvhClip`) fixes the
    layout; joints whose translation is animated gain position channels and
    joints with fewer than three rotation channels get ``rotation_order``.
    Leaf joints without an End Site get one a quarter of their own offset
    long, so tools that build bones from End Sites keep a non-zero bone.
    """
    from anymole_usd.authoring import atomic_output

    n_j = skeleton.num_joints
    if motion.num_joints != n_j:
        raise ValueError(f"motion has {motion.num_joints} joints, skeleton {n_j}")
    if motion.num_frames == 0:
        raise InputError("nothing to write: the motion has no frames", file=os.fspath(path))
    rotation_order = rotation_order.upper()
    if sorted(rotation_order) != ["X", "Y", "Z"]:
        raise ValueError(f"rotation order must be a permutation of XYZ, got {rotation_order!r}")
    layout = [list(c) for c in channels] if channels is not None else default_channels(skeleton, motion, rotation_order)
    if len(layout) != n_j:
        raise ValueError(f"{len(layout)} channel lists for {n_j} joints")
    animated = _translation_animated(skeleton, motion, 1e-6)
    for j, chans in enumerate(layout):
        rot_chans = [c for c in chans if c.endswith("rotation")]
        pos_chans = [c for c in chans if c.endswith("position")]
        if len(rot_chans) < 3:
            rot_chans = [f"{a}rotation" for a in rotation_order]
        if (animated[j] or skeleton.parents[j] < 0) and len(pos_chans) < 3:
            pos_chans = ["Xposition", "Yposition", "Zposition"]
        # Keep the original relative placement (positions first is the norm).
        rot_first = bool(chans) and chans[0].endswith("rotation") and any(c.endswith("position") for c in chans)
        layout[j] = rot_chans + pos_chans if rot_first else pos_chans + rot_chans

    offsets = skeleton.rest_transforms[:, 3, :3]
    names = [re.sub(r"\s+", "_", n) for n in skeleton.short_names]
    columns = []
    m = motion.normalized()
    for j in range(n_j):
        order = rotation_axes(layout[j])
        euler = np.unwrap(rot.quat_to_euler(m.rotations[:, j], order), period=360.0, axis=0)
        cols = {f"{a}rotation": euler[:, k] for k, a in enumerate(order)}
        cols.update({f"{a}position": m.translations[:, j, i] for i, a in enumerate("XYZ")})
        columns.append(np.stack([cols[c] for c in layout[j]], axis=1) if layout[j] else np.zeros((m.num_frames, 0)))

    sites = list(end_sites) if end_sites is not None else []
    has_child = np.zeros(n_j, dtype=bool)
    has_child[skeleton.parents[skeleton.parents >= 0]] = True
    has_child[[p for p, _ in sites]] = True
    for j in np.flatnonzero(~has_child):
        sites.append((int(j), offsets[j] * 0.25))
    site_by_joint: dict[int, list[np.ndarray]] = {}
    for p, o in sites:
        site_by_joint.setdefault(int(p), []).append(np.asarray(o, dtype=np.float64))

    order = _dfs_order(skeleton.parents)
    fmt = f"%.{precision}f"
    text = ["HIERARCHY"]
    depth = skeleton.depths()
    # Close braces as the DFS walk climbs back up: track the open joints on a stack.
    open_stack: list[int] = []
    for j in order:
        while open_stack and open_stack[-1] != skeleton.parents[j]:
            text.extend(_close(open_stack.pop(), depth, site_by_joint, fmt))
        ind = "\t" * depth[j]
        text.append(f"{ind}{'ROOT' if skeleton.parents[j] < 0 else 'JOINT'} {names[j]}")
        text.append(f"{ind}{{")
        text.append(f"{ind}\tOFFSET {' '.join(fmt % v for v in offsets[j])}")
        text.append(f"{ind}\tCHANNELS {len(layout[j])}" + "".join(" " + c for c in layout[j]))
        open_stack.append(j)
    while open_stack:
        text.extend(_close(open_stack.pop(), depth, site_by_joint, fmt))
    ft = frame_time if frame_time is not None else 1.0 / motion.fps
    text += ["MOTION", f"Frames: {motion.num_frames}", f"Frame Time: {ft:.8g}"]
    data = np.concatenate([columns[j] for j in order], axis=1)
    data = np.where(np.abs(data) < 0.5 * 10.0 ** -precision, 0.0, data)  # no "-0.000000"
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="\n") as fh:
            fh.write("\n".join(text) + "\n")
            np.savetxt(fh, data, fmt=fmt, delimiter=" ")


def _close(j: int, depth: np.ndarray, sites: dict[int, list[np.ndarray]], fmt: str) -> list[str]:
    ind = "\t" * depth[j]
    out = []
    for o in sites.get(j, []):
        out += [f"{ind}\tEnd Site", f"{ind}\t{{", f"{ind}\t\tOFFSET {' '.join(fmt % v for v in o)}", f"{ind}\t}}"]
    out.append(f"{ind}}}")
    return out
