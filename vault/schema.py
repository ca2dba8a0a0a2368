"""Versioned schemas: the vault's own tables and the tables later components add.

A component (``vault``, and later e.g. ``wallet`` or ``consent``) owns an ordered tuple of
migrations; migration *n* takes the component from version *n - 1* to *n*. The table
``schema_version`` records each component's version. Opening a vault applies every pending
migration of every component in one transaction, so a vault is never left half-migrated.

Every table a component creates must be named ``<component>_<name>``: that is how export and
import know whose table it is (see specs/archive.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlcipher3 import dbapi2  # type: ignore[import-untyped]

from vault.database import Transaction
from vault.errors import Conflict

_COMPONENT = re.compile(r"^[a-z][a-z0-9]{0,30}$")


class SchemaTooNew(Conflict):
    code = "vault.schema_too_new"
    en = "This vault was written by a newer version of kluis. Update kluis and try again."
    nl = (
        "Deze kluis is gemaakt met een nieuwere versie van kluis. Werk kluis bij en probeer het "
        "opnieuw."
    )


@dataclass(frozen=True)
class Schema:
    """The migrations of one component, oldest first. Each is one or more SQL statements."""

    component: str
    migrations: tuple[str, ...]

    def __post_init__(self) -> None:
        # A programming error, not a user's: a plain ValueError.
        if not _COMPONENT.match(self.component):
            raise ValueError(f"component name {self.component!r}: use [a-z][a-z0-9]*")

    @property
    def version(self) -> int:
        return len(self.migrations)

    @property
    def table_prefix(self) -> str:
        return f"{self.component}_"


_VAULT_V1 = """
CREATE TABLE vault_item (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL CHECK (type IN ('attribute', 'document', 'note')),
    media_type TEXT,
    source TEXT NOT NULL,
    added TEXT NOT NULL,
    changed TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 BLOB NOT NULL,
    value TEXT
);
CREATE TABLE vault_chunk (
    item_id INTEGER NOT NULL REFERENCES vault_item (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (item_id, seq)
);
"""

# The vault's own tables: items (attribute and note text inline, documents in chunks).
VAULT_SCHEMA = Schema("vault", (_VAULT_V1,))

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)
"""


def split_statements(script: str) -> list[str]:
    """The statements of ``script``, split where SQLite says a statement is complete.

    Not ``executescript``: it commits the open transaction first, which would break the
    all-or-nothing migration.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if dbapi2.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement: {pending.strip()[:60]!r}")
    return statements


def _tables(tx: Transaction) -> set[str]:
    rows = tx.query("SELECT name FROM sqlite_schema WHERE type = 'table'")
    return {str(row[0]) for row in rows}


def schema_versions(tx: Transaction) -> dict[str, int]:
    """Each component's version in this database (empty before the first migration)."""
    if "schema_version" not in _tables(tx):
        return {}
    return {str(c): int(v) for c, v in tx.query("SELECT component, version FROM schema_version")}


def apply_migrations(tx: Transaction, schema: Schema, *, up_to: int | None = None) -> int:
    """Run ``schema``'s pending migrations (up to version ``up_to``); the version reached.

    Raises SchemaTooNew when the database is at a later version than ``schema`` knows, and
    ValueError when a migration creates a table outside the component's prefix.
    """
    target = schema.version if up_to is None else up_to
    tx.execute(_VERSION_TABLE)
    row = tx.query_one(
        "SELECT version FROM schema_version WHERE component = ?", (schema.component,)
    )
    current = 0 if row is None else int(row[0])
    if current > schema.version:
        raise SchemaTooNew(f"{schema.component} at version {current}, known up to {schema.version}")
    for number in range(current, target):
        before = _tables(tx)
        for statement in split_statements(schema.migrations[number]):
            tx.execute(statement)
        strays = sorted(t for t in _tables(tx) - before if not t.startswith(schema.table_prefix))
        if strays:
            raise ValueError(f"{schema.component} migration {number + 1} creates {strays}")
    if target > current:
        tx.execute(
            "INSERT INTO schema_version (component, version) VALUES (?, ?) "
            "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            (schema.component, target),
        )
    return max(current, target)


def migrate(tx: Transaction, schemas: Sequence[Schema]) -> dict[str, int]:
    """Apply the vault's and ``schemas``' pending migrations; every component's version."""
    seen = {VAULT_SCHEMA.component}
    apply_migrations(tx, VAULT_SCHEMA)
    for schema in schemas:
        if schema.component in seen:
            raise ValueError(f"component {schema.component!r} given twice")
        seen.add(schema.component)
        apply_migrations(tx, schema)
    return schema_versions(tx)


def component_tables(tx: Transaction, component: str) -> list[str]:
    """The tables ``component`` owns, in the order they were created."""
    rows = tx.query(
        "SELECT name FROM sqlite_schema"
        " WHERE type = 'table' AND substr(name, 1, ?) = ? ORDER BY rowid",
        (len(component) + 1, f"{component}_"),
    )
    return [str(row[0]) for row in rows]
