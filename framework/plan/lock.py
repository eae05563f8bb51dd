"""The apply lock: two applies never interleave; the second fails fast naming the holder.

Local projects lock ``<project>/.pipectl/apply.lock`` with :mod:`filelock` (an OS lock, so
a crashed holder releases it automatically) and write the holder's pid, host and start time
next to it in ``apply.lock.json`` for the error message. On Google Cloud several operators
share no file system: the same interface would be implemented as a lease document in the
StateStore (Firestore ``pipectl_locks/apply``: created in a transaction only if absent or
expired, renewed while applying, deleted at the end) - see docs/plan-apply.md.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from framework.errors import PlanError


class ApplyLock:
    """Context manager around a non-blocking file lock."""

    def __init__(self, project_root: str | Path, timeout: float = 0.0):
        folder = Path(project_root) / ".pipectl"
        self.path = folder / "apply.lock"
        self.info_path = folder / "apply.lock.json"
        self.timeout = timeout
        self._lock = None

    def holder(self) -> dict | None:
        try:
            return json.loads(self.info_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def acquire(self) -> "ApplyLock":
        import filelock

        from framework.runtime.paths import ensure_state_dir

        ensure_state_dir(self.path.parent.parent)  # .pipectl/ with its .gitignore
        lock = filelock.FileLock(str(self.path))
        try:
            lock.acquire(timeout=self.timeout)
        except filelock.Timeout:
            info = self.holder() or {}
            who = f"pid {info.get('pid', '?')} on {info.get('host', '?')} since {info.get('since', '?')}"
            raise PlanError(f"another `pipectl apply` holds the lock {self.path} ({who})",
                            hint="wait for it to finish; the lock is released automatically if that process exits") from None
        self._lock = lock
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        self.info_path.write_text(json.dumps(info))
        return self

    def release(self) -> None:
        if self._lock is not None:
            try:
                self.info_path.unlink()
            except FileNotFoundError:
                pass
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "ApplyLock":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


__all__ = ["ApplyLock"]
