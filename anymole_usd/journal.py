"""The record a run keeps beside the shot: what it wrote, and the exact bytes it replaced.

``<shot folder>/.anymole/<shot name>/<command>/journal.json`` lists every
file the last run of that command (``inbetween``, ``retarget``) wrote, with the digest (sha256 + size) of the bytes before and after;
``originals/<sha256>`` holds the exact earlier bytes of every file it
replaced. Undo and crash recovery read only this record, so they work even
when the result layer is gone, and restore a file only from a copy whose
digest still matches. A run writes the journal as ``pending`` before it
touches anything and marks it ``committed`` after its last write, so the next
run (or ``--undo``) knows an interrupted run from a finished one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import time
from dataclasses import asdict, dataclass, field

from . import atomic_files
from .errors import InputError
from .locks import SIDECAR, remove_sidecar_if_empty, sidecar_name

FORMAT = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class FileRecord:
    """One file a run wrote. ``original`` None: the file did not exist before (we created it)."""

    path: str  # absolute in memory, relative to the shot's folder on disk
    original: dict | None = None  # digest of the bytes before anymole-usd touched it
    written: dict | None = None  # digest of what the run left there
    edits: dict = field(default_factory=dict)  # what was changed, for an undo after the user edited the file

    @property
    def created(self) -> bool:
        return self.original is None


@dataclass
class Journal:
    shot: str  # absolute path of the shot
    command: str = "inbetween"
    state: str = "pending"
    files: list[FileRecord] = field(default_factory=list)
    created_dirs: list[str] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)  # [{path, sha256, size}] of every layer the run read
    options_digest: str = ""
    version: str = ""
    folder: str = ""  # where this journal lives (its .anymole/<name>/<command> folder)
    previous: dict | None = None  # the committed journal a pending run replaces
    saved_at: float = 0.0  # when it was last written (orders the records of different commands)

    def record(self, path: str) -> FileRecord | None:
        path = os.path.abspath(path)
        return next((r for r in self.files if r.path == path), None)

    @property
    def originals_dir(self) -> str:
        return os.path.join(self.folder, "originals")

    def original_path(self, record: FileRecord) -> str:
        return os.path.join(self.originals_dir, record.original["sha256"])

    # -- serialisation ------------------------------------------------------------------------------
    def to_json(self) -> dict:
        base = os.path.dirname(self.shot)

        def rel(p: str) -> str:
            return os.path.relpath(p, base)

        d = asdict(self)
        d.pop("folder")
        d.pop("saved_at")
        d["format"] = FORMAT
        d["shot"] = os.path.basename(self.shot)
        d["files"] = [{**asdict(r), "path": rel(r.path)} for r in self.files]
        d["created_dirs"] = [rel(p) for p in self.created_dirs]
        d["inputs"] = [{**i, "path": rel(i["path"])} for i in self.inputs]
        d["host"], d["pid"], d["time"] = socket.gethostname(), os.getpid(), time.time()
        return d

    @classmethod
    def from_json(cls, d: dict, shot: str, folder: str) -> "Journal":
        base = os.path.dirname(shot)

        def absolute(p: str) -> str:
            return os.path.normpath(os.path.join(base, p))

        _check_records(d)
        return cls(
            shot=shot, command=d.get("command", "inbetween"), state=d.get("state", "pending"),
            files=[FileRecord(absolute(f["path"]), f.get("original"), f.get("written"), f.get("edits") or {})
                   for f in d.get("files", [])],
            created_dirs=[absolute(p) for p in d.get("created_dirs", [])],
            inputs=[{**i, "path": absolute(i["path"])} for i in d.get("inputs", [])],
            options_digest=d.get("options_digest", ""), version=d.get("version", ""), folder=folder,
            previous=d.get("previous"), saved_at=float(d.get("time", 0.0)),
        )


_LAYER_EXTENSIONS = (".usda", ".usdc", ".usd")


def _check_records(d: dict) -> None:
    """ValueError unless ``d`` is a record this tool could have written.

    Undo acts on what the record names, so a damaged or hand-made record must not make it touch
    anything a run could not have written: edited files lie in the shot's folder, created files
    are USD layers, digests are sha256 hex (they name files in ``originals/``).
    """
    if not isinstance(d, dict) or d.get("state") not in ("pending", "committed") or not isinstance(d.get("files"), list):
        raise ValueError("not a record")
    for f in d["files"]:
        if not isinstance(f, dict) or not isinstance(f.get("path"), str):
            raise ValueError("a file entry has no path")
        for key in ("original", "written"):
            digest = f.get(key)
            if digest is not None and not (isinstance(digest, dict) and isinstance(digest.get("size"), int)
                                           and _HEX64.fullmatch(str(digest.get("sha256")))):
                raise ValueError(f"{f['path']}: bad {key} digest")
        rel = os.path.normpath(f["path"])
        if f.get("original") is not None and (os.path.isabs(rel) or rel.split(os.sep)[0] == ".."):
            raise ValueError(f"{f['path']}: an edited file outside the shot's folder")
        if f.get("original") is None and os.path.splitext(rel)[1].lower() not in _LAYER_EXTENSIONS:
            raise ValueError(f"{f['path']}: a created file that is not a USD layer")
    if d.get("previous") is not None:
        _check_records(d["previous"])


def shot_folder(shot: str, home: str | None = None) -> str:
    """The folder holding every command's record for ``shot``: beside it, or in ``home`` (a read-only shot's output
    folder)."""
    shot = os.path.abspath(shot)
    name = os.path.basename(shot)
    if home is None or os.path.abspath(home) == os.path.dirname(shot):
        return os.path.join(os.path.dirname(shot), SIDECAR, sidecar_name(name))
    key = hashlib.sha256(shot.encode()).hexdigest()[:10]
    return os.path.join(os.path.abspath(home), SIDECAR, sidecar_name(name, f".{key}"))


def journal_folder(shot: str, home: str | None = None, command: str = "inbetween") -> str:
    return os.path.join(shot_folder(shot, home), command)


def _read(shot: str, folder: str) -> Journal | None:
    path = os.path.join(folder, "journal.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise InputError(f"anymole-usd's record of an earlier run is unreadable ({exc}); nothing was changed. "
                         f"Move {folder} away to start afresh", file=shot) from None
    if isinstance(data, dict) and isinstance(data.get("format", 0), int) and data.get("format", 0) > FORMAT:
        raise InputError(f"record {path} was written by a newer anymole-usd ({data.get('version')})", file=shot)
    try:
        return Journal.from_json(data, shot, folder)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InputError(f"anymole-usd's record of an earlier run is damaged ({exc}); nothing was changed. "
                         f"Move {folder} away to start afresh", file=shot) from None


def load(shot: str, homes: tuple[str, ...] = (), command: str = "inbetween") -> Journal | None:
    """The journal of ``command``'s runs on ``shot`` (beside it, else in one of ``homes``), or None."""
    shot = os.path.abspath(shot)
    for home in (None,) + tuple(homes):
        found = _read(shot, journal_folder(shot, home, command))
        if found is not None:
            return found
    return None


