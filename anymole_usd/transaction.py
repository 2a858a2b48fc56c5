"""One run's writes to a shot, all or nothing: locks, crash recovery, exact originals, commit, undo.

A run (``inbetween``, ``retarget``) opens a :class:`Transaction` before it
reads the shot. The transaction

1. locks the shot, cleans up temporary files of killed runs, and finishes
   an interrupted run from its ``pending`` journal (rolled back unless every
   write had landed);
2. puts the bytes every earlier run replaced back into memory
   (:meth:`load_bases`), so the new run starts from the user's own files and
   a re-run replaces an earlier result instead of stacking on it;
3. collects what the run wants to write (:meth:`edit_layer`,
   :meth:`create_layer`), and in :meth:`commit` stages every file beside its
   target, keeps the exact earlier bytes, writes the journal as ``pending``,
   renames each staged file into place, removes what the earlier run left
   and this one does not need, and marks the journal ``committed``.

:func:`undo` reads only the journal: it restores every replaced file from its
verified original and removes the files a run created, byte for byte, and if
the user changed a file after the run it removes only our edits and says so.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from . import atomic_files, journal as jr, layer_bytes, usda_edit
from .errors import InputError
from .locks import LayerLocks


@dataclass
class _Write:
    layer: object
    edits: dict = field(default_factory=dict)
    minimal: bool = True  # try a minimal textual edit of the base text first
    force: bool = False  # an existing file that is not ours may be replaced (its bytes are kept)


def checkpoint(name: str) -> None:
    """Crash-test hook: with ANYMOLE_USD_TEST_PAUSE="<folder>:<name>,...", stop at ``name`` until released.

    The process writes ``<folder>/<name>.reached`` and waits while that file
    exists, so a test can kill it (``kill -9`` by pid) at exactly this point,
    or delete the file to let it go on. Costs one environment lookup otherwise.
    """
    if name in ("begun", "planned", "staged"):  # nothing renamed into place yet: stopping here writes nothing
        from .interrupts import check

        check()
    spec = os.environ.get("ANYMOLE_USD_TEST_PAUSE")
    if not spec:
        return
    folder, _, names = spec.rpartition(":")
    if name not in names.split(","):
        return
    import time

    marker = os.path.join(folder, f"{name}.reached")
    with open(marker, "w") as fh:
        fh.write(str(os.getpid()))
    deadline = time.time() + 120
    while os.path.exists(marker) and time.time() < deadline:
        time.sleep(0.02)


def _digest_or_none(path: str) -> dict | None:
    return atomic_files.digest(path) if os.path.isfile(path) else None


def _matches(d: dict | None, *records) -> bool:
    return d is not None and any(r and d["sha256"] == r.get("sha256") for r in records)


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class Transaction:
    def __init__(self, shot: str, command: str = "inbetween", home: str | None = None) -> None:
        self.shot = os.path.abspath(shot)
        self.command = command
        self.home = home  # journal folder when the shot's own folder cannot be written
        self.locks = LayerLocks()
        self.previous: jr.Journal | None = None
        self.notes: list[str] = []
        self.base: dict[str, bytes] = {}  # path -> the bytes as the user had them, for files earlier runs replaced
        self._writes: dict[str, _Write] = {}
        self._made_dirs: list[str] = []
        self._inherited_dirs: list[str] = []  # folders a killed earlier run created: this run's to remove
        self._layers: list = []  # keep layers we changed in memory alive (USD caches them weakly)
        self.options_digest = ""
        self.inputs: list[dict] = []

    # -- start -------------------------------------------------------------------------------------
    def begin(self, lock_shot: bool = True) -> "Transaction":
        folder = os.path.dirname(self.shot)
        if lock_shot:
            self.locks.acquire(self.shot)
        atomic_files.clean_stale_temps(folder)
        homes = (self.home,) if self.home else ()
        self._inherited_dirs += clean_after_killed_run(self.shot, homes, self.command)
        if lock_shot:  # what a killed run left in the record folder; only under the shot's lock
            jr.discard_unrecorded(self.shot, homes, self.command)
        found = jr.load(self.shot, homes, self.command)
        if found is not None and found.state != "committed":
            self._lock_all(found)
            self.notes.append(recover(found, self._inherited_dirs))
            found = jr.load(self.shot, homes, self.command)
        if found is not None:
            _check_on_top(self.shot, homes, found, "run again")
        self.previous = found
        if found is not None:
            self._lock_all(found)
            for record in found.files:
                if not record.created:
                    self.base[record.path] = _base_bytes(found, record, self.notes)
        checkpoint("begun")
        return self

    def _lock_all(self, journal: jr.Journal) -> None:
        for record in journal.files:
            if os.path.exists(os.path.dirname(record.path)):
                self.locks.acquire(record.path)

    def load_bases(self) -> None:
        """Make the layers USD has (or will have) open hold the users' own bytes, in memory only."""
        self._layers += show_in_memory(self.base)

    def owns(self, path: str) -> bool:
        """True when ``path`` is a file an earlier run of this shot created."""
        rec = self.previous.record(path) if self.previous else None
        return rec is not None and rec.created

    def record_inputs(self, stage) -> None:
        """Digest every layer file the stage reads (as the user has it), for ``result_is_current``."""
        created = {r.path for r in self.previous.files if r.created} if self.previous else set()
        seen = {}
        for layer in stage.GetUsedLayers():
            real = layer.realPath
            if not real:
                continue
            real = os.path.abspath(real.split("[", 1)[0])  # a layer inside a usdz: the package file
            if real in seen or real in created or not os.path.isfile(real):
                continue
            data = self.base.get(real)
            seen[real] = atomic_files.digest_bytes(data) if data is not None else atomic_files.digest(real)
        self.inputs = [{"path": p, **d} for p, d in sorted(seen.items())]

    # -- what the run writes -----------------------------------------------------------------------------
    def edit_layer(self, path: str, layer, edits: dict, minimal: bool = True) -> None:
        """Replace an existing user file with ``layer`` (edited from its base); ``edits`` says what changed."""
        path = self.check_edit(path)
        self._writes[path] = _Write(layer, edits, minimal)

    def check_edit(self, path: str) -> str:
        """InputError unless this run may edit ``path`` (inside the shot's folder); returns it absolute."""
        path = os.path.abspath(path)
        if not _inside(path, os.path.dirname(self.shot)):
            raise InputError(f"will not write {path}: it is outside the shot's folder", file=self.shot)
        return path

    def create_layer(self, path: str, layer, force: bool = False) -> None:
        """Write a new file of ours at ``path`` (a result layer or wrapper)."""
        path = self.check_create(path, force)
        self._writes[path] = _Write(layer, {}, minimal=False, force=force)

    def check_create(self, path: str, force: bool = False) -> str:
        """InputError unless a new file of ours may go to ``path``; returns it absolute.

        Runs also call it before their prior, so a refused ``-o`` costs no computation.
        """
        path = os.path.abspath(path)
        ext = os.path.splitext(path)[1].lower()
        if ext not in (".usda", ".usdc", ".usd"):
            raise InputError(f"the result must be a USD layer (.usda, .usdc or .usd), got {os.path.basename(path)!r}",
                             file=self.shot)
        if os.path.isdir(path):
            raise InputError("is a folder; give a file name for the result", file=path)
        from .locks import NAME_MAX

        if len(os.path.basename(path).encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise InputError(f"file name too long for the file system ({NAME_MAX} bytes at most); pass -o with a "
                             "shorter name", file=path)
        if os.path.exists(path) and not self.owns(path) and not force:
            raise InputError("exists and is not this shot's earlier result; choose another -o or pass --force "
                             "(its bytes are kept and --undo puts it back)", file=path)
        from .layering import nearest_folder, writable

        probe = nearest_folder(path)
        if not writable(probe):
            raise InputError("folder is read-only; pass -o to write the result elsewhere", file=probe)
        return path

    # -- commit ------------------------------------------------------------------------------------------
    def commit(self) -> jr.Journal | None:
        """Write everything, or nothing; returns the committed journal (None when nothing of ours remains)."""
        staged: dict[str, atomic_files.Staged] = {}
        # Folders other than the shot's get temporary files and lock files (and may be created): name them
        # beside the shot first, so a kill -9 before the journal is written still leaves them findable.
        outside = sorted({os.path.dirname(p) for p in self._writes} - {os.path.dirname(self.shot)})
        intent = os.path.join(jr.journal_folder(self.shot, self.home, self.command), INTENT) if outside else None
        if intent:
            _record_intent(intent, outside)
        try:
            for path in self._writes:
                if not os.path.isdir(os.path.dirname(path)):
                    try:
                        self._made_dirs += atomic_files.make_dirs(os.path.dirname(path))
                    except OSError as exc:
                        raise InputError(f"cannot create the output folder: {exc.strerror}",
                                         file=os.path.dirname(path)) from None
                self.locks.acquire(path)
            self._check_inputs_unchanged()
            for path, w in self._writes.items():
                staged[path] = self._stage(path, w)
            prev_records = {r.path: r for r in self.previous.files} if self.previous else {}
            for path, rec in prev_records.items():
                if path not in staged and not rec.created and path in self.base:
                    # An earlier run edited it and this one does not: back to the user's bytes.
                    if not _matches(_digest_or_none(path), atomic_files.digest_bytes(self.base[path])):
                        staged[path] = atomic_files.stage_bytes(path, self.base[path])
            checkpoint("staged")
            journal = self._pending_journal(staged, prev_records)
            checkpoint("kept")  # originals kept, no journal yet: a kill here leaves copies nobody records
            jr.save(journal)
            checkpoint("pending")
            for i, (path, s) in enumerate(staged.items()):
                s.install()
                atomic_files.reload_cached(path, keep=self._writes[path].layer if path in self._writes else None)
                checkpoint(f"installed{i + 1}")
            self._remove_stale(journal, prev_records, staged)
            checkpoint("cleaned")
            journal.files = [r for r in journal.files if r.written is not None and r.written != r.original]
            journal.previous = None
            journal.state = "committed"
            if not journal.files:
                jr.remove(journal)
                return None
            jr.save(journal)
            jr.prune_originals(journal)
            return journal
        except BaseException:
            _remove_empty_dirs(self._made_dirs)
            raise
        finally:
            for s in staged.values():
                s.discard()
            if intent:
                _drop_intent(intent, self.shot)

    def _check_inputs_unchanged(self) -> None:
        """Another process may have written a layer we read before we locked it: then write nothing."""
        for item in self.inputs:
            if item["path"] in self._writes or item["path"] == self.shot:
                if item["path"] in self.base:
                    continue
                now = _digest_or_none(item["path"])
                if now is not None and now["sha256"] != item["sha256"]:
                    raise InputError("changed while this run was working (another run?); nothing was written, "
                                     "run again", file=item["path"])

    def _stage(self, path: str, w: _Write) -> atomic_files.Staged:
        exists = os.path.isfile(path)
        fmt = layer_bytes.file_format(path) if exists else None
        base = self.base.get(path)
        if base is None and w.minimal and exists:
            base = _read(path)
        if w.minimal and base is not None and layer_bytes.is_text(base):
            edited = _minimal_text(base.decode("utf-8"), w.layer.ExportToString(), w.edits)
            if edited is not None:
                return atomic_files.stage_bytes(path, edited.encode("utf-8"))
        return atomic_files.stage_layer(w.layer, path, fmt)

    def _pending_journal(self, staged: dict, prev_records: dict) -> jr.Journal:
        from . import __version__

        folder = jr.journal_folder(self.shot, self.home, self.command)
        journal = jr.Journal(shot=self.shot, command=self.command, state="pending", folder=folder,
                             options_digest=self.options_digest, version=__version__, inputs=self.inputs,
                             previous=self.previous.to_json() if self.previous else None)
        journal.created_dirs = sorted(set(self._made_dirs) | set(self.previous.created_dirs if self.previous else ())
                                      | {d for d in self._inherited_dirs if os.path.isdir(d)})
        for path in sorted(set(staged) | set(prev_records)):
            prev, s = prev_records.get(path), staged.get(path)
            if prev is not None and prev.created:
                original = None  # ours already; re-written now, or stale (written None: removed below)
            elif path in self.base:
                # Unchanged since the earlier run: keep its original; else the user's bytes less our edits.
                same = prev is not None and _matches(atomic_files.digest_bytes(self.base[path]), prev.original)
                original = prev.original if same else jr.keep_original_bytes(journal, self.base[path])
            elif os.path.isfile(path):
                original = jr.keep_original(journal, path)  # a user file edited (or replaced with --force)
            else:
                original = None
            written = s.digest if s is not None else (original if original is not None else None)
            edits = self._writes[path].edits if path in self._writes else {}
            journal.files.append(jr.FileRecord(path, original, written, edits))
        return journal

    def _remove_stale(self, journal: jr.Journal, prev_records: dict, staged: dict) -> None:
        for path, rec in prev_records.items():
            if rec.created and path not in staged and os.path.exists(path):
                if _matches(_digest_or_none(path), rec.written):
                    os.remove(path)
                    atomic_files.reload_cached(path)
                else:
                    self.notes.append(f"left {path}: it changed after anymole-usd wrote it")
        _remove_empty_dirs(journal.created_dirs)

    def close(self) -> None:
        self.locks.release()
        _remove_empty_dirs(self._inherited_dirs)  # unless this run's result is in them (then it records them)

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- helpers shared by runs, recovery and undo -----------------------------------------------------------
def _minimal_text(base: str, expected: str, edits: dict) -> str | None:
    """``base`` with ``edits`` applied as small text edits, if USD reads that as ``expected``."""
    candidates = [base]
    if edits.get("sublayer"):
        candidates = [c for t in candidates for c in usda_edit.insert_sublayer_candidates(t, edits["sublayer"])]
    for rel in edits.get("relationships", {}).values():
        if rel.get("old") and rel.get("new"):
            candidates = [c for t in candidates[:4]
                          for c in usda_edit.replace_target_candidates(t, rel["old"][0], rel["new"][0])]
    if edits.get("in_place") or candidates == [base]:
        return None
    return usda_edit.first_matching(candidates[:16], expected)


def _strip_text(current: bytes, edits: dict, original: bytes | None = None) -> bytes:
    """``current`` without our recorded edits (the user changed it after the run).

    ``original`` (the bytes before the run) is needed for in-place edits: samples the run
    overwrote get the user's values back instead of being erased.
    """
    layer = layer_bytes.layer_from_bytes(current)
    before = layer_bytes.layer_from_bytes(original) if original is not None else None
    done = layer_bytes.strip_edits(layer, edits, before)
    if not done:
        return current
    expected = layer.ExportToString()
    if layer_bytes.is_text(current) and not edits.get("in_place"):
        text = current.decode("utf-8")
        candidates = usda_edit.remove_sublayer_candidates(text, edits["sublayer"]) if edits.get("sublayer") else [text]
        for rel in edits.get("relationships", {}).values():
            candidates = [c for t in candidates[:4]
                          for c in usda_edit.replace_target_candidates(t, rel["new"][0], rel["old"][0])]
        found = usda_edit.first_matching(candidates[:16], expected)
        if found is not None:
            return found.encode("utf-8")
    if layer_bytes.is_text(current):
        return expected.encode("utf-8")
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="anymole-strip-")
    try:
        path = os.path.join(folder, "layer.usdc")
        layer.Export(path)
        return _read(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _original_for_strip(journal: jr.Journal, record: jr.FileRecord) -> bytes | None:
    """The verified bytes before the run, when stripping needs them (in-place samples)."""
    return jr.original_bytes(journal, record) if record.edits.get("in_place") else None


def _base_bytes(journal: jr.Journal, record: jr.FileRecord, notes: list[str]) -> bytes:
    """The bytes ``record.path`` would have without our edits."""
    current = _digest_or_none(record.path)
    if current is None:
        return jr.original_bytes(journal, record)
    if _matches(current, record.written, record.original):
        return jr.original_bytes(journal, record)
    try:
        stripped = _strip_text(_read(record.path), record.edits, _original_for_strip(journal, record))
    except ValueError as exc:
        raise InputError(f"{exc}; it changed after anymole-usd's run and cannot be read, so nothing was changed "
                         f"(its state before that run is kept at {journal.original_path(record)})",
                         file=record.path) from None
    notes.append(f"{record.path} was changed after the last run: only anymole-usd's edits were set aside")
    return stripped


def _check_on_top(shot: str, homes: tuple[str, ...], own: jr.Journal, what: str) -> None:
    """Refuse to change a command's result while another command's later result is composed over it."""
    later = [j for j in jr.others(shot, homes, own.command) if j.saved_at > own.saved_at]
    if later:
        names = ", ".join(sorted({j.command for j in later}))
        raise InputError(f"anymole-usd {names} ran on this shot after {own.command} and its result builds on "
                         f"{own.command}'s: undo it first (anymole-usd {later[0].command} --undo), then {what}",
                         file=shot)


def show_in_memory(bases: dict[str, bytes]) -> list:
    """Give the (cached) layer of each path the given bytes, in memory only; returns the layers changed.

    Keep the returned layers referenced while a stage should see that content:
    USD drops unreferenced layers from its cache.
    """
    from pxr import Sdf

    changed = []
    for path, data in bases.items():
        if not os.path.exists(path) or _matches(_digest_or_none(path), atomic_files.digest_bytes(data)):
            continue
        layer = Sdf.Layer.FindOrOpen(path)
        if layer is not None:
            layer.TransferContent(layer_bytes.layer_from_bytes(data, path))
            changed.append(layer)
    return changed


def user_bases(shot: str, homes: tuple[str, ...] = (), command: str = "inbetween"
               ) -> tuple[dict[str, bytes], jr.Journal | None]:
    """Read-only: the bytes of every file ``command``'s committed run changed, as they were before it, and its record."""
    found = jr.load(os.path.abspath(shot), homes, command)
    if found is None or found.state != "committed":
        return {}, found
    notes: list[str] = []
    return {r.path: _base_bytes(found, r, notes) for r in found.files if not r.created}, found


INTENT = "writing.json"  # folders outside the shot's that a run is writing (see Transaction.commit)


def _record_intent(path: str, folders: list[str]) -> None:
    import json

    made = []
    for folder in folders:
        probe = folder
        while probe and not os.path.isdir(probe):
            made.append(probe)
            probe = os.path.dirname(probe)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_files.write_bytes(path, json.dumps({"folders": folders, "made": sorted(set(made))}).encode())


def _drop_intent(path: str, shot: str) -> None:
    """Remove an intent record, and its record folders if nothing else is in them."""
    with contextlib.suppress(OSError):
        os.remove(path)
    jr.prune(os.path.dirname(path))  # .anymole/<shot>/<command>


def clean_after_killed_run(shot: str, homes: tuple[str, ...], command: str) -> list[str]:
    """Temporary files, lock files and new folders a killed run left outside the shot's folder (its -o).

    Returns the folders it had created that are not empty (a result of it that recovery decides on).
    """
    import json

    kept: list[str] = []
    for home in (None,) + tuple(homes):
        path = os.path.join(jr.journal_folder(shot, home, command), INTENT)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            folders, made = list(data.get("folders", [])), list(data.get("made", []))
        except (OSError, ValueError, AttributeError, TypeError):
            folders, made = [], []
        for folder in folders:
            if isinstance(folder, str) and os.path.isdir(folder):
                atomic_files.clean_stale_temps(folder)
        made = [d for d in made if isinstance(d, str)]
        _remove_empty_dirs(made)
        kept += [d for d in made if os.path.isdir(d)]
        _drop_intent(path, shot)
    return kept


def _remove_empty_dirs(dirs) -> None:
    for d in sorted(dirs, key=len, reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(d)


def recover(journal: jr.Journal, leftover: list[str] | None = None) -> str:
    """Finish a run that was interrupted: forward if every write landed, else back to the user's bytes.

    ``leftover`` receives the folders the run created that are not empty yet (the caller's lock files
    are still in them): remove them once the locks are released.
    """
    previous = {}
    if journal.previous:
        prev = jr.Journal.from_json(journal.previous, journal.shot, journal.folder)
        previous = {r.path: r for r in prev.files}
    if all(r.written is None or _matches(_digest_or_none(r.path), r.written) for r in journal.files):
        for r in journal.files:  # what is left to do: remove the earlier run's stale files
            if r.written is None and r.created and r.path in previous and \
                    _matches(_digest_or_none(r.path), previous[r.path].written):
                os.remove(r.path)
        journal.files = [r for r in journal.files if r.written is not None and r.written != r.original]
        journal.state, journal.previous = "committed", None
        if journal.files:
            jr.save(journal)
        else:
            jr.remove(journal)
        return "finished recording an interrupted run whose writes had all landed"
    restores = {}
    for r in journal.files:
        now = _digest_or_none(r.path)
        known = (r.written, r.original, previous[r.path].written if r.path in previous else None)
        if r.created:
            if now is not None and not _matches(now, *known):
                raise InputError(f"an interrupted run left {r.path}, which has changed since; nothing was changed. "
                                 f"Remove {journal.folder} to forget that run", file=journal.shot)
        elif not _matches(now, r.original):
            if now is not None and not _matches(now, *known):
                raise InputError(f"an interrupted run wrote {r.path}, which has changed since; nothing was changed "
                                 f"(its original is kept at {journal.original_path(r)})", file=journal.shot)
            restores[r.path] = jr.original_bytes(journal, r)  # verified before anything is written
    for path, data in restores.items():
        atomic_files.write_bytes(path, data)
        atomic_files.reload_cached(path)
    for r in journal.files:
        if r.created and os.path.exists(r.path):
            os.remove(r.path)
            atomic_files.reload_cached(r.path)
    _remove_empty_dirs(journal.created_dirs)
    if leftover is not None:
        leftover.extend(d for d in journal.created_dirs if os.path.isdir(d))
    jr.remove(journal)
    return "rolled back an interrupted run: its files are back as they were before anymole-usd touched them"


def undo(shot: str, homes: tuple[str, ...] = (), keep_created: bool = False, command: str = "inbetween") -> dict:
    """Undo ``command``'s runs on ``shot`` from its journal. Returns {"actions": [...], "notes": [...]}."""
    shot = os.path.abspath(shot)
    report: dict = {"actions": [], "notes": []}
    found = jr.load(shot, homes, command)
    if found is None:
        atomic_files.clean_stale_temps(os.path.dirname(shot))
        clean_after_killed_run(shot, homes, command)
        if any(os.path.isdir(jr.journal_folder(shot, h, command)) for h in (None,) + tuple(homes)):
            # a run killed before its journal left its record folder: clean it under the shot's lock
            # (a live run holding it is refused, never cleaned under)
            with LayerLocks() as held:
                try:
                    held.acquire(shot)
                except InputError:  # a live run has it, or its folder takes no lock file: leave it
                    return report
                if jr.load(shot, homes, command) is None:
                    jr.discard_unrecorded(shot, homes, command)
                    return report
            found = jr.load(shot, homes, command)
        else:
            return report
    locks = LayerLocks()
    made: list[str] = []
    try:
        for r in found.files:
            if os.path.isdir(os.path.dirname(r.path)):
                locks.acquire(r.path)
        atomic_files.clean_stale_temps(os.path.dirname(shot))
        made += clean_after_killed_run(shot, homes, command)
        found = jr.load(shot, homes, command)  # re-read under the locks
        if found is None:
            return report
        if found.state != "committed":
            note = recover(found, made)
            report["notes"].append(note)
            found = jr.load(shot, homes, command)
            if found is None:  # rolled back: the files are the user's own again
                report["actions"].append({"path": shot, "action": "rolled back"})
                return report
        _check_on_top(shot, homes, found, "undo this")
        plan = []
        for r in found.files:
            now = _digest_or_none(r.path)
            if r.created:
                if keep_created:
                    report["notes"].append(f"kept {r.path} (no longer tracked)")
                elif now is None:
                    report["notes"].append(f"{r.path} was already gone")
                elif _matches(now, r.written):
                    plan.append((r, "removed", None))
                else:
                    report["notes"].append(f"left {r.path}: it changed after anymole-usd wrote it")
            elif _matches(now, r.original):
                continue
            elif _matches(now, r.written) or now is None:
                plan.append((r, "restored", jr.original_bytes(found, r)))  # verified now, before any write
            else:
                try:
                    data = _strip_text(_read(r.path), r.edits, _original_for_strip(found, r))
                except ValueError as exc:
                    raise InputError(f"{exc}; it changed after anymole-usd's run and cannot be read, so nothing "
                                     f"was changed (its state before the run is at {found.original_path(r)})",
                                     file=r.path) from None
                plan.append((r, "stripped", data))
                report["notes"].append(f"{r.path} was changed after the run: removed only anymole-usd's edits "
                                       f"({', '.join(_edit_names(r.edits))}) and kept yours")
        plan.sort(key=lambda item: item[1] == "removed")  # the shot stops naming a layer before it goes
        for r, action, data in plan:
            if action == "removed":
                os.remove(r.path)
            else:
                atomic_files.write_bytes(r.path, data)
            atomic_files.reload_cached(r.path)
            report["actions"].append({"path": r.path, "action": action})
        jr.remove(found)
        made += found.created_dirs
    finally:
        locks.release()
        _remove_empty_dirs(made)  # after the lock files in them are gone
    return report


def _edit_names(edits: dict) -> list[str]:
    names = [f"sublayer {edits['sublayer']}"] if edits.get("sublayer") else []
    names += [f"binding of {p}" for p in edits.get("relationships", {})]
    names += [f"in-place samples of {p}" for p in edits.get("in_place", {})]
    return names or ["nothing recorded"]


def result_is_current(shot: str, options_digest: str, homes: tuple[str, ...] = (), command: str = "inbetween") -> bool:
    """True when ``command``'s last run used ``options_digest`` and nothing it read or wrote has changed since."""
    try:
        found = jr.load(shot, homes, command)
    except InputError:
        return False
    if found is None or found.state != "committed" or found.options_digest != options_digest:
        return False
    written = {r.path: r for r in found.files}
    for r in found.files:
        if not _matches(_digest_or_none(r.path), r.written):
            return False
    for item in found.inputs:
        if item["path"] in written:
            continue
        if not _matches(_digest_or_none(item["path"]), item):
            return False
    return True
