"""Motion-video mimicking (AnyMoLe Sec. 3.3, Eq. 3): lift in-between video frames back to 3D motion.

Modules, in the order data flows through them:

- ``video_source``: video sources as plugins (``folder``: images named by frame time);
- ``schedule``: the optimisation grid inside each gap and the keyframes-inwards order;
- ``optimizer``: per-frame root position and joint rotations fitted to 2D joints
  (Warp FK + joint-loss kernels) and to the frames (soft renderer), with the
  keyframe-interpolation and previous-frame regularisers;
- ``upsample``: optimised frames -> the stage's frame rate (slerp, optional Gaussian filter);
- ``prior``: the ``video`` prior plugin that runs render -> estimator -> video -> mimic -> upsample.

torch loads only with ``optimizer`` and ``prior.fill``.
"""
