"""The ``anymole-usd`` command line (installed as ``anymole_usd.cli``)."""
