"""Vault throughput: the encrypted vault against the same code on an unencrypted database.

    .venv/bin/python -m bench.vault            # the table (well under a minute)
    .venv/bin/python -m bench.vault --explore  # also: page size and HMAC variants

The baseline is fair: the same ``sqlcipher3`` binding (so the same SQLite version), the same
schema, the same ``Vault`` code and settings, only opened without a key. Each figure is the
best of several rounds (encrypted and plain interleaved), the usual way to keep background
load on a shared machine out of a micro-benchmark.
"cold" reads reopen the database first, so every page is read (and decrypted) from the file;
"warm" reads come after the writes in the same session, from SQLite's page cache, where
pages are already decrypted. Also printed: the Argon2id unlock and the raw-key open.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vault import database as vault_database
from vault.database import Database
from vault.keyring import PASSPHRASE_KDF, DataKey, KdfParams, derive_passphrase_key
from vault.schema import migrate
from vault.vault import Vault

SMALL = 2000  # attributes per round
BATCH = 100  # attributes per transaction in the batched run
DOCS = 12  # 1 MB documents per round
MB = 1 << 20


@dataclass
class Store:
    """One database (encrypted or plain) in its own folder."""

    folder: Path
    key: DataKey | None

    @property
    def path(self) -> Path:
        return self.folder / "vault.db"

    def create(self) -> None:
        self.folder.mkdir(parents=True)
        database = Database.open(self.path, self.key, create=True)
        with database.transaction() as tx:
            migrate(tx, ())
        database.close()

    @contextmanager
    def opened(self) -> Iterator[Vault]:
        vault = Vault(Database.open(self.path, self.key), root=self.folder, lock=None)
        try:
            yield vault
        finally:
            vault.close()


def _timed(work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _round(store: Store, document: bytes) -> dict[str, float]:
    """One round of every operation on a fresh database; seconds per operation."""
    store.create()
    seconds: dict[str, float] = {}
    with store.opened() as vault:

        def put_each() -> None:
            for i in range(SMALL):
                vault.put_attribute(f"attribute {i}", f"value {i:08d}", source="bench")

        def put_batched() -> None:
            for start in range(0, SMALL, BATCH):
                with vault.transaction():
                    for i in range(start, start + BATCH):
                        vault.put_attribute(f"batched {i}", f"value {i:08d}", source="bench")

        def get_small() -> None:
            for i in range(SMALL):
                vault.get(f"attribute {i}")

        def put_documents() -> None:
            for i in range(DOCS):
                vault.put_document(
                    f"document {i}",
                    io.BytesIO(document),
                    media_type="application/pdf",
                    source="bench",
                )

        def get_documents() -> None:
            for i in range(DOCS):
                for _ in vault.read_document(f"document {i}"):
                    pass

        seconds["put attribute (1 per transaction)"] = _timed(put_each) / SMALL
        seconds[f"put attribute ({BATCH} per transaction)"] = _timed(put_batched) / SMALL
        seconds["get attribute, warm"] = _timed(get_small) / SMALL
        seconds["put 1 MB document"] = _timed(put_documents) / DOCS
        seconds["get 1 MB document, warm"] = _timed(get_documents) / DOCS
    with store.opened() as vault:
        seconds["get attribute, cold"] = _timed(get_small) / SMALL
    with store.opened() as vault:
        seconds["get 1 MB document, cold"] = _timed(get_documents) / DOCS
    shutil.rmtree(store.folder)
    return seconds


def _compare(rounds: int, work: Path) -> dict[str, tuple[float, float]]:
    document = os.urandom(MB)
    plain: list[dict[str, float]] = []
    sealed: list[dict[str, float]] = []
    for n in range(rounds):
        plain.append(_round(Store(work / f"plain-{n}", None), document))
        sealed.append(_round(Store(work / f"sealed-{n}", DataKey.generate()), document))
    return {name: (min(r[name] for r in plain), min(r[name] for r in sealed)) for name in plain[0]}


def _rate(seconds: float) -> str:
    per_second = 1 / seconds
    return f"{per_second:,.0f}/s" if per_second >= 100 else f"{per_second:,.1f}/s"


def _print_table(results: dict[str, tuple[float, float]]) -> None:
    print(f"| {'operation':<36} | {'plain':>11} | {'encrypted':>11} | {'ratio':>5} |")
    print(f"|{'-' * 38}|{'-' * 13}|{'-' * 13}|{'-' * 7}|")
    for name, (plain, sealed) in results.items():
        print(f"| {name:<36} | {_rate(plain):>11} | {_rate(sealed):>11} | {sealed / plain:>5.2f} |")


NOTES = """
Notes: SQLCipher encrypts and authenticates each page with AES-256-CBC and HMAC-SHA256 when it
goes to or comes from the file. Warm reads come from SQLite's page cache, where pages are
already decrypted, so they cost nothing extra. Cold document reads must decrypt every page,
while the plain baseline copies its pages straight from the OS file cache; that row measures
the cipher's throughput, not a setting."""


