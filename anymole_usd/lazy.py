"""Lazy re-exports: a package lists its public names in a table and imports each module on first use.

Keeps ``import anymole_usd`` (and ``anymole-usd --help``) fast while the
public API stays importable from the package root, as Warp's is.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Collection


def lazy_attributes(package: str, table: dict[str, str], modules: Collection[str] = ()) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package``.

    ``table`` maps a public name to the relative module defining it; names in
    ``modules`` return that module itself rather than an attribute of it.
    """

    def __getattr__(name: str) -> Any:
        if name in table:
            module = importlib.import_module(table[name], package)
            return module if name in modules else getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
