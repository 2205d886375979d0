"""The study store: one SQLite file per study (``study.db``), written by one process.

Tables: ``meta`` (the resolved study config and its hash), ``trials`` (one row per arm x
seed with status, provenance and final metrics), ``metrics`` (long format: trial, update,
epoch, name, value) and ``events`` (what happened, when). Only the driver process
writes; workers return results. A trial becomes ``done`` (or ``diverged``) in the same
transaction that writes its metrics, so a killed run never leaves a finished-looking
trial with missing numbers; and a finished trial is never overwritten (a late result for
it is recorded as an event and dropped).

Readers (reports, findings) open the store read-only (``read_only=True``): they never
create, migrate or change a ``study.db``. A file that is not an lrlab store (damaged,
truncated, empty, or another program's database) raises `StoreError`, a ValueError
naming the file and what to do.
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id TEXT PRIMARY KEY, arm TEXT NOT NULL, seed INTEGER NOT NULL, config_hash TEXT NOT NULL,
    config TEXT NOT NULL, status TEXT NOT NULL, lrlab_version TEXT, git_commit TEXT,
    torch_version TEXT, started REAL, finished REAL, seconds REAL, updates INTEGER,
    tuning_updates INTEGER, final TEXT, error TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    trial_id TEXT NOT NULL, step INTEGER NOT NULL, epoch REAL NOT NULL, name TEXT NOT NULL,
    value REAL
);
CREATE INDEX IF NOT EXISTS metrics_trial ON metrics (trial_id, name, step);
CREATE TABLE IF NOT EXISTS events (
    time REAL NOT NULL, trial_id TEXT, kind TEXT NOT NULL, message TEXT NOT NULL
);
"""

STATUSES = ("pending", "running", "done", "diverged", "failed")
FINISHED = ("done", "diverged")
TABLES = frozenset({"meta", "trials", "metrics", "events"})

F = TypeVar("F", bound=Callable[..., Any])


class StoreError(ValueError):
    """A ``study.db`` lrlab cannot use; the message names the file and what to do."""


def _damaged(path: Path, why: str) -> StoreError:
    return StoreError(
        f"{str(path)!r} is not a readable lrlab study store ({why}); move it aside and run "
        f"the study again (lrlab study run STUDY --dir {str(path.parent)!r} --restart)"
    )


