"""Codeless USD applied API schemas of anymole-usd (data only: plugInfo.json + generatedSchema.usda).

Hosts that start USD before Python imports anymole_usd (usdview, Omniverse Kit)
should add this package's ``anymole`` folder to ``PXR_PLUGINPATH_NAME``.
"""
