"""One process per embedded store folder, enforced with ``flock`` on a pid file.

chDB refuses a second process on the same folder only with an opaque engine error; this
lock turns that into a message a user can act on, and tells the CLI whether a worker is
running (so ``tidewatch sql`` can ask the worker instead of opening the folder).
The kernel releases the lock when the process dies, so a stale file never blocks.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Final

from stream.errors import StoreError

LOCK_NAME: Final = "tidewatch.lock"
_ATTEMPTS: Final = 4


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def lock_holder(folder: Path) -> int | None:
    """The pid holding ``folder``'s lock (0 if unknown), or ``None`` when it is free."""
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(path) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class FolderLock:
    """Exclusive, non-blocking lock on ``folder``; raises StoreError naming the holder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(_ATTEMPTS):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt < _ATTEMPTS - 1:  # lock_holder() may hold it for a moment
                    time.sleep(0.05)
        else:
            os.close(fd)
            pid = _read_pid(self.path)
            who = "this process" if pid == os.getpid() else f"process {pid or '?'}"
            raise StoreError(
                f"the embedded store {self.path.parent} is already open in {who}. The embedded "
                "(chDB) store is single-process: run one worker, and use `tidewatch sql` (it "
                "goes through the running worker). Several workers need a ClickHouse server: "
                "set store.kind=server and store.url (TIDEWATCH_STORE__KIND=server, "
                "TIDEWATCH_STORE__URL=http://host:8123)."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
