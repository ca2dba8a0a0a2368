"""Files the developer and agency commands read and write: JSON documents, JWK key files, and
state that is changed in place.

Writing is all-or-nothing: bytes go to a hidden temporary file beside the target, are flushed
to disk, and only then take the target's name, so a crash leaves the old file or the new one,
never half of one. A file changed in place (an agency's status list) is also locked for the
whole read-change-write, so two commands run at once cannot both hand out the same index.

Key files follow ``kluis sdjwt keygen``: ``KEY.jwk`` holds the private JWK, ``KEY.pub.jwk``
the public one (RFC 7517). Key material never appears in an error.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jwcrypto.jwk import JWK

from vault import FileExists, InvalidInput, NoFile, NotAFile, NotPermitted
from verifiers.jws import BadKey, parse_jwk, parse_private_jwk

STDIN = "-"
# Far above any trust list (4 MiB) or status list state (two lists of at most 16 MiB,
# compressed); it keeps a wrong file (a disk image) from filling memory.
MAX_FILE_BYTES = 64 << 20


class BadJson(InvalidInput):
    code = "cli.bad_json"
    en = "{path} is not a valid JSON file. Check that you chose the right file."
    nl = "{path} is geen geldig JSON-bestand. Controleer of u het juiste bestand koos."


class TooLarge(InvalidInput):
    code = "cli.file_too_large"
    en = "{path} is too large for this command (more than 64 MiB). Check the file."
    nl = "{path} is te groot voor deze opdracht (meer dan 64 MiB). Controleer het bestand."


class NoAccess(NotPermitted):
    code = "cli.no_access"
    en = "kluis may not read or write {path}. Check the permissions of the file and its folder."
    nl = (
        "kluis mag {path} niet lezen of schrijven. Controleer de rechten van het bestand en de map."
    )


def read_bytes(path: Path | str) -> bytes:
    """The bytes of ``path``, or of standard input for ``-``.

    Raises ``vault.no_file``, ``vault.not_a_file`` or ``cli.file_too_large``.
    """
    if str(path) == STDIN:
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise TooLarge(path=STDIN)
        return data
    fd = _open_regular(Path(path))
    try:
        return _read_limited(fd, Path(path))
    finally:
        os.close(fd)


def read_json(path: Path | str) -> Any:
    """The JSON value in ``path`` (duplicate member names refused, RFC 8259 §4, RFC 7493).

    Raises as :func:`read_bytes` does, and ``cli.bad_json``.
    """
    return parse_json(read_bytes(path), path)


def parse_json(data: bytes, path: Path | str) -> Any:
    """The JSON value in ``data`` read from ``path``; raises ``cli.bad_json``."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        members = dict(pairs)
        if len(members) != len(pairs):
            raise ValueError("duplicate member name")
        return members

    try:
        return json.loads(data, object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError):
        raise BadJson("RFC 8259: JSON without duplicate member names", path=str(path)) from None


def read_private_jwk(path: Path | str) -> JWK:
    """The private P-256 or Ed25519 key in JWK file ``path`` (``KEY.jwk``).

    Raises as :func:`read_json` does, and ``jws.bad_key`` (a public key, another key type).
    """
    jwk = read_json(path)
    parse_private_jwk(jwk)  # strict check first; its errors never hold key material
    return _jwcrypto_key(jwk)


def read_public_jwk(path: Path | str) -> JWK:
    """The public P-256 or Ed25519 key in JWK file ``path`` (``KEY.pub.jwk``).

    A file with a private member ``d`` is refused (``jws.bad_key``): a command that only
    checks signatures has no reason to read a secret key.
    """
    jwk = read_json(path)
    parse_jwk(jwk)
    return _jwcrypto_key(jwk)


def _jwcrypto_key(jwk: dict[str, Any]) -> JWK:
    try:
        return JWK(**jwk)
    except Exception:  # jwcrypto raises many kinds; the key text must not leak
        raise BadKey("RFC 7517 §4: the JWK could not be read") from None


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data``, whole or not at all; never overwrite.

    Raises ``vault.file_exists`` when ``path`` exists, ``vault.no_file`` when its folder does
    not.
    """
    if path.exists() or path.is_symlink():
        raise FileExists(path=str(path))
    with _temporary_beside(path, data, mode=None) as temp:
        try:
            os.link(temp, path)  # unlike rename, fails if the name appeared meanwhile
        except FileExistsError:
            raise FileExists(path=str(path)) from None
    _sync_folder(path.parent)


def replace(path: Path, data: bytes) -> None:
    """Make ``path`` hold ``data`` (created or replaced), whole or not at all.

    An existing file keeps its permissions. Raises ``vault.not_a_file`` when ``path`` is a
    folder or special file, ``vault.no_file`` when its folder does not exist.
    """
    mode = None
    with contextlib.suppress(FileNotFoundError):
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise NotAFile(path=str(path))
        mode = stat.S_IMODE(info.st_mode)
    with _temporary_beside(path, data, mode=mode) as temp:
        os.replace(temp, path)
    _sync_folder(path.parent)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[bytes]:
    """Hold ``path`` locked against other ``locked`` users; yield its bytes.

    Change it inside the block with :func:`replace`. A waiter that wakes up after the file
    was replaced sees that its lock is on the old file and locks the new one, so it reads
    what the first writer wrote. Raises as :func:`read_bytes` does.
    """
    while True:
        fd = _open_regular(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            with contextlib.suppress(FileNotFoundError):
                current = os.stat(path)
                if (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
                    break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # replaced while we waited: lock the file that has the name now
    try:
        yield _read_limited(fd, path)
    finally:
        os.close(fd)  # releases the lock


def _open_regular(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise NoFile(path=str(path)) from None
    except IsADirectoryError:
        raise NotAFile(path=str(path)) from None
    except PermissionError:
        raise NoAccess(path=str(path)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotAFile(path=str(path))
    return fd


def _read_limited(fd: int, path: Path) -> bytes:
    chunks, size = [], 0
    while chunk := os.read(fd, 1 << 20):
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise TooLarge(path=str(path))
        chunks.append(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def _temporary_beside(path: Path, data: bytes, *, mode: int | None) -> Iterator[Path]:
    """A complete, synced temporary copy of ``data`` next to ``path``; removed afterwards."""
    if not path.parent.is_dir():
        raise NoFile(path=str(path.parent))
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else 0o600)
    except PermissionError:
        raise NoAccess(path=str(path)) from None
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            if mode is not None:
                os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        yield temp
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _sync_folder(folder: Path) -> None:
    """Make the new name durable too (a rename lives in the folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
