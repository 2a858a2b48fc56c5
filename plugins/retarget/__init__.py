"""Motion transfer between characters (``anymole-usd retarget``): joint correspondence by names,
topology and rest geometry, part-wise scaling, and the Warp FK optimiser with contacts held.

Public API (see retarget.py): ``map_skeletons``, ``retarget_motion``, ``load_source``.
"""
