"""The mapping store: every (kind, original, pseudonym) pair runs met, in one SQLite file.

Written only when asked (``--mapping-db``): it re-identifies the data, so it is kept apart from
it, by the key holder. It accumulates over runs: a pair met again only moves its last-seen time.

Several writers on one machine share the file safely: the database is in WAL mode (readers never
block the writer), each write is one short ``BEGIN IMMEDIATE`` transaction holding a whole chunk
of files' pairs, a writer waits for a busy database (the busy timeout) and retries the
transaction if it still finds it busy. In a folder run only the run's main process writes (the
workers send their pairs back with their results), so the workers, wherever they run, never
open the file; two runs into one file at once are two writers.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dcmanon.errors import MappingStoreError
from dcmanon.header.mapping import write_mapping_files

__all__ = ["MappingRow", "MappingStore"]

_log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS mapping (kind TEXT NOT NULL, original TEXT NOT NULL, "
    "pseudonym TEXT NOT NULL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, "
    "PRIMARY KEY (kind, original, pseudonym)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS mapping_by_pseudonym ON mapping (pseudonym)",
)
_UPSERT = """
INSERT INTO mapping (kind, original, pseudonym, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (kind, original, pseudonym) DO UPDATE SET
    first_seen = min(first_seen, excluded.first_seen),
    last_seen = max(last_seen, excluded.last_seen)
"""
BUSY_TIMEOUT = 30.0
"""Seconds a statement waits for another writer before it reports the database busy."""
ATTEMPTS = 8
"""How often a busy transaction is tried before the write fails."""


@dataclass(frozen=True)
class MappingRow:
    """One pair of the store, with when runs first and last met it (UTC, ISO 8601)."""

    kind: str
    """``uid`` or ``patient`` (as the mapping files name them)."""
    original: str
    pseudonym: str
    first_seen: str
    last_seen: str


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()  # SQLite's messages, never a value
    return "locked" in text or "busy" in text


class MappingStore:
    """A mapping database, created when missing.

    Parameters
    ----------
    path : path-like
        The SQLite file (on a local file system: WAL needs shared memory between the
        processes that use it).
    timeout : float
        Seconds a write waits for other writers, per attempt.

    Raises
    ------
    MappingStoreError
        If the file cannot be opened or created, or is not a mapping database.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with MappingStore(folder / "map.db") as store:
    ...     store.record([("patient", "PAT-1", "X7Q2")])
    ...     [(r.kind, r.pseudonym) for r in store.lookup("PAT-1")]
    1
    [('patient', 'X7Q2')]
    """

    def __init__(self, path: str | Path, *, timeout: float = BUSY_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout
        try:
            self._db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.Error as exc:
            raise MappingStoreError(f"{self.path}: cannot open the mapping database "
                                    f"({exc})") from None
        try:
            self._retry(self._prepare)
        except MappingStoreError:
            self._db.close()
            raise

    def _prepare(self) -> None:
        db = self._db
        db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()
        if not mode or str(mode[0]).lower() != "wal":
            raise MappingStoreError(f"{self.path}: the mapping database cannot use WAL mode "
                                    "(is it on a network file system?)")
        # NORMAL in WAL mode: a commit survives a crash of the process, not of the machine;
        # the outputs themselves are synced at the end of the run.
        db.execute("PRAGMA synchronous = NORMAL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise MappingStoreError(f"{self.path}: a mapping database of format {version}; "
                                    f"this dcmanon reads format {SCHEMA_VERSION}")
        if version == 0:
            db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "mapping" not in tables:
            raise MappingStoreError(f"{self.path}: not a mapping database")

    def _retry(self, action: Callable[[], None]) -> None:
        """Run ``action``, retrying while another writer holds the database.

        A failed transaction is rolled back before the next attempt.
        """
        for attempt in range(1, ATTEMPTS + 1):
            try:
                action()
                return
            except sqlite3.OperationalError as exc:
                self._rollback()
                if not _busy(exc) or attempt == ATTEMPTS:
                    raise MappingStoreError(f"{self.path}: cannot write the mapping database "
                                            f"({exc})") from None
                _log.debug("mapping database busy (attempt %d of %d)", attempt, ATTEMPTS)
                time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
            except sqlite3.DatabaseError as exc:
                self._rollback()
                raise MappingStoreError(f"{self.path}: not a usable mapping database "
                                        f"({exc})") from None

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def record(self, rows: Iterable[tuple[str, str, str]],
               seen: dt.datetime | None = None) -> int:
        """Add (kind, original, pseudonym) pairs in one transaction; pairs already there get
        ``seen`` as their last-seen time (if later).

        Returns
        -------
        int
            How many distinct pairs were written.

        Raises
        ------
        MappingStoreError
            If the database stays busy through every attempt, or cannot be written.
        """
        stamp = seen.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") \
            if seen is not None else _now()
        unique = sorted(set(rows))
        if not unique:
            return 0
        values = [(kind, old, new, stamp, stamp) for kind, old, new in unique]

        def write() -> None:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(_UPSERT, values)
            self._db.execute("COMMIT")

        self._retry(write)
        return len(unique)

    def rows(self) -> Iterator[MappingRow]:
        """Every pair, by kind, original and pseudonym."""
        try:
            cursor = self._db.execute("SELECT kind, original, pseudonym, first_seen, last_seen "
                                      "FROM mapping ORDER BY kind, original, pseudonym")
            for row in cursor:
                yield MappingRow(*row)
        except sqlite3.DatabaseError as exc:
            raise MappingStoreError(f"{self.path}: cannot read the mapping database "
                                    f"({exc})") from None

    def lookup(self, value: str) -> list[MappingRow]:
        """The pairs whose original or pseudonym is ``value`` (either way round)."""
        try:
            found = self._db.execute(
                "SELECT kind, original, pseudonym, first_seen, last_seen FROM mapping "
                "WHERE original = ? OR pseudonym = ? ORDER BY kind, original, pseudonym",
                (value, value)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise MappingStoreError(f"{self.path}: cannot read the mapping database "
                                    f"({exc})") from None
        return [MappingRow(*row) for row in found]

    def export(self, folder: str | Path) -> list[Path]:
        """Write the mapping files of ``--mapping-dir`` (``uid_mapping.csv``,
        ``patient_mapping.csv``) from every pair of the store."""
        return write_mapping_files(Path(folder), ((r.kind, r.original, r.pseudonym)
                                                  for r in self.rows()))

    def close(self) -> None:
        """Close the database (its WAL is checkpointed when the last user closes it)."""
        self._db.close()

    def __enter__(self) -> MappingStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