def _unlock_times(work: Path) -> None:
    salt = os.urandom(16)
    runs = [
        _timed(lambda: derive_passphrase_key("bench passphrase", salt, PASSPHRASE_KDF))
        for _ in range(3)
    ]
    interactive = KdfParams(2, 64 << 20)
    light = [
        _timed(lambda: derive_passphrase_key("bench passphrase", salt, interactive))
        for _ in range(3)
    ]
    store = Store(work / "open", DataKey.generate())
    store.create()

    def open_and_read() -> None:
        with store.opened() as vault:
            vault.count()

    opens = [_timed(open_and_read) for _ in range(20)]
    kdf = PASSPHRASE_KDF
    print()
    print(
        f"unlock, Argon2id opslimit {kdf.opslimit}, memlimit {kdf.memlimit >> 20} MiB (used):"
        f" {statistics.median(runs):.3f} s"
    )
    print(
        f"unlock, Argon2id opslimit 2, memlimit 64 MiB (libsodium 'interactive', for comparison):"
        f" {statistics.median(light):.3f} s"
    )
    opened = statistics.median(opens) * 1000
    print(f"open with the raw data key (no PBKDF2) and first read: {opened:.2f} ms")


def _explore(work: Path) -> None:
    """The settings this module's choices come from: page size and HMAC, same table each."""
    chosen = (vault_database.PAGE_SIZE, vault_database.HMAC_ALGORITHM)
    variants = [
        (1024, "HMAC_SHA256"),
        (4096, "HMAC_SHA512"),
        (16384, "HMAC_SHA256"),
    ]
    for page_size, hmac in variants:
        vault_database.PAGE_SIZE, vault_database.HMAC_ALGORITHM = page_size, hmac
        print(f"\npage size {page_size}, {hmac}")
        _print_table(_compare(5, work / f"explore-{page_size}-{hmac}"))
    vault_database.PAGE_SIZE, vault_database.HMAC_ALGORITHM = chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--explore", action="store_true", help="also compare page sizes and HMACs")
    args = parser.parse_args()
    print(
        f"SQLCipher vault vs the same schema unencrypted (sqlcipher3, no key); page size"
        f" {vault_database.PAGE_SIZE}, {vault_database.HMAC_ALGORITHM}, cache"
        f" {vault_database.CACHE_KIB >> 10} MiB, WAL, synchronous=NORMAL;"
        f" best of {args.rounds} rounds; ratio = encrypted time / plain time"
    )
    with tempfile.TemporaryDirectory(prefix="kluis-bench-") as temp:
        work = Path(temp)
        _print_table(_compare(args.rounds, work))
        _unlock_times(work)
        print(NOTES)
        if args.explore:
            _explore(work)


if __name__ == "__main__":
    main()
