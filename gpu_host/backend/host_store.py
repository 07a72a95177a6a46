"""The host-local store the backend's worker processes share: SQLite in WAL mode.

What must hold across the workers of one host lives here, not in a process:
- the open sessions (one row each, with the worker's pid and the session's models), so that
  the per-user limit holds host-wide, the host record gets the host's total, and the models
  in use are known;
- the socket tickets already used (the replay cache, `lambdas.domain.tickets.ReplayGuard`),
  so that a ticket opens one socket per host, not one per worker;
- marks: the activity heartbeat's last time and the milestones already reported, so that
  the host record gets one heartbeat per period and each milestone once, whatever the number
  of workers;
- the models Triton holds (one row per model: loading, loaded or unloading, which worker is
  loading or unloading it, when a session last used it), so that a model asked for by many
  sessions on many workers at once loads once, and the model budget holds host-wide
  (`claim_model`, deciding with `model_budget.plan_load`).

Every decision is one short `BEGIN IMMEDIATE` transaction: SQLite lets one writer in at a
time, so two workers cannot both admit a user's last allowed session. The store is
host-local and lives one backend run: the supervisor creates it afresh at start
(`HostStore.create`), workers open it (`HostStore.open`).

Bounds and what happens at them (all refuse; nothing live is ever evicted):
- sessions: at most `max_per_user` per user and MAX_SESSIONS in all; one more is refused
  (`TooManySessionsError`, the hello closes 4429). A dead worker's rows are removed: by the
  supervisor when it reaps the worker (`purge_worker`), and by the next admission for any
  pid that is no longer alive (`purge_dead_workers`, a backstop).
- session models: one row per model of an open session (bounded by the sessions).
- tickets: at most REPLAY_CACHE_SIZE live ones; an entry is dropped once its ticket expired,
  and a new ticket is refused while the cache is full of live ones (fail closed).
- marks: a fixed set of names (the heartbeat and the milestones).
- models: at most the served models (one row each); the budget decides how many are loaded.
  A row left loading or unloading by a dead worker is removed at the next claim (Triton is
  asked again then).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from gpu_host.backend.model_budget import LoadedModel, ModelState, Refuse, plan_load
from lambdas.domain.tickets import REPLAY_CACHE_SIZE, ReplayCacheFullError, ReplayedTicketError

log = logging.getLogger(__name__)

FILE_NAME: Final = "host.sqlite3"
MAX_SESSIONS: Final = 4096
"""Open sessions on one host, all users together: far above what a GPU serves (~150 at
15 fps on an H200), low enough that a flood of hellos cannot grow the store without end."""
BUSY_TIMEOUT_S: Final = 5.0
"""How long a transaction waits for another worker's; each holds the lock for well under a
millisecond, so reaching this means a worker hangs inside one."""
HEARTBEAT_MARK: Final = "heartbeat"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    pid INTEGER NOT NULL,
    opened_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user);
CREATE INDEX IF NOT EXISTS sessions_by_pid ON sessions (pid);
CREATE TABLE IF NOT EXISTS session_models (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    PRIMARY KEY (session_id, model)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tickets (
    jti TEXT PRIMARY KEY,
    forget_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tickets_by_expiry ON tickets (forget_at);
CREATE TABLE IF NOT EXISTS marks (
    name TEXT PRIMARY KEY,
    at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('loading', 'loaded', 'unloading')),
    owner INTEGER,
    last_used REAL NOT NULL
) WITHOUT ROWID;
"""


class ClaimAction(StrEnum):
    READY = "ready"
    """Loaded: use it (the store says so; Triton may have lost it since, see the loader)."""
    WAIT = "wait"
    """Another worker (or session) is loading or unloading it: ask again shortly."""
    LOAD = "load"
    """This caller loads it, after unloading `evict`; it must report both outcomes."""
    REFUSED = "refused"
    """The model budget is full of models in use: `reason` says so."""


@dataclass(frozen=True, slots=True)
class ModelClaim:
    action: ClaimAction
    evict: tuple[str, ...] = ()
    reason: str = ""


class TooManySessionsError(Exception):
    """The user already has the maximum number of open sessions (or the host is full)."""


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def heartbeat_due(last: float | None, now: float, period_s: float) -> bool:
    """An activity heartbeat is due when none was sent yet or `period_s` has passed."""
    return last is None or now - last >= period_s


