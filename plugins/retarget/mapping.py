"""Joint correspondence between two skeletons, chain by chain, with a confidence per chain.

1. End effectors are matched (Hungarian assignment) on where they sit in the
   body frame (forward, up, left about the hub, in character sizes), their
   kind (leg, arm, head, tail, wing), their side and what their names say.
   A matched end that is only an end marker (``HeadTop_End``) or one limb
   part further out than its partner (a toe against a foot) steps up to the
   joint that corresponds.
2. Anchors: the matched effectors, and for every two of them the pair of
   their lowest common ancestors (the two feet give the pelvis on both sides,
   a hand and the head the chest), plus the roots. Anchors are accepted
   strongest first and only when they keep the hierarchy's order, so the
   anchors of both skeletons form the same tree.
3. The joints between two consecutive anchors are aligned by dynamic
   programming on their position along the chain (fraction of its length,
   of the joint and of the end of the bone it turns) and their names'
   roles; joints may stay unmatched (three spine joints against one).
   Below matched ends, fingers and toe tips are matched by finger names
   and direction.
4. Each chain (anchor to anchor) gets a confidence in [0, 1]: agreement of
   names where both sides have them, and of rest geometry (chain direction,
   positions along it) always; a chain matched by topology alone is capped
   at 0.85. ``--map`` entries set theirs to 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .naming import limb_rank, role_agreement
from .topology import Body

MAX_EFFECTOR_COST = 1.6
TOPOLOGY_CAP = 0.85  # highest confidence of a chain no name confirms


@dataclass
class Chain:
    """One matched chain: from its start anchor (excluded) to its end anchor, plus what hangs below."""

    name: str
    source_start: int  # anchor joints (-1: the chain starts at the root)
    target_start: int
    source_end: int
    target_end: int
    pairs: list[tuple[int, int]] = field(default_factory=list)  # (source, target), end anchor included
    confidence: float = 0.0
    method: str = "topology"  # "names", "topology" or "user"

    def to_dict(self, source: list[str], target: list[str]) -> dict:
        return {"chain": self.name, "confidence": round(float(self.confidence), 3), "method": self.method,
                "joints": {source[s]: target[t] for s, t in self.pairs}}


@dataclass
class Mapping:
    """Source joint -> target joint, organised in chains."""

    source_joints: list[str]
    target_joints: list[str]
    pairs: dict[int, int]  # source index -> target index
    chains: list[Chain]
    notes: list[str] = field(default_factory=list)

    def target_of(self) -> np.ndarray:
        """(J_target,) source index for each target joint, -1 where unmatched."""
        out = np.full(len(self.target_joints), -1, dtype=np.int64)
        for s, t in self.pairs.items():
            out[t] = s
        return out

    def chain_of_target(self) -> dict[int, Chain]:
        return {t: c for c in self.chains for _, t in c.pairs}

    def to_dict(self) -> dict:
        src, tgt = self.source_joints, self.target_joints
        mapped_t = set(self.pairs.values())
        return {
            "joints": {src[s]: tgt[t] for s, t in sorted(self.pairs.items())},
            "chains": [c.to_dict(src, tgt) for c in self.chains],
            "unmapped_source": [j for i, j in enumerate(src) if i not in self.pairs],
            "unmapped_target": [j for i, j in enumerate(tgt) if i not in mapped_t],
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- effectors

def _effector_costs(src: Body, tgt: Body) -> np.ndarray:
    cs = src.frame_coordinates(src.positions[src.effectors])
    ct = tgt.frame_coordinates(tgt.positions[tgt.effectors])
    cost = np.linalg.norm(cs[:, None] - ct[None], axis=-1)
    for i, e in enumerate(src.effectors):
        for k, f in enumerate(tgt.effectors):
            ka, kb = src.kinds[i], tgt.kinds[k]
            if ka != kb:
                cost[i, k] += 0.6 if {ka, kb} <= {"leg", "arm", "limb"} else 1.0
            sa, sb = src.sides[i], tgt.sides[k]
            if sa * sb < 0:
                cost[i, k] += 1.0
            elif sa != sb:
                cost[i, k] += 0.3
            if role_agreement(src.names[e], tgt.names[f]) > 0:
                cost[i, k] -= 0.2
    return cost


def match_effectors(src: Body, tgt: Body) -> list[tuple[int, int]]:
    """Matched (source joint, target joint) end effectors."""
    if len(src.effectors) == 0 or len(tgt.effectors) == 0:
        return []
    cost = _effector_costs(src, tgt)
    n, m = cost.shape
    # dummy rows/columns: leaving an effector unmatched costs MAX_EFFECTOR_COST
    big = np.full((n + m, m + n), 0.0)
    big[:n, :m] = cost
    big[:n, m:] = np.where(np.eye(n) > 0, MAX_EFFECTOR_COST, 1e6)
    big[n:, :m] = np.where(np.eye(m) > 0, MAX_EFFECTOR_COST, 1e6)
    rows, cols = linear_sum_assignment(big)
    out = [(r, c) for r, c in zip(rows, cols) if r < n and c < m and cost[r, c] < MAX_EFFECTOR_COST]
    return [_step_up(src, tgt, int(src.effectors[r]), int(tgt.effectors[c]),
                     on_ground=src.kinds[r] == "leg" and tgt.kinds[c] == "leg") for r, c in out]


def _height(body: Body, j: int) -> float:
    """Height above the ground of a joint in the reference pose, in sizes."""
    return float((body.positions[j] @ body.up - body.ground) / body.size)


def _distinct(body: Body, e: int) -> bool:
    """True when an end's name has roles no other joint of its chain from the hub shares."""
    roles = body.names[e].roles - {"end"}
    if not roles:
        return "end" in body.names[e].roles
    chain = body.path(body.hub, e)[1:-1] if body.ancestor[body.hub, e] else []
    return not any(body.names[j].roles & roles for j in chain)


