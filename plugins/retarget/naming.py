"""Joint-name conventions: what a joint name says about side, body part and helpers.

Names are reduced to lower-case word tokens after stripping what every
exporter adds around the meaningful part: namespaces (``Beta:``,
``mixamorig:``), rig prefixes (``mixamorig_``, ``Character1_``, ``Bip01_``,
``ORG_``/``DEF_``, glTF ``b_``, ``Skeleton_``), hash and index suffixes
(``__laU``, ``_015``). The side comes from ``Left``/``Right``/``L``/``R``
tokens in any position (``LeftUpLeg``, ``lThigh``, ``Shoulder_L``,
``front_leg_upper_l``, ``arm_joint_L__4_``). The rest is matched against the
body-part vocabulary of the humanoid conventions in use (Mixamo, CMU
3dsMax/MotionBuilder, Daz, HumanIK, Biovision/MVN, LaFAN1/Bandai, Unreal,
Rigify, glTF samples) to a set of candidate *roles*.

Limb roles are shared by arms and legs (``girdle`` < ``upper`` < ``lower`` <
``extremity`` < ``digit`` < ``end``), so a quadruped's front leg named like an
arm (Fox: UpperArm/ForeArm/Hand) still lines up with a leg named like a leg.
Ambiguous names keep several candidates ("Shoulder" is a clavicle in Mixamo
but an upper arm in CMU 3dsMax, "Leg" a shin in Mixamo but a thigh in the
UsdSkel example); the order along the chain decides (mapping.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Roles along a limb, in order from the body outwards.
LIMB_ROLES = ("girdle", "upper", "lower", "extremity", "digit", "end")
# Roles along the trunk, from the root upwards.
TRUNK_ROLES = ("root", "hips", "spine", "neck", "head", "end")

_PREFIXES = re.compile(
    r"^(?:mixamorig\d*_|character\d*_|bip\d*_|org[-_.]|def[-_.]|cc_base_|j_bip_[clr]_|rp_|bn_|skeleton_|armature_)",
    re.IGNORECASE,
)
_GLTF_PREFIX = re.compile(r"^b_(?=[A-Z])")
_HASH_SUFFIX = re.compile(r"__[A-Za-z0-9]{3}$")
_INDEX_SUFFIX = re.compile(r"(?:[_.]+\d+_*)+$")
_TOKENS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

_SIDE = {"left": 1, "l": 1, "lf": 1, "right": -1, "r": -1, "rt": -1}
# "lhand", "rfemur": a glued one-letter side before a body-part word
_GLUED_PARTS = {"femur", "tibia", "foot", "toes", "toe", "hand", "thigh", "shin", "hip", "clavicle", "humerus",
                "wrist", "fingers", "thumb", "collar", "shoulder", "shldr", "arm", "forearm", "knee", "ankle",
                "elbow", "upleg", "ear", "eye"}
_HELPER_TOKENS = {"ik", "pole", "pv", "rigmesh", "ctrl", "control", "helper", "target", "mch", "drv", "driver",
                  "twist", "roll", "footsteps", "prop", "weapon", "attach", "socket", "locator", "dummy"}

# (pattern on the joined core, roles). Order matters: the first match wins.
_ROLE_PATTERNS: list[tuple[re.Pattern, tuple[str, ...]]] = [
    (re.compile(p), roles) for p, roles in (
        (r"(?:end|nub|tip|leaf|site|top)$", ("end",)),
        (r"^(?:root|rootjoint|jointroot|reference|trajectory|armature|master|world|cog)$", ("root",)),
        (r"(?:finger|thumb|index|middle|mid|ring|pinky|little|carpal|metacarpal|palm)", ("digit",)),
        (r"(?:toebase|toes?|ball|phalanx)", ("digit",)),
        (r"(?:hipjoint|buttock|clavicle|collar|scapula|shoulderblade|girdle|anchor|legpelvis)", ("girdle",)),
        (r"(?:forearm|lowerarm|elbow|radius|ulna|lowerleg|knee|shin|calf|tibia|fibula|shank)", ("lower",)),
        (r"(?:upperarm|uparm|humerus|upleg|upperleg|thigh|femur)", ("upper",)),
        (r"^(?:front)?(?:shoulder|shldr)$", ("girdle", "upper")),
        (r"^(?:hand|wrist|foot|ankle|talus|heel|hoof|paw|footheel|heeloutside)", ("extremity",)),
        (r"(?:hand|wrist|foot|ankle|paw|hoof)$", ("extremity",)),
        (r"^(?:back|front)?leg$", ("upper", "lower")),
        (r"^(?:front)?arm$", ("upper",)),
        (r"^hips?$", ("hips",)),
        (r"^(?:pelvis|hipbone)$", ("hips",)),
        (r"(?:spine|abdomen|lowerback|torso|chest|upchest|upperchest|ribcage|thorax|waist|belly|stomach)",
         ("spine",)),
        (r"(?:neck)", ("neck",)),
        (r"^head$", ("head",)),
        (r"(?:tail)", ("tail",)),
        (r"(?:wing|feather)", ("wing",)),
        (r"(?:eye|ear|jaw|mouth|nose|nostril|tongue|lip|brow|cheek|teeth|tooth|eyelid|horn|trunk|beak)",
         ("face",)),
    )
]


@dataclass(frozen=True)
class JointName:
    """What one joint name says."""

    raw: str
    tokens: tuple[str, ...]  # lower-case words, side words removed
    side: int  # +1 left, -1 right, 0 none
    roles: frozenset[str]
    helper: bool
    digit: str = ""  # finger kind (thumb, index, ...) for matching hands

    @property
    def core(self) -> str:
        return "".join(t for t in self.tokens if not t.isdigit())

    def to_dict(self) -> dict:
        return {"name": self.raw, "side": self.side, "roles": sorted(self.roles), "helper": self.helper}


def short_name(joint: str) -> str:
    """Last path element of a UsdSkel joint token (``Hips/Spine`` -> ``Spine``)."""
    return joint.rsplit("/", 1)[-1]


def strip(name: str) -> str:
    """The meaningful part of a joint name: namespaces, rig prefixes and index/hash suffixes removed."""
    text = short_name(name)
    for sep in (":", "|"):
        text = text.rsplit(sep, 1)[-1]
    text = _HASH_SUFFIX.sub("", text)
    for _ in range(3):  # "ORG_BN_Bip01_Pelvis": prefixes can stack
        text = _PREFIXES.sub("", text)
    text = _GLTF_PREFIX.sub("", text)
    stripped = _INDEX_SUFFIX.sub("", text)
    return stripped or text


@lru_cache(maxsize=4096)
def parse(name: str) -> JointName:
    """Side, roles and helper flag of a joint name (any convention)."""
    text = strip(name)
    words = [w.lower() for w in _TOKENS.findall(text)]
    side = 0
    kept: list[str] = []
    for w in words:
        if w in _SIDE and side == 0:
            side = _SIDE[w]
            continue
        if side == 0 and len(w) > 3 and w[0] in "lr" and w[1:] in _GLUED_PARTS:
            side, w = _SIDE[w[0]], w[1:]
        elif side == 0 and w.startswith(("left", "right")) and w not in _SIDE:  # "LeftindexA"
            head = "left" if w.startswith("left") else "right"
            side, w = _SIDE[head], w[len(head):]
        kept.append(w)
    # "Bip01 L Thigh" keeps "01" as a token; digits never carry meaning in a role
    core = "".join(w for w in kept if not w.isdigit())
    roles: set[str] = set()
    for pattern, rs in _ROLE_PATTERNS:
        if pattern.search(core):
            roles.update(rs)
            break
    if side and "hips" in roles:  # a sided "Hip" is a thigh (CMU 3dsMax, MVN) or a hip joint
        roles = {"upper", "girdle"}
    helper = bool(set(kept) & _HELPER_TOKENS) or "rigmesh" in core
    digit = ""
    if "digit" in roles:
        for kind, keys in (("thumb", ("thumb",)), ("index", ("index",)), ("middle", ("middle", "mid")),
                           ("ring", ("ring",)), ("pinky", ("pinky", "little")), ("toe", ("toe", "ball"))):
            if any(k in core for k in keys):
                digit = kind
                break
    return JointName(raw=name, tokens=tuple(kept), side=side, roles=frozenset(roles), helper=helper, digit=digit)


def parse_all(joints: list[str]) -> list[JointName]:
    return [parse(short_name(j)) for j in joints]


def role_agreement(a: JointName, b: JointName) -> float:
    """+1 when two names share a role, -1 when both have roles and none is shared, 0 when one says nothing."""
    if not a.roles or not b.roles:
        return 0.0
    if a.roles & b.roles:
        return 1.0
    # neighbours along a limb ("Shoulder" as girdle vs an upper arm) are a weak conflict
    ranks_a = {LIMB_ROLES.index(r) for r in a.roles if r in LIMB_ROLES}
    ranks_b = {LIMB_ROLES.index(r) for r in b.roles if r in LIMB_ROLES}
    if ranks_a and ranks_b and min(abs(x - y) for x in ranks_a for y in ranks_b) == 1:
        return -0.5
    return -1.0


def limb_rank(n: JointName) -> float | None:
    """Mean position of a name's limb roles along a limb (None when it names no limb part)."""
    ranks = [LIMB_ROLES.index(r) for r in n.roles if r in LIMB_ROLES]
    return sum(ranks) / len(ranks) if ranks else None
