"""What the CLI tests share: run a command in this process, expect it to succeed or to refuse cleanly,
and a folder's exact state (every file's sha256) for "nothing was touched" checks."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from anymole_usd.cli.main import cli
from click.testing import CliRunner


def run(*args, cwd: Path | None = None):
    """``anymole-usd ARGS...`` in process (from ``cwd`` when given); exceptions propagate."""
    old = os.getcwd()
    if cwd:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


def ok(*args):
    """Run and expect exit 0."""
    r = run(*args)
    assert r.exit_code == 0, r.output
    return r


def refused(*args, match: str) -> str:
    """Run and expect exit 2 with exactly one `error:` line, containing ``match``; returns that line."""
    r = run(*args)
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and match in errors[0], r.output
    return errors[0]


def state(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (hidden ones included) -> its sha256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