def _guarded(method: F) -> F:
    """Turn SQLite's errors (and rows lrlab did not write) into a StoreError naming the file."""

    @functools.wraps(method)
    def wrapper(self: StudyStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            raise
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise StoreError(
                    f"{str(self.path)!r} is locked by another process ({e}); try again when "
                    "it is done"
                ) from None
            raise _damaged(self.path, f"sqlite: {e}") from None
        except sqlite3.DatabaseError as e:
            raise _damaged(self.path, f"sqlite: {e}") from None
        except (json.JSONDecodeError, TypeError, KeyError) as e:
            raise _damaged(self.path, f"a row lrlab did not write: {e}") from None

    return wrapper  # type: ignore[return-value]


@dataclass
class TrialRow:
    """A trial as stored: identity, provenance, status and final metrics."""

    id: str
    arm: str
    seed: int
    config_hash: str
    config: dict[str, Any]
    status: str
    lrlab_version: str | None = None
    git_commit: str | None = None
    torch_version: str | None = None
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
    updates: int | None = None
    tuning_updates: int | None = None
    final: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


class StudyStore:
    """Read and write one study's ``study.db``; ``read_only=True`` only reads an existing one.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "study.db"
    >>> store = StudyStore(path)
    >>> store.meta("config") is None
    True
    >>> store.close()
    >>> StudyStore(path, read_only=True).trials()
    []
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._open()

    @_guarded
    def _open(self) -> None:
        exists = self.path.is_file()
        if self.read_only and not exists:
            raise StoreError(f"{str(self.path)!r} does not exist; run the study first")
        if exists and self.path.stat().st_size == 0:
            raise StoreError(
                f"{str(self.path)!r} is empty (0 bytes): it holds no results; move it aside "
                f"and run the study again (lrlab study run STUDY --dir {str(self.path.parent)!r}"
                " --restart)"
            )
        if self.read_only:
            self._db = _connect_read_only(self.path)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            tables = {
                r[0]
                for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            foreign = sorted(tables - TABLES)
            if foreign or (self.read_only and not tables >= TABLES):
                raise StoreError(
                    f"{str(self.path)!r} is not an lrlab study store (its tables: "
                    f"{', '.join(sorted(tables)) or 'none'}); point lrlab at a study directory"
                )
            if not self.read_only:
                if tables:  # never write into a damaged file: check every page first
                    problems = [r[0] for r in self._db.execute("PRAGMA quick_check")]
                    if problems != ["ok"]:
                        raise _damaged(self.path, f"sqlite quick_check: {problems[0]}")
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(SCHEMA)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise StoreError(f"{str(self.path)!r} was opened read-only; it cannot be written")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ meta
    @_guarded
    def meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    @_guarded
    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # ------------------------------------------------------------------ trials
    @_guarded
    def add_trials(self, rows: list[TrialRow]) -> None:
        """Insert trials that are not there yet (known ids are left as they are)."""
        with self.transaction() as db:
            for r in rows:
                db.execute(
                    "INSERT OR IGNORE INTO trials (id, arm, seed, config_hash, config, status) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (r.id, r.arm, r.seed, r.config_hash, json.dumps(r.config), "pending"),
                )

    @_guarded
    def mark_running(self, trial_id: str, provenance: dict[str, str]) -> None:
        """Record a trial's start; a finished trial stays finished (an ``ignored`` event)."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE trials SET status='running', started=COALESCE(started, ?), "
                "lrlab_version=?, git_commit=?, torch_version=? "
                "WHERE id=? AND status NOT IN ('done', 'diverged')",
                (
                    time.time(),
                    provenance.get("lrlab_version"),
                    provenance.get("git_commit"),
                    provenance.get("torch_version"),
                    trial_id,
                ),
            )
            kind, note = ("start", "") if cur.rowcount else ("ignored", "started when finished")
            db.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?)", (time.time(), trial_id, kind, note)
            )

    @_guarded
    def finish(self, result: dict[str, Any]) -> bool:
        """Write a trial's result (metrics, final row, the task's metric set) in one transaction.

        A trial already finished (done or diverged) keeps what is stored: a second
        result for it (a late failure, a duplicate run) is recorded as an ``ignored``
        event and dropped. Returns whether the result was written.
        """
        tid = result["id"]
        status = result["status"]
        if status not in STATUSES:
            raise ValueError(f"status={status!r} is invalid; expected one of {', '.join(STATUSES)}")
        with self.transaction() as db:
            row = db.execute("SELECT status FROM trials WHERE id = ?", (tid,)).fetchone()
            if row is not None and row[0] in FINISHED:
                db.execute(
                    "INSERT INTO events VALUES (?, ?, 'ignored', ?)",
                    (
                        time.time(),
                        tid,
                        f"a {status} result for a trial already {row[0]}; the stored one is kept",
                    ),
                )
                return False
            db.execute("DELETE FROM metrics WHERE trial_id = ?", (tid,))
            db.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?)",
                [
                    (tid, int(m["step"]), float(m["epoch"]), name, _num(v))
                    for m in result.get("history", [])
                    for name, v in m.items()
                    if name not in ("step", "epoch")
                ],
            )
            db.execute(
                "UPDATE trials SET status=?, finished=?, seconds=?, updates=?, tuning_updates=?, "
                "final=?, error=? WHERE id=?",
                (
                    status,
                    time.time(),
                    result.get("seconds"),
                    result.get("updates"),
                    result.get("tuning_updates"),
                    json.dumps(_clean(result.get("final", {}))),
                    result.get("error"),
                    tid,
                ),
            )
            db.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?)",
                (time.time(), tid, status, result.get("error") or ""),
            )
            if result.get("metrics"):  # the task's metric set, what reports read: with the
                # trial in one transaction, so a kill cannot leave rows without it
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('metrics', ?)",
                    (json.dumps(result["metrics"]),),
                )
        return True

    @_guarded
    def event(self, kind: str, message: str, trial_id: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?)", (time.time(), trial_id, kind, message)
            )

    @_guarded
    def trials(self, status: str | None = None) -> list[TrialRow]:
        sql = "SELECT * FROM trials" + (" WHERE status = ?" if status else "") + " ORDER BY rowid"
        cur = self._db.execute(sql, (status,) if status else ())
        names = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            d = dict(zip(names, row))
            d["config"] = json.loads(d["config"])
            d["final"] = json.loads(d["final"]) if d["final"] else {}
            out.append(TrialRow(**d))
        return out

    def trial(self, trial_id: str) -> TrialRow | None:
        return next((t for t in self.trials() if t.id == trial_id), None)

    # ------------------------------------------------------------------ metrics
    @_guarded
    def metric_names(self, trial_id: str) -> list[str]:
        rows = self._db.execute(
            "SELECT DISTINCT name FROM metrics WHERE trial_id = ? ORDER BY name", (trial_id,)
        ).fetchall()
        return [r[0] for r in rows]

    @_guarded
    def series(self, trial_id: str, name: str) -> tuple[list[int], list[float], list[float]]:
        """(steps, epochs, values) of one metric of one trial, in update order (None -> NaN)."""
        rows = self._db.execute(
            "SELECT step, epoch, value FROM metrics WHERE trial_id = ? AND name = ? ORDER BY step",
            (trial_id, name),
        ).fetchall()
        return (
            [r[0] for r in rows],
            [r[1] for r in rows],
            [math.nan if r[2] is None else r[2] for r in rows],
        )

    @_guarded
    def events(self, trial_id: str | None = None) -> list[tuple[float, str | None, str, str]]:
        sql = (
            "SELECT * FROM events" + (" WHERE trial_id = ?" if trial_id else "") + " ORDER BY time"
        )
        return list(self._db.execute(sql, (trial_id,) if trial_id else ()).fetchall())


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write ``path``.

    A WAL store is read through its ``-shm`` index, which SQLite creates beside the file
    when it can; in a read-only directory it cannot, and the file is opened as immutable.
    """
    uri = path.resolve().as_uri() + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        db.close()
        db = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None)
    return db


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj
