"""Ctrl-C and SIGTERM that USD swallowed: remembered, and raised again before anything is written.

USD imports the Python modules of its libraries from C++ and catches what they raise, so a
KeyboardInterrupt that lands while USD loads a module is printed as USD warnings and lost: the run
went on to the end. The handler here records the request before raising; :func:`check` (called by
the transaction before it writes, and by the batch before it starts a shot) raises it again.
"""
from __future__ import annotations

import signal

_requested = False


def handler(signum, frame) -> None:
    """Signal handler: remember the request, then interrupt as Python's own SIGINT handler does."""
    global _requested
    _requested = True
    raise KeyboardInterrupt


def install(signals=(signal.SIGINT,)) -> None:
    for sig in signals:
        signal.signal(sig, handler)


def requested() -> bool:
    return _requested


def check() -> None:
    """Raise KeyboardInterrupt if an interrupt was asked for (even one USD swallowed)."""
    if _requested:
        raise KeyboardInterrupt
