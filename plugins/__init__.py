"""Built-in plugins of anymole-usd (installed as ``anymole_usd.plugins``).

Each is registered in pyproject.toml through the same entry-point groups a
third-party package uses, and imported only when first used.
"""
