"""`anymole-usd plugins`: installed plugins by kind, with the package providing each."""
from __future__ import annotations

import click

from .common import emit_json, handle_errors


@click.command("plugins")
@click.option("--kind", help="Only this kind (priors, stages, importers, exporters, metrics, ...).")
@click.option("--no-check", is_flag=True, help="Do not import plugins to check them.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def command(kind, no_check, as_json):
    """List installed plugins by kind; a plugin that fails to import is reported, not fatal."""
    from anymole_usd import registry

    infos = registry.plugins(kind) if no_check else registry.check(kind)
    if as_json:
        emit_json([i.to_dict() for i in infos])
        return
    current = None
    for info in infos:
        if info.kind != current:
            current = info.kind
            click.echo(f"{current}:")
        status = "" if info.error is None else f"  [BROKEN: {info.error}]"
        click.echo(f"  {info.name:<16} {info.target}  ({info.package} {info.version}){status}")
    if not infos:
        click.echo("no plugins installed")