def others(shot: str, homes: tuple[str, ...] = (), command: str = "inbetween") -> list[Journal]:
    """Records of the other commands on ``shot`` (a retarget under an inbetween, say)."""
    shot = os.path.abspath(shot)
    found = []
    for home in (None,) + tuple(homes):
        base = shot_folder(shot, home)
        with contextlib.suppress(OSError):
            for name in sorted(os.listdir(base)):
                if name != command and os.path.isdir(os.path.join(base, name)):
                    j = _read(shot, os.path.join(base, name))
                    if j is not None:
                        found.append(j)
    return found


def save(journal: Journal) -> None:
    os.makedirs(journal.folder, exist_ok=True)
    data = json.dumps(journal.to_json(), indent=1, sort_keys=True).encode()
    atomic_files.write_bytes(os.path.join(journal.folder, "journal.json"), data)


def keep_original(journal: Journal, path: str) -> dict:
    """Keep ``path``'s current bytes among the journal's originals; returns their digest."""
    with open(path, "rb") as fh:
        return keep_original_bytes(journal, fh.read())


def keep_original_bytes(journal: Journal, data: bytes) -> dict:
    """Keep ``data`` in the journal's originals (content-addressed, written atomically and verified)."""
    record = atomic_files.digest_bytes(data)
    dest = os.path.join(journal.originals_dir, record["sha256"])
    if not atomic_files.same(dest, record):
        os.makedirs(journal.originals_dir, exist_ok=True)
        atomic_files.write_bytes(dest, data)
        if not atomic_files.same(dest, record):
            raise OSError(f"the kept copy {dest} did not verify after writing")
    return record


def original_bytes(journal: Journal, record: FileRecord) -> bytes:
    """The exact bytes ``record`` replaced; InputError (nothing restored) if the copy fails verification."""
    path = journal.original_path(record)
    if not atomic_files.same(path, record.original):
        have = os.path.getsize(path) if os.path.exists(path) else None
        state = "missing" if have is None else f"{have} bytes, expected {record.original['size']}, or changed"
        raise InputError(f"the saved original of {record.path} ({path}) fails verification ({state}); nothing was "
                         f"restored and {record.path} is left as it is (it is the good copy)", file=journal.shot)
    with open(path, "rb") as fh:
        return fh.read()


def prune_originals(journal: Journal) -> None:
    """Drop saved originals no record refers to any more."""
    wanted = {r.original["sha256"] for r in journal.files if r.original}
    with contextlib.suppress(OSError):
        for name in os.listdir(journal.originals_dir):
            if name not in wanted:
                os.remove(os.path.join(journal.originals_dir, name))


def remove(journal: Journal) -> None:
    """Delete the journal and its originals (after a full undo), and the folders left empty."""
    shutil.rmtree(journal.folder, ignore_errors=True)
    prune(journal.folder)


def discard_unrecorded(shot: str, homes: tuple[str, ...] = (), command: str = "inbetween") -> list[str]:
    """Clean the record folders of what killed runs left in them; call with the shot locked.

    Temporary files of dead runs go (an original being written when the run was killed). Where no
    journal exists, the originals a killed run kept before it wrote its journal go too: its writes
    had not begun (originals are kept before the pending journal, renames come after it), so the
    user's files are as they were and the copies are nobody's. Returns what was removed."""
    shot = os.path.abspath(shot)
    removed: list[str] = []
    for home in (None,) + tuple(homes):
        folder = journal_folder(shot, home, command)
        originals = os.path.join(folder, "originals")
        for d in (originals, folder):
            if os.path.isdir(d):
                removed += atomic_files.clean_stale_temps(d)
        if os.path.isdir(originals) and not os.path.exists(os.path.join(folder, "journal.json")):
            shutil.rmtree(originals, ignore_errors=True)
            removed.append(originals)
        if os.path.isdir(folder):
            prune(folder)
    return removed


def prune(folder: str) -> None:
    """Remove a command's record folder (``.anymole/<shot>/<command>``), its shot folder and the
    ``.anymole`` folder, each only when empty: other commands' and shots' records may remain."""
    for d in (folder, os.path.dirname(folder)):
        with contextlib.suppress(OSError):
            os.rmdir(d)
    remove_sidecar_if_empty(os.path.dirname(os.path.dirname(os.path.dirname(folder))))
