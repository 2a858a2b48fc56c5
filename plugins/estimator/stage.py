"""The joint estimator as a pipeline stage (``anymole_usd.stages`` entry point ``estimator``).

Inputs are arrays (a :class:`~.dataset.RenderSet` of the shot's known frames);
outputs are a :class:`~.training.TrainedEstimator` (cached by content hash)
and :class:`~.predict.Prediction` for new frames. The stage never touches the
USD stage.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np


class EstimatorStage:
    name = "estimator"
    description = "Scene-specific joint estimator: 2D joints and depth learnt from the shot's own renders."

    def __init__(self, **params: Any) -> None:
        from .training import EstimatorSettings

        self.cache_dir = params.pop("cache_dir", None)
        self.device = params.pop("device", "cpu")
        known = set(EstimatorSettings.__dataclass_fields__)
        unknown = sorted(set(params) - known)
        if unknown:
            from anymole_usd.errors import InputError

            raise InputError(f"unknown estimator parameter(s): {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        # Parameters may come from JSON (--param): lists and dicts become the settings' types.
        self.settings = EstimatorSettings.from_dict({**EstimatorSettings().to_dict(), **params})
        self.params = dict(params)

    def parameters(self) -> dict:
        return self.settings.to_dict()

    def run(self, renders, *, progress: Callable[[str, float], None] | None = None):
        """Train on (or load from the cache for) the shot's renders -> TrainedEstimator."""
        from .training import train_estimator

        return train_estimator(renders, self.settings, cache_dir=self.cache_dir, device=self.device,
                               progress=progress)

    def predict(self, estimator, images: np.ndarray, *, view: str = "front"):
        """Joints of new images in the training camera ``view`` -> Prediction."""
        from .predict import predict

        return predict(estimator, images, view=view, device=self.device)
