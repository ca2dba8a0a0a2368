"""Versioned schemas: migrations run once, in order, all-or-nothing, and a newer database is
refused rather than misread."""

from __future__ import annotations

from pathlib import Path

import pytest

from vault import Schema, SchemaTooNew, open_vault
from vault.schema import split_statements

V1 = "CREATE TABLE wallet_credential (id INTEGER PRIMARY KEY, vct TEXT NOT NULL)"
V2 = """
ALTER TABLE wallet_credential ADD COLUMN issuer TEXT;
CREATE TABLE wallet_key (id INTEGER PRIMARY KEY, kid TEXT);
CREATE TRIGGER wallet_no_empty BEFORE INSERT ON wallet_key
BEGIN
    SELECT RAISE(ABORT, 'kid; required') WHERE NEW.kid IS NULL;
END;
"""


def _tables(
    vault_root: Path, passphrase: str, schemas: list[Schema]
) -> tuple[dict[str, int], list[str]]:
    with open_vault(vault_root, passphrase, schemas=schemas) as vault:
        names = vault.reader().query(
            "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"
        )
        return vault.schema_versions(), [n for (n,) in names]


def test_new_vault_is_at_the_latest_vault_schema(profile: Path, passphrase: str) -> None:
    versions, tables = _tables(profile, passphrase, [])
    assert versions == {"vault": 1}
    assert tables == ["schema_version", "vault_chunk", "vault_item"]


def test_component_migrations_run_once_and_in_order(profile: Path, passphrase: str) -> None:
    assert _tables(profile, passphrase, [Schema("wallet", (V1,))])[0] == {"vault": 1, "wallet": 1}
    versions, tables = _tables(profile, passphrase, [Schema("wallet", (V1, V2))])
    assert versions == {"vault": 1, "wallet": 2}
    assert "wallet_key" in tables
    with open_vault(profile, passphrase, schemas=[Schema("wallet", (V1, V2))]) as vault:
        with pytest.raises(Exception, match="kid; required"):
            with vault.transaction() as tx:
                tx.execute("INSERT INTO wallet_key (kid) VALUES (NULL)")


def test_failing_migration_leaves_the_vault_as_it_was(profile: Path, passphrase: str) -> None:
    _tables(profile, passphrase, [Schema("wallet", (V1,))])
    broken = Schema(
        "wallet", (V1, "CREATE TABLE wallet_x (a TEXT); CREATE TABLE wallet_x (b TEXT);")
    )
    with pytest.raises(Exception, match="already exists"):
        open_vault(profile, passphrase, schemas=[broken])
    versions, tables = _tables(profile, passphrase, [Schema("wallet", (V1,))])
    assert versions["wallet"] == 1 and "wallet_x" not in tables


def test_database_from_a_newer_kluis_is_refused(profile: Path, passphrase: str) -> None:
    _tables(profile, passphrase, [Schema("wallet", (V1, V2))])
    with pytest.raises(SchemaTooNew):
        open_vault(profile, passphrase, schemas=[Schema("wallet", (V1,))])


def test_tables_must_carry_the_component_prefix(profile: Path, passphrase: str) -> None:
    with pytest.raises(ValueError, match="credential"):
        open_vault(
            profile,
            passphrase,
            schemas=[Schema("wallet", ("CREATE TABLE credential (id INTEGER)",))],
        )
    assert "credential" not in _tables(profile, passphrase, [])[1]


@pytest.mark.parametrize("component", ["", "Wallet", "wallet_log", "1wallet", "wal let"])
def test_component_names_are_checked(component: str) -> None:
    with pytest.raises(ValueError):
        Schema(component, ())


def test_a_component_cannot_be_given_twice(profile: Path, passphrase: str) -> None:
    with pytest.raises(ValueError):
        open_vault(profile, passphrase, schemas=[Schema("wallet", (V1,)), Schema("wallet", (V1,))])
    with pytest.raises(ValueError):
        open_vault(profile, passphrase, schemas=[Schema("vault", ())])


def test_split_statements_keeps_triggers_and_strings_whole() -> None:
    statements = split_statements(V2 + "INSERT INTO wallet_key (kid) VALUES ('a;b');")
    assert len(statements) == 4
    assert statements[2].startswith("CREATE TRIGGER") and statements[2].endswith("END;")
    assert statements[3].endswith("('a;b');")
    with pytest.raises(ValueError):
        split_statements("INSERT INTO wallet_t VALUES ('unterminated)")
