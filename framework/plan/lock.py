"""The apply lock: two applies never interleave; the second fails fast naming the holder.

Local projects lock ``<project>/.pipectl/apply.lock`` with :mod:`filelock` (an OS lock, so
a crashed holder releases it automatically) and write the holder's pid, host and start time
next to it in ``apply.lock.json`` for the error message. On Google Cloud several operators
share no file system: :class:`LeaseLock` keeps a lease document in the StateStore
(Firestore ``pipectl_locks/apply``), created in a transaction only if absent or expired,
renewed by :meth:`heartbeat` while applying and deleted at the end; a crashed holder's
lease simply expires.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

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

        from framework.config.paths import ensure_state_dir

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

    def heartbeat(self) -> None:
        """An OS lock needs no renewal (same interface as :class:`LeaseLock`)."""

    def __enter__(self) -> "ApplyLock":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


LOCK_COLLECTION = "pipectl_locks"


class LeaseLock:
    """A lease in a StateStore document: the apply lock when no file system is shared.

    ``acquire`` creates ``pipectl_locks/<name>`` in a transaction unless another holder's
    lease is still valid (then it fails fast naming that holder); ``heartbeat`` extends the
    lease (the applier calls it before every step); ``release`` deletes it if still ours.
    """

    def __init__(self, state: Any, project: str, name: str = "apply", ttl_seconds: float = 120.0,
                 clock: Callable[[], float] = time.time):
        self.state = state
        self.key = f"{project}.{name}"
        self.ttl = ttl_seconds
        self.clock = clock
        self.token = uuid.uuid4().hex
        self.held = False

    def _doc(self) -> dict:
        now = self.clock()
        return {"token": self.token, "pid": os.getpid(), "host": socket.gethostname(),
                "since": dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(timespec="seconds"),
                "expires_at": now + self.ttl}

    def acquire(self) -> "LeaseLock":
        def take(txn: Any) -> dict | None:
            current = txn.get(LOCK_COLLECTION, self.key)
            if current and current.get("token") != self.token and float(current.get("expires_at", 0)) > self.clock():
                return current
            txn.set(LOCK_COLLECTION, self.key, self._doc())
            return None

        holder = self.state.run_transaction(take)
        if holder is not None:
            raise PlanError(f"another `pipectl apply` holds the lease {LOCK_COLLECTION}/{self.key} "
                            f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('since', '?')})",
                            hint=f"wait for it to finish; a crashed holder's lease expires after {int(self.ttl)} s")
        self.held = True
        return self

    def heartbeat(self) -> None:
        def renew(txn: Any) -> bool:
            current = txn.get(LOCK_COLLECTION, self.key)
            if not current or current.get("token") != self.token:
                return False
            txn.update(LOCK_COLLECTION, self.key, {"expires_at": self.clock() + self.ttl})
            return True

        if self.held and not self.state.run_transaction(renew):
            self.held = False
            raise PlanError(f"the apply lease {LOCK_COLLECTION}/{self.key} was lost (expired and taken by another apply)",
                            hint="run `pipectl plan` to see the current state before applying again")

    def release(self) -> None:
        def drop(txn: Any) -> None:
            current = txn.get(LOCK_COLLECTION, self.key)
            if current and current.get("token") == self.token:
                txn.delete(LOCK_COLLECTION, self.key)

        if self.held:
            self.state.run_transaction(drop)
            self.held = False

    def __enter__(self) -> "LeaseLock":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


__all__ = ["ApplyLock", "LeaseLock", "LOCK_COLLECTION"]
