"""``--map`` files: a JSON object ``{source_joint: target_joint}`` that overrides the automatic mapping.

Joints are named by their full UsdSkel path (``Hips/Spine``) or by their last
path element when that is unique; ``null`` as a target removes a source
joint from the mapping. The object may also be the ``joints`` member of what
``--show-map --json`` prints, so a printed mapping can be edited and fed back.

A map is refused (exit 2, naming the entry) when it is not JSON, names a
joint neither skeleton has, sends two source joints to one target joint, or
would make a cycle in the joined hierarchies: ``a -> A`` and ``b -> B`` with
``a`` above ``b`` but ``A`` below ``B`` (a parent cannot follow its own child).
"""
from __future__ import annotations

import difflib
import json
import os

import numpy as np

from anymole_usd.errors import InputError
from anymole_usd.skeleton import Skeleton

from .topology import ancestor_matrix


def _resolver(skeleton: Skeleton):
    full = {j: i for i, j in enumerate(skeleton.joints)}
    short: dict[str, list[int]] = {}
    for i, name in enumerate(skeleton.short_names):
        short.setdefault(name, []).append(i)
    for i, j in enumerate(skeleton.joints):
        last = j.rsplit("/", 1)[-1]
        if last != skeleton.short_names[i]:
            short.setdefault(last, []).append(i)

    def resolve(name: str) -> tuple[int | None, str]:
        if name in full:
            return full[name], ""
        hits = sorted(set(short.get(name, [])))
        if len(hits) == 1:
            return hits[0], ""
        if len(hits) > 1:
            return None, f"is ambiguous ({', '.join(skeleton.joints[h] for h in hits[:3])}): use the full path"
        close = difflib.get_close_matches(name, list(short) + list(full), n=1)
        return None, "does not exist" + (f" (did you mean {close[0]}?)" if close else "")

    return resolve


def load_map(path: str, source: Skeleton, target: Skeleton) -> dict[int, int | None]:
    """Source joint index -> target joint index (None: leave that source joint out)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise InputError("no such map file", file=path) from None
    except UnicodeDecodeError:
        raise InputError("map file is not text (expected JSON)", file=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"map file is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                         file=path) from None
    if isinstance(data, dict) and isinstance(data.get("joints"), dict):
        data = data["joints"]
    if not isinstance(data, dict):
        raise InputError("map file must hold a JSON object {\"source joint\": \"target joint\", ...}", file=path)
    find_s, find_t = _resolver(source), _resolver(target)
    out: dict[int, int | None] = {}
    owner: dict[int, str] = {}
    for key, value in data.items():
        entry = f"map entry {json.dumps(key)}: {json.dumps(value)}"
        s, why = find_s(str(key))
        if s is None:
            raise InputError(f"{entry}: source joint {key!r} {why}", file=path)
        if value is None:
            out[s] = None
            continue
        if not isinstance(value, str):
            raise InputError(f"{entry}: the target must be a joint name or null", file=path)
        t, why = find_t(value)
        if t is None:
            raise InputError(f"{entry}: target joint {value!r} {why}", file=path)
        if t in owner:
            raise InputError(f"{entry}: target joint {value!r} is already the target of {owner[t]}", file=path)
        owner[t] = json.dumps(key)
        out[s] = t
    check_order({s: t for s, t in out.items() if t is not None}, source, target, path)
    return out


def check_order(pairs: dict[int, int], source: Skeleton, target: Skeleton, path: str | None = None) -> None:
    """Raise when two pairs invert the hierarchy (which would make a cycle of parents)."""
    anc_s, anc_t = ancestor_matrix(source.parents), ancestor_matrix(target.parents)
    items = sorted(pairs.items())
    if not items:
        return
    s_idx = np.array([s for s, _ in items])
    t_idx = np.array([t for _, t in items])
    above_s = anc_s[np.ix_(s_idx, s_idx)] & ~np.eye(len(items), dtype=bool)
    above_t = anc_t[np.ix_(t_idx, t_idx)] & ~np.eye(len(items), dtype=bool)
    bad = np.argwhere(above_s & above_t.T)  # a above b in the source, B above A in the target
    if len(bad):
        a, b = bad[0]
        sa, sb = source.joints[s_idx[a]], source.joints[s_idx[b]]
        ta, tb = target.joints[t_idx[a]], target.joints[t_idx[b]]
        raise InputError(
            f"map entries {json.dumps(sa.rsplit('/', 1)[-1])} -> {json.dumps(ta.rsplit('/', 1)[-1])} and "
            f"{json.dumps(sb.rsplit('/', 1)[-1])} -> {json.dumps(tb.rsplit('/', 1)[-1])} make a cycle: "
            f"{sa.rsplit('/', 1)[-1]} is above {sb.rsplit('/', 1)[-1]} in the source but "
            f"{ta.rsplit('/', 1)[-1]} is below {tb.rsplit('/', 1)[-1]} in the target", file=path)
