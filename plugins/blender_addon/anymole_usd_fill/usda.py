"""A UsdSkel shot written as .usda text, and the in-between samples read back from the result layer.

Blender's Python has no ``pxr``, and the add-on must not depend on the tool's
environment, so both directions use USD's text format directly. Only what the
round trip needs is written (a SkelRoot, a Skeleton with rest and bind
transforms, a SkelAnimation sampled at the keyed frames); reading looks for
the ``joints`` and the three channel ``timeSamples`` of one SkelAnimation prim
in a layer that ``anymole-usd inbetween`` wrote (``usdcat``-style text).
"""
import re

import numpy as np

from .transforms import continuous, to_trs

_TOKEN = re.compile(r"[^A-Za-z0-9_]")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan")


def joint_tokens(names, parents):
    """UsdSkel joint paths ("Hips/Spine") for bones named ``names`` with parent indices ``parents``.

    Names are made valid path elements (anything but letters, digits and _
    becomes _, a leading digit gets a _ before it) and unique among siblings.
    """
    tokens, taken = [], set()
    for name, parent in zip(names, parents):
        element = _TOKEN.sub("_", name) or "_"
        if element[0].isdigit():
            element = "_" + element
        base = tokens[parent] + "/" if parent >= 0 else ""
        candidate, n = base + element, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}{element}_{n}"
        taken.add(candidate)
        tokens.append(candidate)
    return tokens


def _f(x):
    return f"{float(x):.9g}"


def _matrix(m):
    """Blender (column-vector) 4x4 -> USD text (row-vector: the transpose)."""
    rows = np.asarray(m, dtype=np.float64).T
    return "(" + ", ".join("(" + ", ".join(_f(v) for v in row) + ")" for row in rows) + ")"


def _tuples(a):
    return "[" + ", ".join("(" + ", ".join(_f(v) for v in row) + ")" for row in a) + "]"


def write_shot(path, tokens, rest_local, bind, world, times, local, fps, meters_per_unit=1.0):
    """Write a shot: Skeleton ``tokens`` with ``rest_local`` (J, 4, 4) joint-local and ``bind`` (J, 4, 4)
    armature-space rest matrices, placed by ``world`` (4, 4); ``local`` (F, J, 4, 4) joint-local pose matrices
    at time codes ``times`` (F,). Blender matrices (column vectors); Z is up."""
    t, q, s = to_trs(np.asarray(local, dtype=np.float64))
    q = continuous(q, axis=0)
    times = [float(x) for x in times]
    joints = "[" + ", ".join(f'"{j}"' for j in tokens) + "]"

    def samples(kind, arrays):
        body = "".join(f"            {_f(time)}: {_tuples(a)},\n" for time, a in zip(times, arrays))
        return f"        {kind}.timeSamples = {{\n{body}        }}\n"

    text = (
        "#usda 1.0\n(\n"
        '    defaultPrim = "Rig"\n'
        f"    endTimeCode = {_f(times[-1])}\n"
        f"    framesPerSecond = {_f(fps)}\n"
        f"    metersPerUnit = {_f(meters_per_unit)}\n"
        f"    startTimeCode = {_f(times[0])}\n"
        f"    timeCodesPerSecond = {_f(fps)}\n"
        '    upAxis = "Z"\n)\n\n'
        'def SkelRoot "Rig"\n{\n'
        f"    matrix4d xformOp:transform = {_matrix(world)}\n"
        '    uniform token[] xformOpOrder = ["xformOp:transform"]\n\n'
        '    def Skeleton "Skeleton" (\n        prepend apiSchemas = ["SkelBindingAPI"]\n    )\n    {\n'
        f"        uniform token[] joints = {joints}\n"
        f"        uniform matrix4d[] bindTransforms = [{', '.join(_matrix(m) for m in bind)}]\n"
        f"        uniform matrix4d[] restTransforms = [{', '.join(_matrix(m) for m in rest_local)}]\n"
        "        rel skel:animationSource = </Rig/Anim>\n    }\n\n"
        '    def SkelAnimation "Anim"\n    {\n'
        f"        uniform token[] joints = {joints}\n"
        + samples("float3[] translations", t)
        + samples("quatf[] rotations", q)
        + samples("half3[] scales", s)
        + "    }\n}\n"
    )
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _block(text, start, open_char, close_char):
    """The text between the bracket at ``start`` and its match (strings skipped)."""
    depth, i, quote = 0, start, None
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == open_char:
            depth += 1
        elif c == close_char:
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
        i += 1
    raise ValueError("unbalanced brackets in the result layer")


def _prim_body(text, name):
    """The body of the prim ``name`` (def or over, any type) in a .usda text."""
    match = re.search(r'(?:def|over)\s+(?:\w+\s+)?"' + re.escape(name) + r'"', text)
    if match is None:
        raise ValueError(f"no prim named {name!r} in the result layer")
    return _block(text, text.index("{", match.end()), "{", "}")


def _samples(body, channel, width):
    match = re.search(r"\w+\[\]\s+" + channel + r"\.timeSamples\s*=\s*\{", body)
    if match is None:
        return None, None
    block = _block(body, match.end() - 1, "{", "}")
    times, values = [], []
    for entry in re.finditer(r"([-+]?[\d.eE+-]+)\s*:\s*\[([^\]]*)\]", block):
        times.append(float(entry.group(1)))
        values.append(np.array([float(v) for v in _NUMBER.findall(entry.group(2))]).reshape(-1, width))
    order = np.argsort(times)
    return np.asarray(times)[order], np.stack([values[i] for i in order])


def read_animation(path, prim_name):
    """(joints or None, times (T,), translations (T, J, 3), rotations w, x, y, z (T, J, 4), scales (T, J, 3))
    of SkelAnimation ``prim_name`` in the .usda layer at ``path``."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if not text.startswith("#usda"):
        raise ValueError(f"{path} is not a text (.usda) layer")
    body = _prim_body(text, prim_name)
    joints = None
    match = re.search(r"token\[\]\s+joints\s*=\s*\[", body)
    if match is not None:
        joints = re.findall(r'"([^"]*)"', _block(body, match.end() - 1, "[", "]"))
    times, t = _samples(body, "translations", 3)
    rtimes, q = _samples(body, "rotations", 4)
    stimes, s = _samples(body, "scales", 3)
    if times is None or rtimes is None:
        raise ValueError(f"{prim_name} in {path} has no translation or rotation samples")
    if s is None:
        s, stimes = np.ones_like(t), times
    if not (np.array_equal(times, rtimes) and np.array_equal(times, stimes)):
        raise ValueError(f"{prim_name} in {path}: the channels are sampled at different times")
    return joints, times, t, q, s
