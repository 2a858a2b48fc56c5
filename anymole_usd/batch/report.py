"""What a batch did: one record per shot, a summary, the batch exit code and the JSON report."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

DONE, SKIPPED, FAILED = "done", "skipped", "failed"

# Exit classes, per shot and for the whole batch (the same codes as `inbetween`).
EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class ShotResult:
    """One shot's outcome. ``exit_code`` is the class `inbetween` would have exited with."""

    shot: str
    status: str
    error: str | None = None
    seconds: float = 0.0  # wall time of the shot in its worker (all attempts)
    output: str | list[str] | None = None
    exit_code: int = EXIT_OK
    reason: str | None = None  # why a shot was skipped
    attempts: int = 0
    filled_frames: int = 0

    @classmethod
    def failed(cls, shot: str, error: str, exit_code: int, **kw) -> "ShotResult":
        return cls(shot=shot, status=FAILED, error=error, exit_code=exit_code, **kw)

    @classmethod
    def skipped(cls, shot: str, reason: str, **kw) -> "ShotResult":
        return cls(shot=shot, status=SKIPPED, reason=reason, **kw)

    @property
    def interrupted(self) -> bool:
        return self.exit_code == EXIT_INTERRUPTED

    def to_dict(self) -> dict:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        return d


def interrupted(shot: str, started: bool, seconds: float = 0.0, attempts: int = 0) -> ShotResult:
    what = f"stopped while running; {left_behind(shot)}" if started else "not started"
    return ShotResult.failed(shot, f"interrupted: {what}", EXIT_INTERRUPTED, seconds=seconds, attempts=attempts)


def left_behind(shot: str) -> str:
    """What a run that ended without reporting left: nothing, or files its pending journal must put right."""
    from ..atomic_files import same
    from ..errors import InputError
    from ..journal import load

    try:
        journal = load(shot)
    except InputError:
        journal = None
    if journal is None or journal.state != "pending":
        return "the shot is untouched"
    changed = [r.path for r in journal.files
               if (os.path.exists(r.path) if r.original is None else not same(r.path, r.original))]
    if not changed:
        return "the shot is untouched"
    return (f"it died while writing {os.path.basename(changed[0])}: the shot's next run (or `inbetween --undo`) "
            f"completes or rolls back that write")


@dataclass
class BatchReport:
    shots: list[ShotResult]
    engine: str = "pool"
    workers: int = 1
    seconds: float = 0.0
    interrupted: bool = False
    ignored: list[dict] = field(default_factory=list)  # discovered files that are not shots, and why

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.shots)

    @property
    def exit_code(self) -> int:
        """130 when interrupted; else 1 if any shot failed internally, 2 if any had bad input, else 0."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        codes = {r.exit_code for r in self.shots if r.status == FAILED}
        for code in (EXIT_INTERNAL, EXIT_INPUT):
            if code in codes:
                return code
        return EXIT_OK

    def summary(self) -> dict:
        failed = [r for r in self.shots if r.status == FAILED]
        ran = [r for r in self.shots if r.attempts]
        return {
            "total": len(self.shots), "done": self.count(DONE), "skipped": self.count(SKIPPED),
            "failed": len(failed),
            "bad_input": sum(r.exit_code == EXIT_INPUT for r in failed),
            "internal": sum(r.exit_code == EXIT_INTERNAL for r in failed),
            "interrupted": sum(r.interrupted for r in failed),
            "retried": sum(r.attempts > 1 for r in ran),
            "engine": self.engine, "workers": self.workers, "seconds": round(self.seconds, 3),
            "shot_seconds": round(sum(r.seconds for r in ran), 3), "exit_code": self.exit_code,
        }

    def to_dict(self) -> dict:
        return {"shots": [r.to_dict() for r in self.shots], "summary": self.summary(), "ignored": self.ignored}

    def write(self, path: str) -> None:
        """Write the JSON report atomically (a farm may poll the file while it is written)."""
        from ..atomic_files import staging

        path = os.path.abspath(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with staging(path) as tmp, open(tmp, "w") as handle:
            json.dump(self.to_dict(), handle, indent=2)
