"""The coordinator's durable state: one SQLite file, with model versions as files beside it.

What is stored is exactly what a restarted coordinator needs to carry on: enrolment tokens and
clients (secrets only as SHA-256 digests), tasks, every round attempt with its outcome, who
reported in each, and every committed global version (weights and strategy state as files,
their digest and metrics in the database). Individual updates are never stored: they live
in the round's in-memory aggregator, so a crash mid-round loses the round, not correctness.

A secure round is different: its clients hold keys for that round only, and its training stage
is the long one, so it is worth carrying across a restart. The store keeps what the protocol
needs to go on (``secure_rounds``, files under ``secure/<round>``, and the task's two sum files
under ``secure/sums/<task>``): the public keys, indices and graph, the sealed share bundles the
server relays, the running *masked* sum with the clients in it, and the shares revealed for
unmasking, until the round closes (server/securestate.py). None of it is a plaintext update.

A commit writes the version's files first (atomically: temporary file, fsync, rename), then
records it in one transaction. A crash between the two leaves an orphan file that the retried
round overwrites; a version is never half-committed.

No request writes on its own. Check-ins happen many times per client per round, so:

    last_seen       kept in memory; written with the next transition, by ``flush_due`` (the
                    coordinator's tick) once FLUSH_S seconds have passed, and at close
    participants    the same, and at the latest in the round's commit transaction (a crash
                    fails the live round anyway: its rows were never what makes an update
                    count once)
    credentials     a credential → client id cache; ``revoke`` drops the client from it, and a
                    change by another process (``fedge token revoke`` on the data dir) clears it
                    before the next request is answered (SQLite's ``data_version``)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedge.server.errors import InvalidRequest, NotFound, Unauthenticated

FLUSH_S = 5.0  # how stale last_seen (and a live round's participants) may be on disk

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY, created_at REAL NOT NULL, used_at REAL, revoked_at REAL, client_id TEXT,
    nonce_hash TEXT);
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY, credential_hash TEXT UNIQUE NOT NULL, platform TEXT, name TEXT,
    enrolled_at REAL NOT NULL, last_seen REAL, revoked_at REAL);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY, config_json TEXT NOT NULL, spec_json TEXT NOT NULL,
    version INTEGER NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    task_id TEXT NOT NULL, version INTEGER NOT NULL, round_id INTEGER, sha256 TEXT NOT NULL,
    created_at REAL NOT NULL, metrics_json TEXT NOT NULL, PRIMARY KEY (task_id, version));
CREATE TABLE IF NOT EXISTS rounds (
    round_id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, number INTEGER NOT NULL,
    attempt INTEGER NOT NULL, phase TEXT NOT NULL, opened_at REAL NOT NULL, closed_at REAL,
    reason TEXT, metrics_json TEXT);
CREATE TABLE IF NOT EXISTS participants (
    round_id INTEGER NOT NULL, client_id TEXT NOT NULL, status TEXT NOT NULL, num_examples INTEGER,
    PRIMARY KEY (round_id, client_id));
CREATE TABLE IF NOT EXISTS secure_rounds (
    round_id INTEGER PRIMARY KEY, roster TEXT, bundles BLOB, progress TEXT);
"""
SECURE_COLUMNS = ("roster", "bundles", "progress")
# A round ends committed (a new version), scored (the devices scored the last version, nothing
# trained: TaskConfig.scoring_round) or failed; any other phase is a round under way.
CLOSED_PHASES = ("committed", "scored", "failed")
_OPEN = f"phase NOT IN ({', '.join(repr(p) for p in CLOSED_PHASES)})"
# Columns added after a table first shipped: a data dir from before gains them when opened.
ADDED_COLUMNS = (("tokens", "nonce_hash", "TEXT"),)
MAX_NONCE = 128
DATABASE = "fedge.sqlite"  # in the data dir


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(kind: str) -> str:
    """A random secret with a prefix naming its kind (and never starting with "-", which a CLI
    would read as an option)."""
    return f"fedge-{kind}-{secrets.token_urlsafe(24)}"


@dataclass(frozen=True)
class Version:
    task_id: str
    version: int
    round_id: int | None
    sha256: str
    metrics: dict[str, Any]


class StoreUnreadable(ValueError):
    """The SQLite file cannot be opened or written, is damaged, or is not a store: said in one
    line, never papered over."""

    @classmethod
    def of(cls, path: Path, error: sqlite3.Error) -> StoreUnreadable:
        if getattr(error, "sqlite_errorname", "").startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM")):
            advice = f"check that {path.parent} is a folder this user may write"
            return cls(f"{path}: cannot open the coordinator's store ({error}); {advice}")
        advice = "restore it from a backup, or move it aside to start with a new one"  # a damaged disk, a half copy
        return cls(f"{path}: cannot read the coordinator's store ({error}); {advice}")


