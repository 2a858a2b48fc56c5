"""Running the ``anymole-usd`` executable (a separate environment: Blender never imports torch or Warp).

The executable is configured in the add-on preferences as a command line
(``/path/to/venv/bin/anymole-usd`` or ``/path/to/python -m anymole_usd.cli.main``);
``inbetween --json`` reports where the result layer and prim are, and a failure
is the last ``error:`` line the tool printed (its one-line messages name the
file, prim and time).
"""
import json
import os
import shlex
import shutil
import subprocess
import threading


class ToolError(RuntimeError):
    """The tool could not be run or failed; the message is one line for Blender's report area."""


def command_line(executable, shot, result, prior="", extra=""):
    """The ``anymole-usd inbetween`` command for ``shot`` writing ``result``."""
    words = shlex.split(executable or "anymole-usd")
    if not words:
        raise ToolError("no anymole-usd executable is set in the add-on preferences")
    program = words[0]
    if shutil.which(program) is None and not os.access(program, os.X_OK):
        raise ToolError(f"anymole-usd executable not found: {program!r} (set its path in Edit > Preferences > "
                        "Add-ons > AnyMoLe USD)")
    cmd = words + ["inbetween", shot, "-o", result, "--json"]
    if prior:
        cmd += ["--prior", prior]
    return cmd + shlex.split(extra or "")


def start(cmd):
    """Start the tool without a console window; stdout carries the JSON report."""
    env = dict(os.environ)
    for name in ("PYTHONHOME", "PYTHONPATH"):  # Blender's Python must not leak into the tool's
        env.pop(name, None)
    try:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    except OSError as exc:
        raise ToolError(f"could not start {cmd[0]!r}: {exc.strerror or exc}") from None


def finish(process, stdout, stderr):
    """The tool's JSON report, or ToolError with its message."""
    if process.returncode != 0:
        lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
        message = next((ln for ln in reversed(lines) if ln.startswith(("error:", "internal error:"))),
                       lines[-1] if lines else f"exit status {process.returncode}")
        raise ToolError(f"anymole-usd: {message}")
    try:
        return json.loads(stdout)
    except ValueError:
        raise ToolError("anymole-usd printed no JSON report (is the executable anymole-usd?)") from None


def run(cmd, timeout=None):
    """Run the tool to the end (scripts, background mode); returns its JSON report."""
    process = start(cmd)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise ToolError(f"anymole-usd took longer than {timeout:g} s (raise the time limit in the preferences)") \
            from None
    return finish(process, stdout, stderr)


class Background:
    """The tool running while Blender stays responsive: a thread drains its output (a full pipe would stall it)."""

    def __init__(self, cmd):
        self.process = start(cmd)
        self._output = None
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self):
        self._output = self.process.communicate()

    @property
    def done(self):
        return not self._thread.is_alive()

    def cancel(self):
        self.process.kill()
        self._thread.join()

    def report(self):
        """The JSON report once :attr:`done`; ToolError if the tool failed."""
        self._thread.join()
        return finish(self.process, *self._output)
