"""Atomic, umask-honouring file writes, content digests, and cleanup of what a killed run left.

Every file anymole-usd writes goes through here: the bytes land in a private
temporary folder beside the target (``.anymole-tmp-<pid>@<host>.XXXX``, so USD's own
temporary files land inside it too), are flushed to disk, get the target's
permissions (an existing file's mode, else what the user's umask gives a new
file), and are renamed over the target in one step. A reader therefore sees
the old file or the new one, never a part. A ``kill -9`` can leave only a
temporary folder, which :func:`clean_stale_temps` removes once its process
is gone.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile

TEMP_PREFIX = ".anymole-tmp-"
_TEMP_RE = re.compile(r"^\.anymole-tmp-(\d+)@([A-Za-z0-9-]*)\.")


def _host() -> str:
    import socket

    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]


def digest(path: str) -> dict:
    """{"sha256", "size"} of a file's bytes."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return {"sha256": h.hexdigest(), "size": size}


def digest_bytes(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def same(path: str, record: dict | None) -> bool:
    """True when ``path`` exists and its bytes match ``record`` (a :func:`digest`)."""
    if not record or not os.path.isfile(path):
        return False
    if os.path.getsize(path) != record.get("size"):
        return False
    return digest(path)["sha256"] == record.get("sha256")


def umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def new_file_mode() -> int:
    """What ``open(path, "w")`` would give a new file: 0666 less the umask."""
    return 0o666 & ~umask()


def mode_for(target: str) -> int:
    """The permissions a file replacing ``target`` should get: the existing file's, else the umask's."""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        return new_file_mode()


def new_dir_mode() -> int:
    return 0o777 & ~umask()


def make_dirs(path: str) -> list[str]:
    """Create ``path`` and missing parents with the user's umask; returns the folders created (outermost first)."""
    created = []
    path = os.path.abspath(path)
    probe = path
    while not os.path.isdir(probe):
        created.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    os.makedirs(path, exist_ok=True)
    return list(reversed(created))


def _fsync_dir(folder: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Staged:
    """A new file for ``target`` prepared in a private temporary folder beside it, not yet in place.

    Write to :attr:`path`, call :meth:`finish` (flush, permissions, digest),
    then :meth:`install` (one rename) or :meth:`discard`.
    """

    def __init__(self, target: str) -> None:
        # Through a symbolic link (shot.usda -> shot_v3.usda): replace the file it names, keep the link.
        self.target = os.path.realpath(target) if os.path.islink(target) else os.path.abspath(target)
        folder = os.path.dirname(self.target)
        self.tmpdir = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}@{_host()}.", dir=folder)
        # A short name inside the private folder: USD's own temporary file adds 7 characters to it, and a
        # target name near the file system's 255-byte limit would not leave room for them.
        self.path = os.path.join(self.tmpdir, "staged" + os.path.splitext(self.target)[1][:16])
        self.digest: dict | None = None

    def finish(self) -> dict:
        with open(self.path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(self.path, mode_for(self.target))
        self.digest = digest(self.path)
        return self.digest

    def install(self) -> None:
        if self.digest is None:
            self.finish()
        os.replace(self.path, self.target)
        _fsync_dir(os.path.dirname(self.target))
        self.discard()

    def discard(self) -> None:
        shutil.rmtree(self.tmpdir, ignore_errors=True)


@contextlib.contextmanager
def staging(target: str):
    """Yield a staging path for ``target``; on success the file there replaces ``target`` atomically."""
    staged = Staged(target)
    try:
        yield staged.path
        staged.install()
    finally:
        staged.discard()


def stage_bytes(path: str, data: bytes) -> Staged:
    staged = Staged(path)
    try:
        with open(staged.path, "wb") as fh:
            fh.write(data)
        staged.finish()
    except BaseException:
        staged.discard()
        raise
    return staged


def stage_layer(layer, path: str, file_format: str | None = None) -> Staged:
    """Export an Sdf layer for ``path`` into a staging folder (``file_format`` picks a ``.usd`` file's encoding)."""
    args = {"format": file_format} if file_format and path.lower().endswith(".usd") else {}
    staged = Staged(path)
    try:
        if not layer.Export(staged.path, "", args):
            raise OSError(f"could not write {path}")
        staged.finish()
    except BaseException:
        staged.discard()
        raise
    return staged


def write_bytes(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with staging(path) as staged:
        with open(staged, "wb") as fh:
            fh.write(data)


def export_layer(layer, path: str, file_format: str | None = None) -> None:
    """Export an Sdf layer to ``path`` atomically; reload any other cached layer of that path."""
    stage_layer(layer, path, file_format).install()
    reload_cached(path, keep=layer)


def reload_cached(path: str, keep=None) -> None:
    """Make a layer cached in this process match the file on disk."""
    from pxr import Sdf

    cached = Sdf.Layer.Find(os.path.abspath(path))
    if cached is not None and cached is not keep:
        cached.Reload(force=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _age(path: str) -> float:
    import time

    try:
        return time.time() - os.path.getmtime(path)
    except OSError:
        return 0.0


def clean_stale_temps(folder: str) -> list[str]:
    """Remove temporary files/folders and lock files of killed anymole-usd runs in ``folder``."""
    from .locks import clean_stale_locks

    removed = clean_stale_locks(folder)
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        path = os.path.join(folder, name)
        match = _TEMP_RE.match(name)
        # A temp of another host (shared filesystem) is judged by age, its pid means nothing here.
        stale = (not _pid_alive(int(match.group(1))) if match and match.group(2) == _host()
                 else match is not None and _age(path) > 24 * 3600)
        if stale:
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.remove(path)
            removed.append(path)
    return removed