class Store:
    """Thread-safe access to the SQLite file; every method is one transaction."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / DATABASE
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as error:
            raise StoreUnreadable.of(self.path, error) from None
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL: a commit survives the process being killed (even SIGKILL),
            # which is what tests/fault exercises; only an OS crash may lose the newest transactions.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._add_columns()
            self._data_version = self._db.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as error:
            self._db.close()
            raise StoreUnreadable.of(self.path, error) from None
        self._clients: dict[str, str] = {}  # credential -> client id, enrolled and not revoked
        # written later, in one transaction: client id -> (last seen, platform); (round, client) -> (status, examples)
        self._pending_lock = threading.Lock()
        self._seen: dict[str, tuple[float, str | None]] = {}
        self._participants: dict[tuple[int, str], tuple[str, int | None]] = {}
        self._flushed_at = time.monotonic()
        self._open = True

    def close(self) -> None:
        with self._lock:
            if self._open:
                self.flush()
                self._db.close()
                self._open = False

    def _add_columns(self) -> None:
        for table, column, kind in ADDED_COLUMNS:
            present = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- admin credential ---------------------------------------------------------------
    def admin_credential(self) -> str:
        """Created at first start and written to admin.token (0600) for local operators."""
        path = self.data_dir / "admin.token"
        with self.transaction() as db:
            row = db.execute("SELECT value FROM settings WHERE key = 'admin_hash'").fetchone()
            if row and path.exists() and digest(path.read_text().strip()) == row["value"]:
                return path.read_text().strip()
            credential = new_secret("admin")
            db.execute("INSERT OR REPLACE INTO settings VALUES ('admin_hash', ?)", (digest(credential),))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(credential + "\n")
        return credential

    def check_admin(self, credential: str) -> bool:
        row = self.query("SELECT value FROM settings WHERE key = 'admin_hash'")
        return bool(row) and secrets.compare_digest(row[0]["value"], digest(credential))

    # -- enrolment --------------------------------------------------------------------------
    def create_tokens(self, count: int) -> list[str]:
        tokens = [new_secret("token") for _ in range(count)]
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO tokens (token_hash, created_at) VALUES (?, ?)", [(digest(t), time.time()) for t in tokens]
            )
        return tokens

    def enroll(self, token: str, platform: str, name: str, nonce: str = "") -> tuple[str, str]:
        """Spend a one-time token; returns (client_id, credential).

        ``nonce`` is drawn once by the device and repeated on its retries: a retry whose reply was
        lost (the daemon died after the commit) gets the same client back with a fresh credential,
        where any other second use of the token is refused."""
        if len(nonce) > MAX_NONCE:
            raise InvalidRequest(f"enrolment nonce longer than {MAX_NONCE} characters")
        with self.transaction() as db:
            row = db.execute("SELECT * FROM tokens WHERE token_hash = ?", (digest(token),)).fetchone()
            if row is None:
                raise Unauthenticated("unknown enrolment token")
            if row["revoked_at"] is not None:
                raise Unauthenticated("this enrolment token was revoked")
            credential = new_secret("credential")
            if row["used_at"] is not None:
                return row["client_id"], self._reissue(db, row, nonce, credential)
            client_id, now = "c-" + secrets.token_hex(6), time.time()
            db.execute(
                "INSERT INTO clients (client_id, credential_hash, platform, name, enrolled_at, last_seen)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (client_id, digest(credential), platform[:64], name[:64], now, now),
            )
            db.execute(
                "UPDATE tokens SET used_at = ?, client_id = ?, nonce_hash = ? WHERE token_hash = ?",
                (now, client_id, digest(nonce) if nonce else None, digest(token)),
            )
        return client_id, credential

    def _reissue(self, db: sqlite3.Connection, token: sqlite3.Row, nonce: str, credential: str) -> str:
        """The retry of an enrolment that committed: the same device (same nonce) gets a new
        credential for its client, replacing the one that never reached it."""
        retry = bool(nonce) and token["nonce_hash"] is not None
        if not retry or not secrets.compare_digest(token["nonce_hash"], digest(nonce)):
            raise Unauthenticated("this enrolment token was already used; ask for a new one")
        updated = db.execute(
            "UPDATE clients SET credential_hash = ? WHERE client_id = ? AND revoked_at IS NULL",
            (digest(credential), token["client_id"]),
        ).rowcount
        if not updated:
            raise Unauthenticated("this client was revoked")
        self._forget(token["client_id"])
        return credential

    def _forget(self, client_id: str) -> None:
        """Drop a client's cached credential, which no longer holds."""
        self._clients = {key: cid for key, cid in self._clients.items() if cid != client_id}

    def authenticate(self, credential: str) -> str:
        """The client id of a valid credential; cached (by the credential itself: no hash per
        request), but a revocation is seen at the next request."""
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:  # another process wrote (a revocation, perhaps)
                self._clients.clear()
                self._data_version = version
            client_id = self._clients.get(credential)
            if client_id is not None:
                return client_id
            row = self._db.execute(
                "SELECT client_id, revoked_at FROM clients WHERE credential_hash = ?", (digest(credential),)
            ).fetchone()
            if row is None:  # the agent re-enrols on these words (fedge.client.agent.UNKNOWN_CREDENTIAL)
                raise Unauthenticated("unknown credential; enrol with a token first")
            if row["revoked_at"] is not None:
                raise Unauthenticated("this client was revoked")
            self._clients[credential] = row["client_id"]
            return row["client_id"]

    def touch(self, client_id: str, platform: str | None = None) -> None:
        """Note that a client was seen; written with the next flush, not now."""
        with self._pending_lock:
            self._seen[client_id] = (time.time(), platform or None)

    def revoke(self, token_or_client_id: str) -> str:
        now = time.time()
        with self.transaction() as db:
            if db.execute("UPDATE clients SET revoked_at = ? WHERE client_id = ?", (now, token_or_client_id)).rowcount:
                self._forget(token_or_client_id)
                return "client"
            if db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE token_hash = ?", (now, digest(token_or_client_id))
            ).rowcount:
                return "token"
        raise NotFound(f"no token or client {token_or_client_id!r}")

    # -- tasks and versions ---------------------------------------------------------------
    def task_settings(self, task_id: str) -> tuple[dict[str, Any], dict[str, Any], str]:
        """The task's settings and model spec as last stored, and its status."""
        row = self.query("SELECT config_json, spec_json, status FROM tasks WHERE task_id = ?", (task_id,))[0]
        return json.loads(row["config_json"]), json.loads(row["spec_json"]), row["status"]

    def update_task_settings(self, task_id: str, config: dict[str, Any], status: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE tasks SET config_json = ?, status = ? WHERE task_id = ?", (json.dumps(config), status, task_id)
            )

    def task_version(self, task_id: str) -> int | None:
        """The task's latest committed version; None for a task the store does not know yet."""
        rows = self.query("SELECT version FROM tasks WHERE task_id = ?", (task_id,))
        return int(rows[0]["version"]) if rows else None

    def ensure_task(
        self, task_id: str, config: dict[str, Any], spec: dict[str, Any], initial: Sequence[np.ndarray]
    ) -> int:
        """Register a task with version 0 once; returns its latest committed version."""
        version = self.task_version(task_id)
        if version is not None:
            return version
        sha = self._write_arrays(self.weights_path(task_id, 0), list(initial))
        with self.transaction() as db:
            now = time.time()
            db.execute(
                "INSERT INTO tasks VALUES (?, ?, ?, 0, 'running', ?)",
                (task_id, json.dumps(config), json.dumps(spec), now),
            )
            db.execute("INSERT INTO versions VALUES (?, 0, NULL, ?, ?, '{}')", (task_id, sha, now))
        return 0

    def task_dir(self, task_id: str) -> Path:
        return self.data_dir / "tasks" / task_id

    def weights_path(self, task_id: str, version: int) -> Path:
        return self.task_dir(task_id) / f"v{version:05d}.npz"

    def state_path(self, task_id: str, version: int) -> Path:
        return self.task_dir(task_id) / f"v{version:05d}.state.npz"

    def load_weights(self, task_id: str, version: int) -> list[np.ndarray]:
        path = self.weights_path(task_id, version)
        rows = self.query("SELECT sha256 FROM versions WHERE task_id = ? AND version = ?", (task_id, version))
        if not rows:
            raise NotFound(f"task {task_id!r} has no version {version}")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != rows[0]["sha256"]:
            raise RuntimeError(f"{path} does not match its recorded sha256: the data dir is corrupt")
        with np.load(io.BytesIO(data)) as arrays:
            return [arrays[f"t{i:04d}"] for i in range(len(arrays.files))]

    def load_state(self, task_id: str, version: int) -> dict[str, np.ndarray]:
        path = self.state_path(task_id, version)
        if not path.exists():
            return {}
        with np.load(path) as arrays:
            return {k: arrays[k] for k in arrays.files}

    def commit_version(
        self,
        task_id: str,
        round_id: int,
        version: int,
        weights: Sequence[np.ndarray],
        state: dict[str, np.ndarray],
        metrics: dict[str, Any],
        completed: bool,
    ) -> None:
        sha = self._write_arrays(self.weights_path(task_id, version), list(weights))
        self._write_npz(self.state_path(task_id, version), state)
        with self.transaction() as db:
            self._write_pending(db)
            current = db.execute("SELECT version FROM tasks WHERE task_id = ?", (task_id,)).fetchone()["version"]
            if current != version - 1:
                raise RuntimeError(f"task {task_id!r}: expected to commit version {current + 1}, got {version}")
            db.execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
                (task_id, version, round_id, sha, time.time(), json.dumps(metrics)),
            )
            db.execute(
                "UPDATE tasks SET version = ?, status = ? WHERE task_id = ?",
                (version, "completed" if completed else "running", task_id),
            )
            db.execute(
                "UPDATE rounds SET phase = 'committed', closed_at = ?, metrics_json = ? WHERE round_id = ?",
                (time.time(), json.dumps(metrics), round_id),
            )
            self._forget_secure(db, [round_id])
        if completed:
            shutil.rmtree(self.secure_sums(task_id), ignore_errors=True)

    def close_scoring(self, task_id: str, round_id: int, metrics: dict[str, Any]) -> None:
        """The scoring round closed with the devices' scores: one transaction ends it and the task."""
        with self.transaction() as db:
            self._write_pending(db)
            db.execute("UPDATE tasks SET status = 'completed' WHERE task_id = ?", (task_id,))
            db.execute(
                "UPDATE rounds SET phase = 'scored', closed_at = ?, metrics_json = ? WHERE round_id = ?",
                (time.time(), json.dumps(metrics), round_id),
            )
        shutil.rmtree(self.secure_sums(task_id), ignore_errors=True)

    def scores(self, task_id: str) -> dict[str, Any]:
        """The metrics of the task's scoring round ({} if it had none)."""
        rows = self.query("SELECT metrics_json FROM rounds WHERE task_id = ? AND phase = 'scored'", (task_id,))
        return json.loads(rows[-1]["metrics_json"]) if rows else {}

    def task_completed(self, task_id: str) -> bool:
        rows = self.query("SELECT status FROM tasks WHERE task_id = ?", (task_id,))
        return bool(rows) and rows[0]["status"] == "completed"

    def _write_arrays(self, path: Path, arrays: list[np.ndarray]) -> str:
        return self._write_npz(path, {f"t{i:04d}": a for i, a in enumerate(arrays)})

    @staticmethod
    def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        data = buffer.getvalue()
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return hashlib.sha256(data).hexdigest()

    # -- rounds -------------------------------------------------------------------------------
    def open_round(self, task_id: str, number: int) -> tuple[int, int]:
        """A new attempt at round ``number``; returns (round_id, attempt)."""
        with self.transaction() as db:
            attempt = (
                db.execute(
                    "SELECT COUNT(*) FROM rounds WHERE task_id = ? AND number = ?", (task_id, number)
                ).fetchone()[0]
                + 1
            )
            cursor = db.execute(
                "INSERT INTO rounds (task_id, number, attempt, phase, opened_at) VALUES (?, ?, ?, 'select', ?)",
                (task_id, number, attempt, time.time()),
            )
            return int(cursor.lastrowid), attempt

    def set_phase(self, round_id: int, phase: str, reason: str | None = None) -> None:
        """Record a transition, with the participants noted since the last write."""
        closed = time.time() if phase in CLOSED_PHASES else None
        with self.transaction() as db:
            self._write_pending(db)
            db.execute(
                "UPDATE rounds SET phase = ?, reason = COALESCE(?, reason), closed_at = COALESCE(?, closed_at)"
                " WHERE round_id = ?",
                (phase, reason, closed, round_id),
            )
            if closed:
                self._forget_secure(db, [round_id])

    def fail_unfinished_rounds(self, reason: str, keep: Sequence[int] = ()) -> int:
        """At start: rounds a previous process left open are failed, to be retried (except ``keep``:
        the secure rounds that were resumed)."""
        with self.transaction() as db:
            open_rounds = [
                r[0] for r in db.execute(f"SELECT round_id FROM rounds WHERE {_OPEN}") if r[0] not in set(keep)
            ]
            db.executemany(
                "UPDATE rounds SET phase = 'failed', reason = ?, closed_at = ? WHERE round_id = ?",
                [(reason, time.time(), r) for r in open_rounds],
            )
            self._forget_secure(db, open_rounds)
            return len(open_rounds)

    # -- secure rounds in progress --------------------------------------------------------------
    def secure_dir(self, round_id: int) -> Path:
        """Where an unfinished secure round keeps its masked sum and revealed shares (server/securestate.py)."""
        return self.data_dir / "secure" / str(round_id)

    def secure_sums(self, task_id: str) -> Path:
        """Where a task's secure rounds keep their running masked sum: two files, reused round
        after round (server/securestate.py), removed when the task completes."""
        return self.data_dir / "secure" / "sums" / task_id

    def save_secure(self, round_id: int, **columns: str | bytes) -> None:
        """Write some of a secure round's columns (roster, bundles, progress) in one transaction."""
        names = [name for name in SECURE_COLUMNS if name in columns]
        assert names and len(names) == len(columns), f"expected columns among {SECURE_COLUMNS}, got {list(columns)}"
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO secure_rounds (round_id) VALUES (?)", (round_id,))
            db.execute(
                f"UPDATE secure_rounds SET {', '.join(f'{n} = ?' for n in names)} WHERE round_id = ?",
                [*(columns[n] for n in names), round_id],
            )

    def load_secure(self, round_id: int) -> dict[str, Any] | None:
        """What ``save_secure`` kept of an unfinished secure round, or None."""
        rows = self.query("SELECT * FROM secure_rounds WHERE round_id = ?", (round_id,))
        return {name: rows[0][name] for name in SECURE_COLUMNS} if rows else None

    def open_secure_round(self, task_id: str) -> sqlite3.Row | None:
        """The task's round a previous process left open with its secure state saved, if any."""
        rows = self.query(
            f"SELECT * FROM rounds r WHERE task_id = ? AND {_OPEN}"
            " AND EXISTS (SELECT 1 FROM secure_rounds s WHERE s.round_id = r.round_id) ORDER BY round_id DESC",
            (task_id,),
        )
        return rows[0] if rows else None

    def _forget_secure(self, db: sqlite3.Connection, round_ids: Sequence[int]) -> None:
        """A closed round's secure state is of no more use: the masked sum goes with it."""
        db.executemany("DELETE FROM secure_rounds WHERE round_id = ?", [(r,) for r in round_ids])
        for round_id in round_ids:
            shutil.rmtree(self.secure_dir(round_id), ignore_errors=True)

    def record_participant(self, round_id: int, client_id: str, status: str, num_examples: int | None = None) -> None:
        """Note a participant's status; written with the round's next transition (or flush)."""
        with self._pending_lock:
            _, before = self._participants.get((round_id, client_id), (status, None))
            self._participants[(round_id, client_id)] = (status, before if num_examples is None else num_examples)

    # -- what is written later ----------------------------------------------------------------
    def flush_due(self) -> None:
        """Flush if the last flush is older than FLUSH_S (the coordinator's tick calls this)."""
        if time.monotonic() - self._flushed_at >= FLUSH_S:
            self.flush()

    def flush(self) -> None:
        """Write what requests noted in memory: last_seen, participants."""
        if not (self._seen or self._participants):
            self._flushed_at = time.monotonic()
            return
        with self.transaction() as db:
            self._write_pending(db)

    def _write_pending(self, db: sqlite3.Connection) -> None:
        """Inside a transaction: write the noted rows (put back if the transaction fails)."""
        with self._pending_lock:
            seen, self._seen = self._seen, {}
            participants, self._participants = self._participants, {}
            self._flushed_at = time.monotonic()
        try:
            db.executemany(
                "UPDATE clients SET last_seen = ?, platform = COALESCE(?, platform) WHERE client_id = ?",
                [(at, platform, client_id) for client_id, (at, platform) in seen.items()],
            )
            db.executemany(
                "INSERT INTO participants VALUES (?, ?, ?, ?) ON CONFLICT (round_id, client_id) DO UPDATE"
                " SET status = excluded.status, num_examples = COALESCE(excluded.num_examples, num_examples)",
                [(r, c, status, n) for (r, c), (status, n) in participants.items()],
            )
        except BaseException:
            with self._pending_lock:
                self._seen = {**seen, **self._seen}
                self._participants = {**participants, **self._participants}
            raise
