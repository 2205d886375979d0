"""One writer per study directory: an OS file lock on ``DIR/study.lock``.

The driver of a study run holds the lock while it runs; a second run on the same
directory is refused with a message naming the holder (host, pid, start time), which
the holder writes into the lock file. The lock is an ``flock`` on an open file, so the
kernel releases it when the holder exits for any reason, SIGKILL included: a lock left
by a dead process is simply taken by the next run. The file itself is left in place
(deleting a lock file races with a process opening it).

Where ``fcntl`` is missing (Windows), the lock file is created exclusively instead, and
a file naming a process on this host that is no longer alive is taken over.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import socket
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "study.lock"


class StudyBusy(ValueError):
    """The study directory is in use by another process (named in the message)."""


def _holder_text() -> str:
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
    return f"host={socket.gethostname()} pid={os.getpid()} since={now}\n"


def _parse(text: str) -> dict[str, str]:
    fields = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        if sep:
            fields[key] = value
    if "since" in fields:  # the time holds spaces: take everything after since=
        fields["since"] = text.split("since=", 1)[1].strip()
    return fields


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return False
    return True


class StudyLock:
    """Hold ``directory/study.lock`` for as long as the ``with`` block runs.

    Raises:
        StudyBusy: another live process holds it (the message names its host and pid).

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with StudyLock(d):
    ...     try:
    ...         StudyLock(d).acquire()
    ...     except StudyBusy as e:
    ...         print("refused:", "is in use by another lrlab run" in str(e))
    refused: True
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    def holder(self) -> dict[str, str]:
        """What the holder wrote: ``host``, ``pid`` and ``since`` (empty when unknown)."""
        try:
            return _parse(self.path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return {}

    def _busy(self) -> StudyBusy:
        h = self.holder()
        who = (
            f"host {h.get('host', '?')}, pid {h.get('pid', '?')}, since {h.get('since', '?')}"
            if h
            else "a process that has not written its name yet"
        )
        return StudyBusy(
            f"study directory {str(self.directory)!r} is in use by another lrlab run ({who}); "
            "wait for it to finish or stop it, or use another --dir"
        )

    def acquire(self) -> StudyLock:
        """Take the lock or raise `StudyBusy`."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover - Windows
            return self._acquire_exclusive()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise self._busy() from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, _holder_text().encode())
        self._fd = fd
        return self

    def _acquire_exclusive(self) -> StudyLock:  # pragma: no cover - Windows
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                h = self.holder()
                same_host = h.get("host") == socket.gethostname()
                if same_host and h.get("pid", "").isdigit() and not _alive(int(h["pid"])):
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()  # left by a dead process: take it over
                    continue
                raise self._busy() from None
            os.write(fd, _holder_text().encode())
            self._fd = fd
            return self
        raise self._busy()

    def release(self) -> None:
        """Give the lock up (the file stays; an empty file means nobody holds it)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if fcntl is None:  # pragma: no cover - Windows
            os.close(fd)
            with contextlib.suppress(OSError):
                self.path.unlink()
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> StudyLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
