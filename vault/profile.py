"""The profile folder on disk: its files, owner-only permissions, atomic writes, the lock that
keeps a second process out, and the failed-unlock counter that drives the back-off.

A profile folder holds:

- ``key.json``: the wrapped data key (see ``vault.keyring``); its presence makes the folder
  a profile;
- ``vault.db`` (+ ``-wal``/``-shm`` while open): the SQLCipher database;
- ``lock``: an empty file that an open vault holds an exclusive ``flock`` on;
- ``attempts``: how many unlocks failed in a row (a number, never a passphrase).

Everything is created owner-only: the folder 0700, files 0600.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vault.errors import Conflict, NotFound

KEY_FILE = "key.json"
DATABASE_FILE = "vault.db"
LOCK_FILE = "lock"
ATTEMPTS_FILE = "attempts"

FOLDER_MODE = 0o700
FILE_MODE = 0o600

# Back-off after failed unlocks: 0.5 s after the first failure, doubling, at most 30 s.
# It only slows guessing through kluis itself; the Argon2id cost in vault.keyring is what
# protects a copied key file.
BACKOFF_FIRST = 0.5
BACKOFF_CAP = 30.0

# How often a waiting opener retries the lock.
_LOCK_POLL = 0.05


class NoProfile(NotFound):
    code = "vault.no_profile"
    en = (
        "There is no kluis profile at {path}. Create one with 'kluis init', or choose another "
        "folder with --home."
    )
    nl = (
        "Er is geen kluis-profiel in {path}. Maak er een met 'kluis init', of kies een andere map "
        "met --home."
    )


class ProfileExists(Conflict):
    code = "vault.profile_exists"
    en = (
        "There is already a kluis profile or other files at {path}. Choose an empty or new folder "
        "with --home."
    )
    nl = (
        "In {path} staat al een kluis-profiel of andere bestanden. Kies een lege of nieuwe map met "
        "--home."
    )


class Busy(Conflict):
    code = "vault.busy"
    en = "Your vault is in use by another kluis program. Close that program and try again."
    nl = (
        "Uw kluis is in gebruik door een ander kluis-programma. Sluit dat programma en probeer het "
        "opnieuw."
    )


@dataclass(frozen=True)
class ProfilePaths:
    """Where the files of the profile at ``root`` live."""

    root: Path

    @property
    def key(self) -> Path:
        return self.root / KEY_FILE

    @property
    def database(self) -> Path:
        return self.root / DATABASE_FILE

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def attempts(self) -> Path:
        return self.root / ATTEMPTS_FILE


def profile_exists(root: Path) -> bool:
    """True when ``root`` holds a profile (its key file)."""
    return (root / KEY_FILE).is_file()


def require_profile(root: Path) -> ProfilePaths:
    """The paths of the existing profile at ``root``. Raises NoProfile when there is none."""
    if not profile_exists(root):
        raise NoProfile(path=str(root))
    return ProfilePaths(root)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably, mode 0600.

    Write a temporary file beside it, fsync, rename over the target, fsync the folder: after
    a crash the file holds either the old or the new bytes, never a mix.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _fsync_folder(path.parent)


def create_private_file(path: Path) -> None:
    """Create an empty file with mode 0600; SQLite then gives its -wal/-shm files that mode too."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def _is_free(root: Path) -> bool:
    """True when ``root`` does not exist or is an empty folder."""
    if not root.exists():
        return True
    return root.is_dir() and not any(root.iterdir())


@contextlib.contextmanager
def staged_profile(root: Path) -> Iterator[ProfilePaths]:
    """A new, empty profile folder that becomes ``root`` only if the block succeeds.

    The block fills a private folder beside ``root``; on success it is renamed to ``root`` in
    one step, so a failure (or a crash) never leaves half a profile at ``root``.
    Raises ProfileExists when ``root`` holds anything.
    """
    if not _is_free(root):
        raise ProfileExists(path=str(root))
    root.parent.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    staging = root.parent / f".{root.name}.new-{os.getpid()}-{time.monotonic_ns()}"
    staging.mkdir(mode=FOLDER_MODE)
    os.chmod(staging, FOLDER_MODE)  # mkdir's mode is filtered by the umask
    try:
        yield ProfilePaths(staging)
        try:
            os.rename(staging, root)  # replaces an empty folder, fails on a non-empty one
        except OSError as error:
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise ProfileExists(path=str(root)) from None
            raise
        _fsync_folder(root.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class ProfileLock:
    """An exclusive ``flock`` on the profile's lock file, held while the vault is open.

    The kernel drops the lock when the process dies, so a crash never leaves a stale lock.
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(
        cls,
        paths: ProfilePaths,
        *,
        timeout: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> ProfileLock:
        """Take the lock, waiting up to ``timeout`` seconds. Raises Busy when it stays taken."""
        fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, FILE_MODE)
        deadline = clock() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return cls(fd)
            except BlockingIOError:
                if clock() >= deadline:
                    os.close(fd)
                    raise Busy() from None
                sleep(_LOCK_POLL)

    def release(self) -> None:
        """Let the next opener in. Releasing twice is harmless."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> ProfileLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_locked(paths: ProfilePaths) -> bool:
    """True when another process holds the profile open right now."""
    try:
        lock = ProfileLock.acquire(paths, timeout=0)
    except Busy:
        return True
    lock.release()
    return False


def failed_attempts(paths: ProfilePaths) -> int:
    """How many unlocks failed in a row (0 when none, or when the counter is unreadable)."""
    try:
        text = paths.attempts.read_text("ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return 0
    return int(text) if text.isdigit() else 0


def record_attempt(paths: ProfilePaths, failures: int) -> None:
    """Store the failure counter (only a number)."""
    write_private_file(paths.attempts, f"{failures}\n".encode("ascii"))


def reset_attempts(paths: ProfilePaths) -> None:
    with contextlib.suppress(FileNotFoundError):
        paths.attempts.unlink()


def backoff_delay(failures: int) -> float:
    """Seconds to wait before checking a passphrase after ``failures`` failures in a row."""
    if failures <= 0:
        return 0.0
    return min(BACKOFF_FIRST * float(1 << min(failures - 1, 16)), BACKOFF_CAP)
