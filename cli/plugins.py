"""`anymole-usd plugins`: installed plugins by kind, with the package providing each.

``--details`` adds each plugin's description and its declared parameters
(name, type, default, allowed values, meaning), read from the plugin's
``param_spec``: the same declaration that validates ``--param``.
"""
from __future__ import annotations

import click

from .common import emit_json, handle_errors


@click.command("plugins")
@click.option("--kind", help="Only this kind (priors, stages, importers, exporters, metrics, video_sources, "
                             "backbones, captioners).")
@click.option("--details", is_flag=True,
              help="Also show each plugin's description and parameters (name, type, default, allowed, meaning).")
@click.option("--no-check", is_flag=True, help="Do not import plugins to check them (no descriptions or parameters).")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON (with description and parameters of every plugin that imports).")
@handle_errors
def command(kind, details, no_check, as_json):
    """List installed plugins by kind; a plugin that fails to import is reported, not fatal.

    \b
    Examples:
      anymole-usd plugins --kind priors --details
      anymole-usd plugins --kind metrics --json
    """
    from anymole_usd import registry

    if details and no_check:
        raise click.UsageError("--details imports the plugins; it cannot be combined with --no-check")
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
        if details and info.error is None:
            _echo_details(info)
    if not infos:
        click.echo("no plugins installed")


def _echo_details(info) -> None:
    if info.description:
        click.echo(f"      {info.description}")
    params = info.parameters or []
    if not params:
        click.echo("      parameters: none")
        return
    rows = [(p["name"], p["type"], repr(p["default"]), p["allowed"], p["help"]) for p in params]
    widths = [max(len(r[i]) for r in rows + [("name", "type", "default", "allowed", "")]) for i in range(4)]
    click.echo("      parameters:")
    header = ("name", "type", "default", "allowed")
    click.echo("        " + "  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  meaning")
    for r in rows:
        click.echo("        " + "  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
