"""Advisory locks on the layers a run writes, so two runs never write one file at once.

A lock is an exclusive ``flock`` on a lock file beside the layer
(``.anymole/<name>.lock``), never on the layer itself: the layer is replaced
by a rename during the run, and a lock on the old inode would not keep a
second process off the new one. Lock files are removed when released, so a
folder is left as it was; the inode check on acquisition makes removal safe
(a process that opened a lock file just before it was unlinked notices and
retries on the new one). Acquisition never waits: a second run fails at
once with a clear message, and nothing is written.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os

from .errors import InputError

SIDECAR = ".anymole"


NAME_MAX = 255  # bytes in one path component on the file systems we meet (ext4, xfs, apfs, ntfs)


def sidecar_name(name: str, suffix: str = "") -> str:
    """``name + suffix`` as one path component; a name too long for that is cut and made unique by its hash
    (a 250-character shot name is legal, its lock file ``<name>.lock`` would not be)."""
    whole = name + suffix
    if len(whole.encode("utf-8", "surrogateescape")) <= NAME_MAX:
        return whole
    import hashlib

    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    head = name.encode("utf-8", "surrogateescape")[:NAME_MAX - len(suffix.encode()) - 80]
    return head.decode("utf-8", "ignore") + "~" + digest + suffix


def lock_path(layer_path: str) -> str:
    """The lock file of a layer: per real file, so a run through a symbolic link and one on the file clash."""
    folder, name = os.path.split(os.path.realpath(layer_path))
    return os.path.join(folder, SIDECAR, sidecar_name(name, ".lock"))


def remove_sidecar_if_empty(folder: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(os.path.join(folder, SIDECAR))


class LayerLocks:
    """Locks held on a growing set of layer paths; release removes the lock files."""

    def __init__(self) -> None:
        self._held: dict[str, int] = {}  # layer path -> fd of its lock file

    def holds(self, layer_path: str) -> bool:
        return os.path.abspath(layer_path) in self._held

    def acquire(self, layer_path: str, who: str = "another anymole-usd run") -> None:
        """Lock ``layer_path`` or raise InputError at once if a live process holds it."""
        layer_path = os.path.abspath(layer_path)
        if layer_path in self._held:
            return
        path = lock_path(layer_path)
        for _ in range(50):  # retries only when a lock file vanished under us
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise InputError(f"cannot lock for writing: {exc.strerror}", file=layer_path) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise InputError(f"{who} is writing this file; try again when it ends",
                                     file=layer_path) from None
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._held[layer_path] = fd
                return
            os.close(fd)  # we locked a lock file that was just removed: take the new one
        raise InputError("could not take the lock (lock file keeps changing)", file=layer_path)

    def release(self) -> None:
        folders = set()
        for layer_path, fd in self._held.items():
            path = lock_path(layer_path)
            with contextlib.suppress(OSError):
                os.remove(path)  # while still holding it: see the module docstring
            os.close(fd)
            folders.add(os.path.dirname(os.path.dirname(path)))
        self._held.clear()
        for folder in folders:
            remove_sidecar_if_empty(folder)

    def __enter__(self) -> "LayerLocks":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def clean_stale_locks(folder: str) -> list[str]:
    """Remove lock files no live process holds (left by a killed run) in ``folder``'s sidecar."""
    sidecar = os.path.join(folder, SIDECAR)
    removed = []
    try:
        names = [n for n in os.listdir(sidecar) if n.endswith(".lock")]
    except OSError:
        return removed
    for name in names:
        path = os.path.join(sidecar, name)
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # held by a live run
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                os.remove(path)
                removed.append(path)
        os.close(fd)
    remove_sidecar_if_empty(folder)
    return removed
