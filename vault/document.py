"""Document content on its way in and out: reading a file or stream in chunks, and writing a
file so that it appears complete or not at all.

Documents can be many megabytes, so nothing here holds a whole document in memory: content
moves in CHUNK_SIZE pieces.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from vault.errors import Conflict, InvalidInput, NotFound

# 1 MiB pieces: big enough that per-row overhead vanishes next to the page encryption, small
# enough that memory stays flat for any document size.
CHUNK_SIZE = 1 << 20
_OUTPUT_MODE = 0o600  # personal data leaving the vault: readable by the owner only


class NoFile(NotFound):
    code = "vault.no_file"
    en = "There is no file at {path}. Check the path and try again."
    nl = "Er is geen bestand op {path}. Controleer het pad en probeer het opnieuw."


class NotAFile(InvalidInput):
    code = "vault.not_a_file"
    en = "{path} is a folder or a special file, not a regular file. Give the path of a file."
    nl = (
        "{path} is een map of een speciaal bestand, geen gewoon bestand. Geef het pad van een "
        "bestand."
    )


class FileExists(Conflict):
    code = "vault.file_exists"
    en = "There is already a file at {path}. Choose another name, or move that file first."
    nl = "Er staat al een bestand op {path}. Kies een andere naam, of verplaats dat bestand eerst."


@contextlib.contextmanager
def open_input(content: Path | BinaryIO) -> Iterator[BinaryIO]:
    """A binary stream of ``content``: a path is opened (and closed after), a stream passes.

    Raises NoFile when the path does not exist, NotAFile when it is a folder or not a
    regular file.
    """
    if not isinstance(content, Path):
        yield content
        return
    if not content.exists():
        raise NoFile(path=str(content))
    if not content.is_file():
        raise NotAFile(path=str(content))
    try:
        stream = content.open("rb")
    except FileNotFoundError:
        raise NoFile(path=str(content)) from None
    except IsADirectoryError:
        raise NotAFile(path=str(content)) from None
    with stream:
        yield stream


def read_chunks(stream: BinaryIO, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The stream's bytes in pieces of ``size`` (the last one shorter)."""
    while True:
        piece = stream.read(size)
        if not piece:
            return
        yield piece


@contextlib.contextmanager
def new_file(path: Path) -> Iterator[BinaryIO]:
    """A stream that becomes the new file ``path`` (mode 0600) when the block succeeds.

    Bytes go to a hidden temporary file beside ``path``; on success it is fsynced and linked
    into place, which fails rather than overwriting a file that appeared meanwhile. On
    failure the temporary file is removed and ``path`` never exists.
    Raises FileExists when ``path`` exists, NoFile when its folder does not.
    """
    if path.exists() or path.is_symlink():
        raise FileExists(path=str(path))
    if not path.parent.is_dir():
        raise NoFile(path=str(path.parent))
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _OUTPUT_MODE)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            raise FileExists(path=str(path)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
