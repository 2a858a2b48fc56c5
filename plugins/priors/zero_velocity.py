"""`zero-velocity`: hold the last known pose until the next known sample (benchmark baseline)."""
from __future__ import annotations

import numpy as np

from anymole_usd.motion import Motion
from anymole_usd.parameters import Parameters
from anymole_usd.prior import InbetweenRequest, Prior


class ZeroVelocityPrior(Prior):
    name = "zero-velocity"
    description = "Holds the pose of the last known sample before each gap (LaFAN1 baseline)."
    param_spec = Parameters()  # none: any --param is an error

    def fill(self, request: InbetweenRequest) -> Motion:
        known = request.known
        times = request.target_times
        # The last known sample at or before each target time.
        src = np.clip(np.searchsorted(known.times, times, side="right") - 1, 0, known.num_frames - 1)
        held = known.select(src)
        held.times = np.asarray(times, dtype=np.float64)
        return held
