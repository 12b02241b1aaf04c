"""Claims: one lock file per run, so that concurrent sweeps on one store share the work.

A sweep claims a run before it starts it (locally) or submits it (Dask: the client claims) by
creating ``claims/<run_id>.claim`` under the store with ``O_CREAT | O_EXCL``, atomic on POSIX
file systems; the file holds the claimer's pid and host.  A sweep that finds a run claimed
leaves it to its holder and looks again later: once the run is stored it is done, and if the
claim was released without a stored run (that sweep was interrupted), or is stale (same host,
pid no longer alive), it claims the run and computes it.  A claim is released when its run is
stored and, for the runs still in flight, when the sweep ends (Ctrl-C included).  A claim held
on another host is never judged stale: it is released by its own sweep.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from collections import deque
from pathlib import Path
from typing import Callable, Generic, Iterable, TypeVar

POLL_SECONDS = 0.5          # how often claims held by other sweeps are looked at again
UNWRITTEN_SECONDS = 10.0    # a claim file still empty after this is the trace of a crash
Spec = TypeVar("Spec")
log = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it exists, under another user
        return True
    return True


class Claims:
    """The claim files of one store, and the ones this process holds."""

    def __init__(self, root: str | Path):
        self.folder = Path(root) / "claims"
        self.host = socket.gethostname()
        self.held: set[str] = set()

    def path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.claim"

    def claim(self, run_id: str) -> bool:
        """Claim a run: True when this process now holds it (also by taking over a stale
        claim), False when another live sweep does."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return self._create(run_id) or self._take_over(run_id)

    def _create(self, run_id: str) -> bool:
        try:
            fd = os.open(self.path(run_id), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            json.dump({"pid": os.getpid(), "host": self.host, "time": time.time()}, fh)
        self.held.add(run_id)
        return True

    def _take_over(self, run_id: str) -> bool:
        """Replace the claim if it is stale; serialized by an flock so that two sweeps never
        both remove a claim and so both run it."""
        with open(self.folder / ".takeover.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = self.path(run_id)
            if path.exists() and not self.stale(path):
                return False
            path.unlink(missing_ok=True)
            return self._create(run_id)

    def stale(self, path: Path) -> bool:
        """A claim of a dead process on this host (or one never written, long ago)."""
        try:
            text, written = path.read_text(), path.stat().st_mtime
        except FileNotFoundError:
            return True
        try:
            holder = json.loads(text)
            pid, host = int(holder["pid"]), str(holder["host"])
        except (ValueError, KeyError, TypeError):
            return time.time() - written > UNWRITTEN_SECONDS
        return host == self.host and pid != os.getpid() and not pid_alive(pid)

    def release(self, run_id: str) -> None:
        if run_id in self.held:
            self.path(run_id).unlink(missing_ok=True)
            self.held.discard(run_id)

    def release_all(self) -> None:
        for run_id in list(self.held):
            self.release(run_id)


class WorkQueue(Generic[Spec]):
    """Runs handed out one at a time: :meth:`take` gives the next one to start, or None when
    none can start now; :attr:`done` is true when none is left to start or to wait for."""

    def __init__(self, specs: Iterable[Spec]):
        self.fresh = deque(specs)

    def take(self) -> Spec | None:
        return self.fresh.popleft() if self.fresh else None

    @property
    def done(self) -> bool:
        return not self.fresh


class ClaimQueue(WorkQueue[Spec]):
    """A :class:`WorkQueue` that hands out only the runs it could claim.

    ``stored(run_id)`` tells whether a run is in the store already; it is asked after each
    claim, so a run stored by another sweep (which stores before it releases) never runs twice.
    """

    def __init__(self, specs: Iterable[Spec], claims: Claims, stored: Callable[[str], bool]):
        super().__init__(specs)
        self.claims, self.stored = claims, stored
        self.waiting: dict[str, Spec] = {}
        self.next_look, self.announced = 0.0, False

    def take(self) -> Spec | None:
        while self.fresh:
            spec = self.fresh.popleft()
            if self._claim(spec):
                return spec
        return self._from_waiting()

    def _claim(self, spec: Spec) -> bool:
        run_id = spec.run_id
        if not self.claims.claim(run_id):
            self.waiting[run_id] = spec
            return False
        self.waiting.pop(run_id, None)
        if self.stored(run_id):
            self.claims.release(run_id)
            return False
        return True

    def _from_waiting(self) -> Spec | None:
        if not self.waiting or time.monotonic() < self.next_look:
            return None
        if not self.announced:
            self.announced = True
            log.warning("waiting for %d run(s) claimed by another sweep; a claim in %s left by "
                        "a sweep that died on another host stays until its file is removed",
                        len(self.waiting), self.claims.folder)
        self.next_look = time.monotonic() + POLL_SECONDS
        for run_id, spec in list(self.waiting.items()):
            if self.stored(run_id):
                del self.waiting[run_id]
            elif self._claim(spec):
                return spec
        return None

    @property
    def done(self) -> bool:
        return not self.fresh and not self.waiting