class HostStore:
    """One connection to the host's store. Thread-safe: the backend calls it from worker
    threads (`asyncio.to_thread`), one call at a time per connection."""

    def __init__(self, path: Path, *, pid: int | None = None) -> None:
        self.path = path
        self.pid = os.getpid() if pid is None else pid
        """The worker whose sessions this connection admits."""
        self._lock = threading.Lock()
        # Autocommit mode (isolation_level=None): transactions are the explicit BEGIN
        # IMMEDIATE below, never the module's implicit deferred ones.
        self._db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode = WAL")
        # The store lives one run on a tmpfs (/run): a commit needs no fsync, and a crash of
        # the machine loses nothing that outlives it anyway.
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.executescript(_SCHEMA)  # idempotent: every worker may be the first

    @classmethod
    def create(cls, directory: Path) -> HostStore:
        """A fresh store in `directory` (the supervisor, at start): whatever a previous run
        left there belongs to processes that no longer exist."""
        directory.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            (directory / f"{FILE_NAME}{suffix}").unlink(missing_ok=True)
        return cls(directory / FILE_NAME)

    @classmethod
    def open(cls, directory: Path) -> HostStore:
        """The store in `directory`, created when missing (a worker; a lone app)."""
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory / FILE_NAME)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, params))

    # -- sessions -------------------------------------------------------------------------

    def admit(
        self,
        *,
        session_id: str,
        user: str,
        models: tuple[str, ...],
        max_per_user: int,
        now: float | None = None,
        alive: Callable[[int], bool] = pid_alive,
    ) -> None:
        """Record a session of this worker for `user`, or raise `TooManySessionsError`."""
        with self._transaction() as db:
            self._purge_dead(db, alive)
            (held,) = db.execute("SELECT count(*) FROM sessions WHERE user = ?", (user,)).fetchone()
            if held >= max_per_user:
                raise TooManySessionsError(
                    f"user already has {held} open sessions (limit {max_per_user})"
                )
            (total,) = db.execute("SELECT count(*) FROM sessions").fetchone()
            if total >= MAX_SESSIONS:
                raise TooManySessionsError(
                    f"this host has {total} open sessions, its limit; try another time"
                )
            db.execute(
                "INSERT INTO sessions (id, user, pid, opened_at) VALUES (?, ?, ?, ?)",
                (session_id, user, self.pid, time.time() if now is None else now),
            )
            db.executemany(
                "INSERT INTO session_models (session_id, model) VALUES (?, ?)",
                [(session_id, model) for model in dict.fromkeys(models)],
            )

    def release(self, session_id: str, *, now: float | None = None) -> None:
        """Remove the session; its models were last used now (the budget's LRU order)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE models SET last_used = ? WHERE name IN "
                "(SELECT model FROM session_models WHERE session_id = ?)",
                (time.time() if now is None else now, session_id),
            )
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def session_count(self) -> int:
        """Open sessions on the host, every worker's."""
        ((count,),) = self._read("SELECT count(*) FROM sessions")
        return int(count)

    def sessions_of(self, user: str) -> int:
        ((count,),) = self._read("SELECT count(*) FROM sessions WHERE user = ?", user)
        return int(count)

    def models_in_use(self) -> dict[str, int]:
        """How many open sessions use each model, host-wide (models nobody uses are absent)."""
        with self._lock:
            return self._in_use(self._db)

    def purge_worker(self, pid: int) -> int:
        """Remove the sessions of worker `pid` (it died); how many there were."""
        with self._transaction() as db:
            return db.execute("DELETE FROM sessions WHERE pid = ?", (pid,)).rowcount

    def purge_dead_workers(self, alive: Callable[[int], bool] = pid_alive) -> int:
        with self._transaction() as db:
            return self._purge_dead(db, alive)

    def _purge_dead(self, db: sqlite3.Connection, alive: Callable[[int], bool]) -> int:
        pids = [pid for (pid,) in db.execute("SELECT DISTINCT pid FROM sessions")]
        dead = [pid for pid in pids if pid != self.pid and not alive(pid)]
        removed = 0
        for pid in dead:
            removed += db.execute("DELETE FROM sessions WHERE pid = ?", (pid,)).rowcount
        if removed:
            log.warning("removed %d sessions of dead workers %s", removed, dead)
        return removed

    # -- tickets (lambdas.domain.tickets.ReplayGuard) -------------------------------------

    def claim(self, ticket_id: str, *, forget_at: float, now: float) -> None:
        """Record `ticket_id` as used until `forget_at`, or raise if any worker of this host
        used it before (or the cache is full of live tickets)."""
        with self._transaction() as db:
            db.execute("DELETE FROM tickets WHERE forget_at <= ?", (now,))
            if db.execute("SELECT 1 FROM tickets WHERE jti = ?", (ticket_id,)).fetchone():
                raise ReplayedTicketError("ticket already used: ask for a fresh one")
            (held,) = db.execute("SELECT count(*) FROM tickets").fetchone()
            if held >= REPLAY_CACHE_SIZE:
                raise ReplayCacheFullError(
                    "too many tickets in flight on this host; try again in a minute"
                )
            db.execute("INSERT INTO tickets (jti, forget_at) VALUES (?, ?)", (ticket_id, forget_at))

    # -- marks: what the host record gets once -------------------------------------------

    def claim_milestone(self, name: str, at: float) -> bool:
        """True for the first worker to reach milestone `name` in this run (it reports it)."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO marks (name, at) VALUES (?, ?)", (f"milestone:{name}", at)
            )
            return cursor.rowcount == 1

    def claim_heartbeat(self, now: float, period_s: float) -> float:
        """Take the host's heartbeat at `now` when one is due (`heartbeat_due`); return the
        host's last heartbeat time afterwards — `now` when this caller is to send it."""
        with self._transaction() as db:
            row = db.execute("SELECT at FROM marks WHERE name = ?", (HEARTBEAT_MARK,)).fetchone()
            last: float | None = None if row is None else float(row[0])
            if not heartbeat_due(last, now, period_s):
                assert last is not None
                return last
            db.execute(
                "INSERT INTO marks (name, at) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET at = excluded.at",
                (HEARTBEAT_MARK, now),
            )
            return now

    # -- models Triton holds (model_loader.ModelLoader) -----------------------------------

    def claim_model(
        self,
        name: str,
        *,
        budget: int,
        pinned: Collection[str] = (),
        now: float | None = None,
        alive: Callable[[int], bool] = pid_alive,
    ) -> ModelClaim:
        """Decide, host-wide and at once, what this worker does about model `name`: use it,
        wait for another's load or unload of it, load it (after unloading the models the
        budget says to; they are marked unloading by this worker), or give up."""
        now = time.time() if now is None else now
        with self._transaction() as db:
            self._purge_dead(db, alive)
            self._purge_dead_model_owners(db, alive)
            rows = self._model_rows(db)
            mine = next((row for row in rows if row.name == name), None)
            if mine is not None:
                if mine.state is not ModelState.LOADED:
                    return ModelClaim(ClaimAction.WAIT)
                db.execute("UPDATE models SET last_used = ? WHERE name = ?", (now, name))
                return ModelClaim(ClaimAction.READY)
            decision = plan_load(rows, name, budget=budget, in_use=self._in_use(db), pinned=pinned)
            if isinstance(decision, Refuse):
                return ModelClaim(ClaimAction.REFUSED, reason=decision.reason)
            db.executemany(
                "UPDATE models SET state = ?, owner = ? WHERE name = ?",
                [(ModelState.UNLOADING.value, self.pid, evicted) for evicted in decision.evict],
            )
            db.execute(
                "INSERT INTO models (name, state, owner, last_used) VALUES (?, ?, ?, ?)",
                (name, ModelState.LOADING.value, self.pid, now),
            )
            return ModelClaim(ClaimAction.LOAD, evict=decision.evict)

    def finish_load(self, name: str, *, loaded: bool, now: float | None = None) -> None:
        """This worker's load of `name` ended: loaded (now its last use), or failed (the row
        goes: the next claim tries again)."""
        with self._transaction() as db:
            if loaded:
                db.execute(
                    "UPDATE models SET state = ?, owner = NULL, last_used = ? "
                    "WHERE name = ? AND owner = ?",
                    (ModelState.LOADED.value, time.time() if now is None else now, name, self.pid),
                )
            else:
                db.execute("DELETE FROM models WHERE name = ? AND owner = ?", (name, self.pid))

    def finish_unload(self, name: str) -> None:
        """This worker's unload of `name` ended (asked of Triton, whatever it answered)."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM models WHERE name = ? AND state = ? AND owner = ?",
                (name, ModelState.UNLOADING.value, self.pid),
            )

    def forget_model(self, name: str) -> None:
        """`name` is recorded loaded but Triton does not have it (Triton restarted): drop
        the row, so that the next claim loads it again."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM models WHERE name = ? AND state = ?",
                (name, ModelState.LOADED.value),
            )

    def loaded_models(self) -> tuple[str, ...]:
        """The models loaded now, by name (the host record's `models_loaded`)."""
        rows = self._read(
            "SELECT name FROM models WHERE state = ? ORDER BY name", ModelState.LOADED.value
        )
        return tuple(str(name) for (name,) in rows)

    def models(self) -> tuple[LoadedModel, ...]:
        """Every model row, by name (what the budget decides on)."""
        with self._lock:
            return tuple(self._model_rows(self._db))

    @staticmethod
    def _model_rows(db: sqlite3.Connection) -> list[LoadedModel]:
        rows = db.execute("SELECT name, state, last_used FROM models ORDER BY name")
        return [LoadedModel(str(n), ModelState(state), float(at)) for n, state, at in rows]

    @staticmethod
    def _in_use(db: sqlite3.Connection) -> dict[str, int]:
        rows = db.execute("SELECT model, count(*) FROM session_models GROUP BY model")
        return {str(model): int(n) for model, n in rows}

    def _purge_dead_model_owners(
        self, db: sqlite3.Connection, alive: Callable[[int], bool]
    ) -> None:
        owners: Iterable[tuple[int]] = db.execute(
            "SELECT DISTINCT owner FROM models WHERE owner IS NOT NULL"
        ).fetchall()
        for (owner,) in owners:
            if owner != self.pid and not alive(owner):
                gone = db.execute("DELETE FROM models WHERE owner = ?", (owner,)).rowcount
                log.warning("dropped %d model loads/unloads of dead worker %d", gone, owner)
