"""anymole-usd blender-addon: write the Blender add-on (.zip) whose "Fill gaps" button runs this tool."""
from __future__ import annotations

import click

from anymole_usd.cli.common import check_output_writable, emit_json, handle_errors


@click.command("blender-addon")
@click.option("-o", "--output", "out", default="anymole_usd_addon.zip", show_default=True,
              type=click.Path(dir_okay=False), help="The add-on .zip to write.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@handle_errors
def command(out, as_json):
    """Write the Blender add-on (Blender 4.2+).

    \b
    Install: Edit > Preferences > Add-ons > Install from Disk (the .zip), enable "AnyMoLe USD",
    and set "anymole-usd executable" in its preferences to this environment's anymole-usd
    (printed after writing). The panel is in the Dope Sheet / Action Editor sidebar (N), tab AnyMoLe.
    """
    import os
    import shutil
    import sys

    from anymole_usd.errors import InputError
    from anymole_usd.plugins.blender_addon import write_zip

    if not out.lower().endswith(".zip"):
        raise InputError("the add-on output must end in .zip", file=out)
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise InputError("output folder does not exist or cannot be written", file=out)
    check_output_writable(out)
    summary = write_zip(out)
    exe = shutil.which("anymole-usd") or os.path.join(os.path.dirname(sys.executable), "anymole-usd")
    summary["executable"] = exe
    if as_json:
        emit_json(summary)
        return
    click.echo(f"wrote {summary['output']} (module {summary['module']}, {len(summary['files'])} files)")
    click.echo("Install it in Blender 4.2+ (Edit > Preferences > Add-ons > Install from Disk), enable "
               "'AnyMoLe USD', and set its 'anymole-usd executable' to:")
    click.echo(f"  {exe}")
