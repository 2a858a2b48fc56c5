"""Error types. ``InputError`` means bad user input (CLI exit 2); anything else is internal (exit 1)."""
from __future__ import annotations


class InputError(Exception):
    """Bad input: a one-line message naming the file, prim and time where known."""

    def __init__(self, message: str, *, file: str | None = None, prim: str | None = None, time: float | None = None):
        self.message = message
        self.file = file
        self.prim = prim
        self.time = time
        super().__init__(self.format())

    def format(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.prim:
            where.append(f"prim {self.prim}")
        if self.time is not None:
            where.append(f"time {self.time:g}")
        prefix = ": ".join([", ".join(where)]) if where else ""
        text = f"{prefix}: {self.message}" if prefix else self.message
        return " ".join(text.split())  # always one line


class ModelUnavailableError(InputError):
    """A configured model (weights, backbone) is missing or unreachable."""


class PluginError(Exception):
    """A plugin failed to import or does not provide the expected interface."""
