"""The video prior: a video diffusion model adapted to the shot (ICAdapt) that imagines the in-between video.

Nothing heavy is imported here; torch, diffusers and transformers load only
when a model is loaded or a function that needs them runs.
"""
