"""The joint estimator as a pipeline stage (``anymole_usd.stages`` entry point ``estimator``).

Inputs are arrays (a :class:`~.dataset.RenderSet` of the shot's known frames);
outputs are a :class:`~.training.TrainedEstimator` (cached by content hash)
and :class:`~.predict.Prediction` for new frames. The stage never touches the
USD stage.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from anymole_usd.parameters import Param, Parameters

# Declared here (not read from EstimatorSettings) so that listing plugins never imports torch; a test checks
# that the names and defaults match EstimatorSettings.
PARAMS = Parameters(
    Param("backbone", "cnn", "feature backbone plugin (anymole_usd.backbones): cnn, dinov2"),
    Param("backbone_model", None, "backbone weights: folder or hub id (dinov2)", nullable=True),
    Param("input_size", None, "longer image side the network sees (default: the backbone's)", type=int, min=16,
          nullable=True),
    Param("steps", 800, "training steps", min=1),
    Param("batch_size", 16, "images per training step", min=1),
    Param("lr", 2e-3, "one-cycle peak learning rate", min=0.0, min_exclusive=True),
    Param("weight_decay", 1e-4, "AdamW weight decay", min=0.0),
    Param("key_weight", 3.0, "how much more often keyframe images are drawn than context images", min=0.0),
    Param("views", ("front", "left", "right"), "views trained on (list; the paper leaves the back out)", type=object),
    Param("augmentation", None, "augmentation ranges, e.g. {\"translate\": 0.1, \"brightness\": 0.3} (dict)",
          type=object, nullable=True),
    Param("val_fraction", 0.1, "share of the context frames held out for validation", min=0.0, max=0.9),
    Param("val_every", 100, "validate every this many steps", min=1),
    Param("seed", 0, "random seed"),
    Param("merge_channels", 96, "channels of the merged feature map", min=8),
    Param("decoder_channels", 48, "channels of the heatmap decoder", min=8),
    Param("heatmap_stride", 4, "heatmap cell size in input pixels", choices=(1, 2, 4, 8)),
    Param("pose_context", True, "the whole 2D skeleton in the depth head's input"),
    Param("heatmap_weight", 20.0, "weight of the auxiliary Gaussian-heatmap loss (0: the paper's loss only)",
          min=0.0),
    Param("depth_mode", "relative", "depth about the character's mean (relative) or per view's mean (absolute)",
          choices=("relative", "absolute")),
    Param("normalise_pose", True, "depth head sees 2D positions about the skeleton's centroid, per its spread"),
    Param("distance", "lengths", "character distance from rigid lengths, a network depth, or both blended",
          choices=("lengths", "network", "blend")),
    Param("framing", 0.75, "top-down framing: share of the network's view the character's box fills (0: off)",
          min=0.0, max=1.0),
    Param("max_zoom", 3.0, "largest framing zoom", min=1.0),
    Param("whole_fraction", 0.25, "share of training images shown whole (the first prediction pass)", min=0.0,
          max=1.0, max_exclusive=True),
    Param("threads", None, "torch CPU threads while training (default: fewer when the machine is busy)", type=int,
          min=1, nullable=True),
    Param("cache_dir", None, "weight cache folder (default $ANYMOLE_USD_CACHE/estimator)", nullable=True),
    Param("device", "cpu", "torch device"),
)


class EstimatorStage:
    name = "estimator"
    description = "Scene-specific joint estimator: 2D joints and depth learnt from the shot's own renders."
    param_spec = PARAMS

    def __init__(self, **params: Any) -> None:
        from .training import EstimatorSettings

        params = self.param_spec.validate(params, owner="estimator stage")
        self.cache_dir = params.pop("cache_dir", None)
        self.device = params.pop("device", "cpu")
        if params.get("augmentation") is None:
            params.pop("augmentation", None)
        if "views" in params:  # "front,left" or a list; unknown and repeated names stop here
            from anymole_usd.plugins.render.render_job import parse_views

            params["views"] = parse_views(params["views"])
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
