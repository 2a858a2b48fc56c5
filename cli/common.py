"""Shared CLI plumbing: error handling with the house exit codes, JSON output, progress."""
from __future__ import annotations

import functools
import json
import sys
import traceback

import click


def handle_errors(func):
    """Map InputError (and click usage errors) to exit 2, anything else to exit 1, one line each."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from anymole_usd.errors import InputError, PluginError

        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort, click.UsageError):
            raise
        except (InputError, PluginError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # internal failure: one line, full trace only on request
            click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
            if _debug():
                traceback.print_exc()
            else:
                click.echo("(set ANYMOLE_USD_DEBUG=1 for the traceback)", err=True)
            sys.exit(1)

    return wrapper


def _debug() -> bool:
    import os

    return os.environ.get("ANYMOLE_USD_DEBUG", "") not in ("", "0")


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=_jsonable))


def _jsonable(obj):
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return str(obj)


def progress(enabled: bool = True):
    """A rich progress bar on stderr (disabled for --json or non-TTY when asked)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), disable=not enabled, transient=False,
    )
