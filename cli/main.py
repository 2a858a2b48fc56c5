"""anymole-usd: fill the gaps in UsdSkel character animation.

Each sub-command lives in its own module (``anymole_usd.cli.<name>``) and is
imported only when invoked, so ``anymole-usd --help`` never loads USD, torch
or Warp. Exit codes: 0 success, 2 bad input, 1 internal failure.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys

import click

# command name -> (module, short help). Modules expose a click command named `command`.
COMMANDS = {
    "info": ("anymole_usd.cli.info", "List skeletons, bound animations, context and keyframes."),
    "inbetween": ("anymole_usd.cli.inbetween", "Fill the gaps between authored samples (layered, non-destructive)."),
    "plugins": ("anymole_usd.cli.plugins", "List installed plugins by kind."),
    "import": ("anymole_usd.cli.convert_import", "Import BVH or glTF/GLB motion as a UsdSkel stage."),
    "export": ("anymole_usd.cli.convert_export", "Export the composed animation to BVH or glTF/GLB."),
    "eval": ("anymole_usd.cli.evaluate", "Compare in-between frames of a result with a reference."),
    "render": ("anymole_usd.cli.render", "Render the composed animation from several views."),
    "preview": ("anymole_usd.cli.preview", "Side-by-side preview of a result (MP4 or contact sheet)."),
    "report": ("anymole_usd.cli.report", "One self-contained HTML review of a result: clips, curves, metrics."),
    "blender-addon": ("anymole_usd.cli.blender_addon", "Write the Blender add-on (.zip) that runs anymole-usd."),
    "estimator": ("anymole_usd.cli.estimator", "Train or run the scene-specific joint estimator."),
    "batch": ("anymole_usd.cli.batch", "Fill many shots (files, folders, globs) in parallel, locally or on Ray."),
    "library": ("anymole_usd.cli.library", "Build or describe a motion library of your clips."),
    "compose": ("anymole_usd.cli.compose", "New animation from a motion library (tags, keys, music)."),
    "video": ("anymole_usd.cli.video", "Prepare a video job for any generator (read back by inbetween --video-dir)."),
    "retarget": ("anymole_usd.cli.retarget", "Play a motion (USD, BVH, glTF) on another skeleton, as a layer."),
}


def _available(name: str) -> bool:
    module = COMMANDS[name][0]
    return importlib.util.find_spec(module) is not None


class OneLineUsageError(click.ClickException):
    """A usage error shown as every other error is: one ``error:`` line on stderr, exit 2."""

    exit_code = 2

    def __init__(self, usage: click.UsageError) -> None:
        message = usage.format_message()
        if usage.ctx is not None:
            message += f" (see: {usage.ctx.command_path} --help)"
        super().__init__(message)

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class LazyGroup(click.Group):
    """Lists commands from COMMANDS and imports a module only when its command runs.

    Usage errors (a bad option value, a missing argument) print one ``error:`` line, like
    bad input found later, instead of click's three-line usage block.
    """

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except KeyboardInterrupt:
            _interrupted()

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except KeyboardInterrupt:  # before the command's own handling (importing it): not click's "Aborted!"
            _interrupted()

    def list_commands(self, ctx):
        return [n for n in COMMANDS if _available(n)]

    def get_command(self, ctx, name):
        if name not in COMMANDS or not _available(name):
            return None
        if ctx.resilient_parsing or "--help" in sys.argv[1:2]:
            # Top-level --help: show the short help without importing the module.
            return click.Command(name, help=COMMANDS[name][1], short_help=COMMANDS[name][1])
        return importlib.import_module(COMMANDS[name][0]).command


def _interrupted() -> None:
    click.echo("error: interrupted", err=True)
    sys.exit(130)


def _one_line(exc: click.UsageError) -> click.ClickException:
    # A bare group (`anymole-usd`, `anymole-usd library`) shows its help, as click does.
    return exc if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())) else OneLineUsageError(exc)


def _version() -> str:
    from anymole_usd import __version__

    return __version__


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="anymole-usd")
@click.option("-v", "--verbose", is_flag=True,
              help="Say more on stderr: which device runs the kernels, every fallback of a prior.")
def cli(verbose: bool) -> None:
    """anymole-usd: any-character motion in-betweening for UsdSkel animation.

    \b
    Typical use:
      anymole-usd info shot.usda
      anymole-usd inbetween shot.usda          # writes shot.inbetween.usda, composed over the shot
      anymole-usd inbetween --undo shot.usda   # restores the original composition
      anymole-usd -v inbetween shot.usda       # also say which device runs and each fallback
    """
    from .common import set_verbose

    set_verbose(verbose)


# Commands that need no USD (their start stays as light as --help).
_NO_USD = {"plugins", "blender-addon"}


def _load_usd_undisturbed(argv: list[str]) -> None:
    """Import USD's Python modules with SIGINT and SIGTERM held back until they are loaded.

    USD loads the Python modules of its libraries from C++ and catches what they raise: a Ctrl-C or a
    farm's SIGTERM landing there became pages of USD warnings, half-loaded modules, and a run that went
    on to the end (exit 0) as if nothing had been asked. Held back, the signal arrives right after.
    """
    import signal

    words = [a for a in argv if not a.startswith("-")]
    if not words or words[0] in _NO_USD or {"-h", "--help", "--version"} & set(argv):
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        from pxr import Gf, Sdf, Usd, UsdGeom, UsdSkel, Vt  # noqa: F401
    except ImportError:  # the command reports a missing USD itself
        pass
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    from .common import BROKEN_PIPE_EXIT, quiet_broken_pipe

    from anymole_usd import interrupts

    interrupts.install()  # a Ctrl-C that USD swallows still stops the run before it writes
    try:
        _load_usd_undisturbed(sys.argv[1:] if argv is None else list(argv))
        cli.main(args=argv, prog_name="anymole-usd", standalone_mode=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:  # held back while USD loaded, delivered before any command ran
        click.echo("error: interrupted", err=True)
        return 130
    except BrokenPipeError:  # outside a command (help text, click's own messages) into a closed pipe
        quiet_broken_pipe()
        return BROKEN_PIPE_EXIT
    try:
        # Flush here, not at interpreter exit, where a closed pipe prints 'Exception ignored ...'.
        sys.stdout.flush()
    except BrokenPipeError:
        quiet_broken_pipe()
        return BROKEN_PIPE_EXIT
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