def _step_up(src: Body, tgt: Body, s: int, t: int, on_ground: bool = False) -> tuple[int, int]:
    """Move an end marker, or the one of two ends that is a limb part further out, up to its parent.

    On the ground (feet), when either side's names do not tell the parts of its leg apart (Fox:
    Foot01 and Foot02; a horse's ankle and foot), a step is taken only when it brings the two ends'
    heights above the ground closer: a hoof's tip and a paw both touch the floor. Distinct names
    are trusted: a foot without toes (an ankle) matches the other side's ankle, not its toe.
    """
    ps, pt = src.skeleton.parents, tgt.skeleton.parents
    for _ in range(3):
        ns, nt = src.names[s], tgt.names[t]
        end_s, end_t = "end" in ns.roles, "end" in nt.roles
        move = None
        if end_s != end_t:
            move = "s" if end_s and ps[s] >= 0 else "t" if end_t and pt[t] >= 0 else None
        else:
            rs, rt = limb_rank(ns), limb_rank(nt)
            if rs is not None and rt is not None and abs(rs - rt) >= 0.75:
                if rs > rt and ps[s] >= 0 and limb_rank(src.names[ps[s]]) is not None:
                    move = "s"
                elif rt > rs and pt[t] >= 0 and limb_rank(tgt.names[pt[t]]) is not None:
                    move = "t"
        if move is None:
            break
        s2, t2 = (int(ps[s]), t) if move == "s" else (s, int(pt[t]))
        by_height = on_ground and not (_distinct(src, s) and _distinct(tgt, t))
        if by_height and abs(_height(src, s2) - _height(tgt, t2)) >= abs(_height(src, s) - _height(tgt, t)):
            break
        s, t = s2, t2
    return s, t


# --------------------------------------------------------------------------- anchors

def _consistent(src: Body, tgt: Body, a: tuple[int, int], b: tuple[int, int]) -> bool:
    if a[0] == b[0] or a[1] == b[1]:
        return a == b
    return (src.ancestor[a[0], b[0]] == tgt.ancestor[a[1], b[1]]
            and src.ancestor[b[0], a[0]] == tgt.ancestor[b[1], a[1]])


