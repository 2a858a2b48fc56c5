"""Which joints' translations mimicking optimises: the roots and the top-most animated joints.

Most skeletons move through their root. A trajectory-root rig (Bandai's
``joint_Root`` fixed at the origin, its child ``Hips`` carrying the walk; the
crab's ``ORG_Hips``) moves its body through a child joint instead, and BVH files
with position channels on every joint add mocap noise to bone offsets. The
translation of a joint is "animated" when it moves by more than
``MOVING_TOLERANCE`` of the character's height over the known samples.
"""
from __future__ import annotations

import numpy as np

# A joint's translation is "animated" when it moves by more than this fraction of the character's height (std
# over the known samples); below it is mocap noise on a bone offset.
MOVING_TOLERANCE = 0.01


def translated_joints(parents: np.ndarray, translations: np.ndarray, height: float,
                      tolerance: float = MOVING_TOLERANCE) -> np.ndarray:
    """Joints whose translation mimicking optimises: every root, and every joint whose local translation is
    animated in ``translations`` (F, J, 3) while none of its ancestors' is.

    A trajectory-root rig (Bandai's ``joint_Root`` fixed at the origin, its child ``Hips`` carrying the
    walk) moves the body through a child joint: optimising the roots alone would leave the hips where
    the neighbouring frame had them.
    """
    parents = np.asarray(parents)
    moving = np.asarray(translations).std(0).max(-1) > tolerance * max(height, 1e-12)
    from anymole_usd import kinematics

    order = np.argsort(kinematics.joint_depths(parents), kind="stable")
    covered = np.zeros(len(parents), bool)  # an ancestor is optimised and animated
    chosen = parents < 0
    for j in order:  # parents before children
        p = parents[j]
        inherited = p >= 0 and (covered[p])
        if moving[j] and not inherited:
            chosen[j] = True
        covered[j] = inherited or (chosen[j] and moving[j])
    return np.flatnonzero(chosen)
