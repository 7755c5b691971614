"""Numbered schema migrations with up and down SQL, recorded in `schema_migrations`.

Files live in `storage/migrations/NNNN_name.up.sql` and `NNNN_name.down.sql`. Each applied
migration is recorded with a SHA-256 of both files; start-up refuses to run when an applied
migration's files changed since (`verify`). Each step runs in its own transaction.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from engine.clock import Clock
from engine.errors import Fatal, Rejected

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        VARCHAR NOT NULL,
    checksum    VARCHAR NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: str
    down: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(f"{self.up}\n--down--\n{self.down}".encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    name: str
    applied_at: datetime | None
    checksum_ok: bool | None  # None when not applied


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration in `directory`, ordered by version; each must have up and down."""
    parts: dict[tuple[int, str], dict[str, str]] = {}
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match is None:
            continue
        key = (int(match.group(1)), match.group(2))
        parts.setdefault(key, {})[match.group(3)] = path.read_text()
    migrations = []
    for (version, name), sql in sorted(parts.items()):
        if set(sql) != {"up", "down"}:
            raise Fatal(f"migration {version:04d}_{name} needs both an up and a down file")
        migrations.append(Migration(version, name, sql["up"], sql["down"]))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise Fatal(f"migration versions must be 1..N without gaps, found {versions}")
    return migrations


class Migrator:
    """Applies and reverts migrations on one DuckDB connection."""

    def __init__(
        self, conn: duckdb.DuckDBPyConnection, clock: Clock, migrations: list[Migration] | None
    ) -> None:
        self._conn = conn
        self._clock = clock
        self._migrations = migrations if migrations is not None else discover()
        self._conn.execute(_CREATE_TABLE)

    def applied(self) -> dict[int, tuple[str, datetime]]:
        rows = self._conn.execute(
            "SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version"
        ).fetchall()
        return {int(v): (str(c), a) for v, c, a in rows}

    def current(self) -> int:
        applied = self.applied()
        return max(applied) if applied else 0

    def status(self) -> list[MigrationStatus]:
        applied = self.applied()
        out = []
        for m in self._migrations:
            if m.version in applied:
                checksum, at = applied[m.version]
                out.append(MigrationStatus(m.version, m.name, at, checksum == m.checksum))
            else:
                out.append(MigrationStatus(m.version, m.name, None, None))
        return out

    def verify(self) -> None:
        """Raise `Fatal` if an applied migration changed or is unknown to this code."""
        known = {m.version: m for m in self._migrations}
        for version, (checksum, _at) in self.applied().items():
            migration = known.get(version)
            if migration is None:
                raise Fatal(
                    f"the database has migration {version:04d} applied, which this version of "
                    "Tandem does not know",
                    "run the Tandem version that created it, or migrate down with it",
                )
            if checksum != migration.checksum:
                raise Fatal(
                    f"migration {migration.label} was changed after it was applied "
                    f"(recorded checksum {checksum[:12]}, file now {migration.checksum[:12]})",
                    "restore the original file; add a new migration instead of editing one",
                )

    def up(self, target: int | None = None) -> list[int]:
        """Apply pending migrations up to `target` (all when None); return versions applied."""
        self.verify()
        goal = self._check_target(len(self._migrations) if target is None else target)
        done = []
        for m in self._migrations:
            if self.current() < m.version <= goal:
                self._run(m.up, f"up {m.label}")
                self._conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?, ?)",
                    [m.version, m.name, m.checksum, self._clock.now()],
                )
                self._conn.execute("COMMIT")
                done.append(m.version)
        return done

    def down(self, target: int) -> list[int]:
        """Revert applied migrations above `target`, newest first; return versions reverted."""
        self.verify()
        goal = self._check_target(target)
        done = []
        for m in reversed(self._migrations):
            if goal < m.version <= self.current():
                self._run(m.down, f"down {m.label}")
                self._conn.execute("DELETE FROM schema_migrations WHERE version = ?", [m.version])
                self._conn.execute("COMMIT")
                done.append(m.version)
        return done

    def _check_target(self, target: int) -> int:
        if not 0 <= target <= len(self._migrations):
            raise Rejected(
                "invalid_migration_target",
                f"target {target} is outside 0..{len(self._migrations)}",
            )
        return target

    def _run(self, sql: str, what: str) -> None:
        self._conn.execute("BEGIN TRANSACTION")
        try:
            self._conn.execute(sql)
        except duckdb.Error as exc:
            self._conn.execute("ROLLBACK")
            raise Fatal(f"migration {what} failed: {exc}") from exc