def anchors(src: Body, tgt: Body, ends: list[tuple[int, int]],
            fixed: list[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """Anchor pairs that keep the hierarchy order: ``fixed`` (user) first, then ends, common ancestors, roots."""
    strength: dict[tuple[int, int], float] = {}
    for pair in ends:
        strength[pair] = strength.get(pair, 0.0) + 10.0
    for (s1, t1), (s2, t2) in combinations(ends, 2):
        pair = (src.lca([s1, s2]), tgt.lca([t1, t2]))
        strength[pair] = strength.get(pair, 0.0) + 1.0
    if ends:
        pair = (src.hub, tgt.hub)
        strength[pair] = strength.get(pair, 0.0) + 0.5
    roots = (_main_root(src), _main_root(tgt))
    strength[roots] = strength.get(roots, 0.0) + 0.25
    accepted: list[tuple[int, int]] = list(fixed)
    for pair in sorted(strength, key=lambda p: -strength[p]):
        if all(_consistent(src, tgt, pair, a) for a in accepted) and pair not in accepted:
            accepted.append(pair)
    return accepted


def _main_root(body: Body) -> int:
    roots = [r for r in body.skeleton.roots if not body.excluded[r]]
    return int(roots[0]) if roots else int(body.skeleton.roots[0])


# --------------------------------------------------------------------------- alignment along a chain

def _arc(body: Body, joints: list[int]) -> np.ndarray:
    """Cumulative length along a path of joints, as a fraction of its total (index fraction if degenerate)."""
    seg = np.array([body.bone[j] for j in joints[1:]])
    total = seg.sum()
    if total <= 1e-9 * body.size:
        return np.linspace(0.0, 1.0, len(joints))
    return np.concatenate([[0.0], np.cumsum(seg)]) / total


def align(src: Body, tgt: Body, s_path: list[int], t_path: list[int]) -> list[tuple[int, int]]:
    """Monotone matching of the interior joints of two paths whose ends correspond (DP, skips allowed)."""
    us, ut = _arc(src, s_path), _arc(tgt, t_path)
    si, ti = s_path[1:-1], t_path[1:-1]
    if not si or not ti:
        return []
    score = np.zeros((len(si), len(ti)))
    for a, s in enumerate(si):
        for b, t in enumerate(ti):
            ra = role_agreement(src.names[s], tgt.names[t])
            # where the joint sits and where the bone it turns ends: a clavicle and an upper arm may start
            # at the same fraction of the arm, but the upper arm's bone ends at the elbow
            gap = 0.5 * (abs(us[a + 1] - ut[b + 1]) + abs(us[a + 2] - ut[b + 2]))
            score[a, b] = 1.0 - gap / 0.35 + 0.7 * ra
    n, m = score.shape
    best = np.zeros((n + 1, m + 1))
    move = np.zeros((n + 1, m + 1), dtype=np.int8)  # 0 diag, 1 skip source, 2 skip target
    for a in range(1, n + 1):
        for b in range(1, m + 1):
            options = (best[a - 1, b - 1] + max(score[a - 1, b - 1], -1e9) if score[a - 1, b - 1] > 0 else -1e9,
                       best[a - 1, b], best[a, b - 1])
            move[a, b] = int(np.argmax(options))
            best[a, b] = options[move[a, b]]
    for a in range(1, n + 1):
        move[a, 0] = 1
    for b in range(1, m + 1):
        move[0, b] = 2
    pairs = []
    a, b = n, m
    while a > 0 or b > 0:
        mv = move[a, b]
        if mv == 0 and a > 0 and b > 0:
            pairs.append((si[a - 1], ti[b - 1]))
            a, b = a - 1, b - 1
        elif mv == 1 or b == 0:
            a -= 1
        else:
            b -= 1
    return pairs[::-1]


def _children(body: Body, j: int) -> list[int]:
    p = body.skeleton.parents
    return [int(c) for c in np.flatnonzero(p == j) if not body.excluded[c]]


def match_below(src: Body, tgt: Body, s: int, t: int, rotation: np.ndarray) -> list[tuple[int, int]]:
    """Pairs among the descendants of two matched joints (fingers, toe tips, end markers)."""
    cs, ct = _children(src, s), _children(tgt, t)
    if not cs or not ct:
        return []
    ds = np.array([src.positions[c] - src.positions[s] for c in cs]) @ rotation.T
    dt = np.array([tgt.positions[c] - tgt.positions[t] for c in ct])

    def unit(v):
        return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)

    cost = 1.0 - unit(ds) @ unit(dt).T  # 0 same direction .. 2 opposite
    for a, c in enumerate(cs):
        for b, d in enumerate(ct):
            na, nb = src.names[c], tgt.names[d]
            if na.digit and nb.digit:
                cost[a, b] += 0.0 if na.digit == nb.digit else 1.5
            cost[a, b] -= 0.3 * role_agreement(na, nb)
    rows, cols = linear_sum_assignment(cost)
    out = []
    for a, b in zip(rows, cols):
        if cost[a, b] < 0.8:
            out.append((cs[a], ct[b]))
            out += match_below(src, tgt, cs[a], ct[b], rotation)
    return out


# --------------------------------------------------------------------------- the whole mapping

def _chain_name(src: Body, tgt: Body, t_end: int, t_start: int, ends_t: dict[int, int]) -> str:
    if t_end in ends_t:
        return tgt.label(ends_t[t_end])
    if t_start < 0:
        return "root"
    below = [tgt.kinds[i] for i, e in enumerate(tgt.effectors) if tgt.ancestor[t_end, e]]
    if t_end == tgt.hub:
        return "pelvis"
    if "head" in below and "arm" in below:
        return "spine"
    if "head" in below:
        return "neck"
    return "body"


def _confidence(src: Body, tgt: Body, chain: Chain, rotation: np.ndarray) -> tuple[float, str]:
    named = [role_agreement(src.names[s], tgt.names[t]) for s, t in chain.pairs
             if src.names[s].roles and tgt.names[t].roles]
    geo = 1.0
    if chain.source_start >= 0:
        vs = (src.positions[chain.source_end] - src.positions[chain.source_start]) @ rotation.T
        vt = tgt.positions[chain.target_end] - tgt.positions[chain.target_start]
        ns, nt = np.linalg.norm(vs), np.linalg.norm(vt)
        if ns > 1e-9 * src.size and nt > 1e-9 * tgt.size:
            geo = 0.5 * (1.0 + float(vs @ vt) / (ns * nt))
        sp = src.path(chain.source_start, chain.source_end)
        tp = tgt.path(chain.target_start, chain.target_end)
        us, ut = dict(zip(sp, _arc(src, sp))), dict(zip(tp, _arc(tgt, tp)))
        gaps = [abs(us[s] - ut[t]) for s, t in chain.pairs if s in us and t in ut]
        if gaps:
            geo *= float(np.exp(-np.mean(gaps) / 0.15))
    if named:
        return 0.5 * geo + 0.5 * (1.0 + float(np.mean(named))) / 2.0, "names"
    return TOPOLOGY_CAP * geo, "topology"


def map_bodies(src: Body, tgt: Body, fixed: dict[int, int] | None = None) -> Mapping:
    """Automatic correspondence between two analysed skeletons; ``fixed`` pairs (user's) are kept as anchors."""
    from .adapt import body_rotation

    rotation = body_rotation(src, tgt)
    fixed = dict(fixed or {})
    ends = match_effectors(src, tgt)
    ends = [(s, t) for s, t in ends if s not in fixed and t not in fixed.values()]
    accepted = anchors(src, tgt, ends, list(fixed.items()))
    anchor_s = {s: t for s, t in accepted}
    order = sorted(accepted, key=lambda p: src.skeleton.depths()[p[0]])
    ends_t = {t: int(np.flatnonzero(tgt.effectors == t)[0]) for _, t in ends if t in tgt.effectors}
    for s, t in ends:  # stepped-up ends still name their chain after the effector below
        if t not in ends_t:
            below = [i for i, e in enumerate(tgt.effectors) if tgt.ancestor[t, e]]
            if below:
                ends_t[t] = below[0]
    chains: list[Chain] = []
    pairs: dict[int, int] = {}
    for s_end, t_end in order:
        ups = [a for a in anchor_s if a != s_end and src.ancestor[a, s_end]]
        s_start = max(ups, key=lambda a: src.skeleton.depths()[a]) if ups else -1
        t_start = anchor_s[s_start] if s_start >= 0 else -1
        if s_start >= 0:
            s_path, t_path = src.path(s_start, s_end), tgt.path(t_start, t_end)
        else:
            s_path = src.path(_main_root(src), s_end) if src.ancestor[_main_root(src), s_end] else [s_end]
            t_path = tgt.path(_main_root(tgt), t_end) if tgt.ancestor[_main_root(tgt), t_end] else [t_end]
            s_path, t_path = [-1] + s_path, [-1] + t_path
        inner = align(src, tgt, s_path, t_path) if s_start >= 0 else _align_from_root(src, tgt, s_path, t_path)
        chain = Chain(_chain_name(src, tgt, t_end, t_start, ends_t), s_start, t_start, s_end, t_end,
                      inner + [(s_end, t_end)])
        if s_end in fixed:
            chain.method = "user"
        if s_end in [e for e, _ in ends] or s_end in fixed:
            chain.pairs += [p for p in match_below(src, tgt, s_end, t_end, rotation)
                            if p[0] not in anchor_s and p[1] not in anchor_s.values()]
        chain.pairs = [(s, t) for s, t in chain.pairs if s not in pairs and t not in pairs.values()]
        for s, t in chain.pairs:
            pairs[s] = t
        chains.append(chain)
    for chain in chains:
        if chain.method != "user":
            chain.confidence, chain.method = _confidence(src, tgt, chain, rotation)
        else:
            chain.confidence = 1.0
    notes = []
    if len(ends) < min(len(src.effectors), len(tgt.effectors)):
        notes.append(f"{min(len(src.effectors), len(tgt.effectors)) - len(ends)} end effector(s) have no counterpart")
    return Mapping(list(src.skeleton.joints), list(tgt.skeleton.joints), pairs, chains, notes)


def _align_from_root(src: Body, tgt: Body, s_path: list[int], t_path: list[int]) -> list[tuple[int, int]]:
    """Joints above the top anchor: roots together, the rest by order (trajectory joints, a Root above the hips)."""
    s_in, t_in = s_path[1:-1], t_path[1:-1]
    if not s_in or not t_in:
        return []
    out = [(s_in[0], t_in[0])]
    rest_s, rest_t = s_in[1:], t_in[1:]
    out += list(zip(rest_s[::-1], rest_t[::-1]))[: min(len(rest_s), len(rest_t))]
    return sorted(set(out), key=lambda p: src.skeleton.depths()[p[0]])
