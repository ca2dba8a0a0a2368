"""Access to a profile: create it, open it with the passphrase (with back-off after failures),
change the passphrase, recover with the recovery code, and inspect it without any secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from vault import keyring
from vault.database import Database
from vault.item import format_time
from vault.keyring import (
    BadKeyFile,
    DataKey,
    KdfParams,
    KeyFile,
    RecoveryCode,
    WrongPassphrase,
    check_new_passphrase,
    format_key_file,
    new_profile_id,
    open_with_passphrase,
    open_with_recovery,
    parse_key_file,
    parse_recovery_code,
    rewrap_passphrase,
    seal_key_file,
)
from vault.profile import (
    ProfileLock,
    ProfilePaths,
    backoff_delay,
    create_private_file,
    failed_attempts,
    is_locked,
    profile_exists,
    record_attempt,
    require_profile,
    reset_attempts,
    staged_profile,
    write_private_file,
)
from vault.schema import Schema, migrate
from vault.vault import Vault

log = logging.getLogger("kluis.vault")

DEFAULT_BUSY_TIMEOUT = 2.0


def create_profile(
    root: Path,
    passphrase: str,
    *,
    schemas: Sequence[Schema] = (),
    now: datetime | None = None,
    _kdf: KdfParams | None = None,
) -> RecoveryCode:
    """Create a new profile at ``root`` (folder 0700, files 0600) protected by ``passphrase``;
    the recovery code, to show the citizen once.

    Raises ProfileExists when ``root`` holds anything, WeakPassphrase.
    """
    passphrase = check_new_passphrase(passphrase)
    recovery = RecoveryCode.generate()
    data_key = DataKey.generate()
    with staged_profile(root) as paths:
        key_file = seal_key_file(
            data_key,
            passphrase,
            recovery,
            profile_id=new_profile_id(),
            created=format_time(now or datetime.now(UTC)),
            kdf=_kdf or keyring.PASSPHRASE_KDF,
        )
        database = create_database(paths, data_key)
        try:
            with database.transaction() as tx:
                migrate(tx, schemas)
        finally:
            database.close()
        # Written last: a folder without a key file is not a profile.
        write_private_file(paths.key, format_key_file(key_file))
    log.info("profile created")
    return recovery


def create_database(paths: ProfilePaths, data_key: DataKey) -> Database:
    """The new, empty encrypted database of a profile being created, open."""
    create_private_file(paths.database)
    return Database.open(paths.database, data_key, create=True)


def read_key_file(paths: ProfilePaths) -> KeyFile:
    """The profile's key file. Raises BadKeyFile when it is unreadable."""
    try:
        data = paths.key.read_bytes()
    except OSError:
        raise BadKeyFile("unreadable") from None
    return parse_key_file(data)


def unlock(
    paths: ProfilePaths, key_file: KeyFile, passphrase: str, *, sleep: Callable[[float], None]
) -> DataKey:
    """The data key, after waiting out the back-off of earlier failures.

    The failure is counted *before* the check, so killing kluis during the check does not
    dodge the back-off; success resets the count. Raises WrongPassphrase.
    """
    failures = failed_attempts(paths)
    delay = backoff_delay(failures)
    if delay > 0:
        sleep(delay)
    record_attempt(paths, failures + 1)
    try:
        data_key = open_with_passphrase(key_file, passphrase)
    except WrongPassphrase:
        # Only the count: never the passphrase, not even its length.
        log.warning("unlock failed; %d failed attempts in a row", failures + 1)
        raise
    reset_attempts(paths)
    return data_key


def open_vault(
    root: Path,
    passphrase: str,
    *,
    schemas: Sequence[Schema] = (),
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
) -> Vault:
    """The vault at ``root``, opened with ``passphrase``, its schemas (the vault's and
    ``schemas``) migrated to their latest versions. Close it (or use ``with``).

    Waits up to ``busy_timeout`` seconds for another process to close it. ``sleep`` waits out
    the back-off after failed attempts (a test passes a fake).
    Raises NoProfile, Busy, BadKeyFile, WrongPassphrase, Corrupt, SchemaTooNew.
    """
    paths = require_profile(root)
    lock = ProfileLock.acquire(paths, timeout=busy_timeout)
    try:
        data_key = unlock(paths, read_key_file(paths), passphrase, sleep=sleep)
        database = Database.open(paths.database, data_key)
        try:
            with database.transaction() as tx:
                migrate(tx, schemas)
        except BaseException:
            database.close()
            raise
    except BaseException:
        lock.release()
        raise
    log.info("vault opened")
    return Vault(database, root=root, lock=lock)


def change_passphrase(
    root: Path,
    old: str,
    new: str,
    *,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    _kdf: KdfParams | None = None,
) -> None:
    """Let ``new`` open the vault instead of ``old``. Only the key file is rewritten (with
    fresh salt and the current Argon2id cost); the database is not touched.

    Raises NoProfile, Busy, WeakPassphrase, WrongPassphrase, BadKeyFile.
    """
    new = check_new_passphrase(new)
    paths = require_profile(root)
    with ProfileLock.acquire(paths, timeout=busy_timeout):
        key_file = read_key_file(paths)
        data_key = unlock(paths, key_file, old, sleep=sleep)
        write_private_file(
            paths.key,
            format_key_file(
                rewrap_passphrase(key_file, data_key, new, kdf=_kdf or keyring.PASSPHRASE_KDF)
            ),
        )
    log.info("passphrase changed")


def recover(
    root: Path,
    recovery_code: RecoveryCode | str,
    new_passphrase: str,
    *,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    _kdf: KdfParams | None = None,
) -> None:
    """Set ``new_passphrase`` using the recovery code shown at ``kluis init``. The code stays
    valid; the database is not touched. No back-off: 160 random bits cannot be guessed.

    Raises NoProfile, Busy, BadRecoveryCode, WrongRecoveryCode, WeakPassphrase, BadKeyFile.
    """
    code = parse_recovery_code(recovery_code) if isinstance(recovery_code, str) else recovery_code
    new_passphrase = check_new_passphrase(new_passphrase)
    paths = require_profile(root)
    with ProfileLock.acquire(paths, timeout=busy_timeout):
        key_file = read_key_file(paths)
        data_key = open_with_recovery(key_file, code)
        write_private_file(
            paths.key,
            format_key_file(
                rewrap_passphrase(
                    key_file, data_key, new_passphrase, kdf=_kdf or keyring.PASSPHRASE_KDF
                )
            ),
        )
        reset_attempts(paths)
    log.info("passphrase set with the recovery code")


@dataclass(frozen=True)
class ProfileStatus:
    """What can be told about a profile without its passphrase."""

    root: Path
    exists: bool
    created: str | None = None
    kdf: KdfParams | None = None
    database_bytes: int | None = None
    failed_attempts: int = 0
    in_use: bool = False


def inspect_profile(root: Path) -> ProfileStatus:
    """The profile's status, read without unlocking. Raises BadKeyFile when it is damaged."""
    if not profile_exists(root):
        return ProfileStatus(root=root, exists=False)
    paths = ProfilePaths(root)
    key_file = read_key_file(paths)
    try:
        size: int | None = paths.database.stat().st_size
    except FileNotFoundError:
        size = None
    return ProfileStatus(
        root=root,
        exists=True,
        created=key_file.created,
        kdf=key_file.kdf,
        database_bytes=size,
        failed_attempts=failed_attempts(paths),
        in_use=is_locked(paths),
    )
