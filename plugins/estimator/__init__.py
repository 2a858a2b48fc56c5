"""Scene-specific joint estimator (AnyMoLe Sec. 3.3): learn this character's joints from its own renders.

Modules, in the order data flows through them:

- ``dataset``: :class:`RenderSet` (images + joint annotations as plain arrays),
  the estimator's data selection and the ICAdapt clip sampler (Algorithm 1);
- ``renders``: a shot or a character + motion -> :class:`RenderSet` through the
  render plugin (the only module that knows about cameras and ray casting);
- ``augment``: translation and colour jitter on torch batches;
- ``backbones``: feature backbone plugins (``cnn`` from scratch, ``dinov2``);
- ``model``: feature merger, heatmap decoder, soft-argmax, depth MLP;
- ``depth``: depth about the character's mean joint depth, and its distance from
  the rigid lengths between joints (no network involved);
- ``training``: :func:`train_estimator` with a content-addressed weight cache;
- ``predict``: :func:`predict` on new images (generated video frames);
- ``frames``: a folder of images named by frame time (``--frames DIR``);
- ``stage``: the pipeline stage registered under ``anymole_usd.stages``.

Nothing here is imported by ``anymole_usd`` itself; torch loads with
``model``/``training``/``predict``.
"""
