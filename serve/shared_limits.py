"""Limits every worker of one serve instance shares: a token bucket and per-key quiet periods, in SQLite.

uvicorn workers are separate processes, so an in-memory limit would allow `workers` times the rate. A
small SQLite file under the runtime directory (`BEGIN IMMEDIATE` serialises the read-modify-write) is
the arbiter: no extra service, and it holds only keys that passed the bucket, so it stays small.
Replicas on other hosts each have their own file; the Airflow pool bounds what they add up to.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from mirror_core.errors import ConfigError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bucket (id INTEGER PRIMARY KEY CHECK (id = 0), tokens REAL NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quiet (key TEXT PRIMARY KEY, until REAL NOT NULL);
"""


class SharedLimits:
    def __init__(self, directory: Path, *, per_minute: float, burst: int) -> None:
        self.path = directory / "ondemand.sqlite"
        self.per_minute, self.burst = per_minute, burst
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if directory.stat().st_uid != os.getuid():  # e.g. planted in a shared /tmp by another user
                raise ConfigError(f"HUBMIRROR_SERVE_RUNTIME_DIR {directory} belongs to another user; "
                                  "point it at a directory of the serve user")
            db = self._connect()
            try:
                db.executescript(_SCHEMA)
                db.execute("INSERT OR IGNORE INTO bucket VALUES (0, ?, ?)", (burst, time.time()))
            finally:
                db.close()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot keep on-demand limits in HUBMIRROR_SERVE_RUNTIME_DIR {directory}: {exc}; "
                              "point it at a writable directory") from None

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=5, isolation_level=None)

    def claim(self, key: str, quiet_for: float, *, take_token: bool) -> bool:
        """True (and `key` goes quiet for `quiet_for` s) unless `key` is quiet or, if asked, no token is left."""
        now = time.time()
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT until FROM quiet WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] > now:
                db.execute("ROLLBACK")
                return False
            if take_token:
                tokens, at = db.execute("SELECT tokens, at FROM bucket WHERE id = 0").fetchone()
                tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.per_minute / 60)
                if tokens < 1:
                    db.execute("ROLLBACK")
                    return False
                db.execute("UPDATE bucket SET tokens = ?, at = ? WHERE id = 0", (tokens - 1, now))
            db.execute("DELETE FROM quiet WHERE until <= ?", (now,))
            db.execute("INSERT OR REPLACE INTO quiet VALUES (?, ?)", (key, now + quiet_for))
            db.execute("COMMIT")
            return True
        finally:
            db.close()

    def quiet(self, key: str, seconds: float) -> None:
        """Keep `key` from being claimed for `seconds` (e.g. a repo the upstream does not have)."""
        db = self._connect()
        try:
            db.execute("INSERT OR REPLACE INTO quiet VALUES (?, ?)", (key, time.time() + seconds))
        finally:
            db.close()
