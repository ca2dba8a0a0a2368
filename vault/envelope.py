"""The encrypted envelope of an export archive: a header with the Argon2id parameters, then a
libsodium secretstream (XChaCha20-Poly1305) of length-prefixed chunks. specs/archive.md
describes every byte.

The stream authenticates each chunk, their order, and the end (the last chunk carries the
FINAL tag), so a truncated or reordered file is detected without holding it in memory. A
MAC over the header, keyed from the passphrase, tells a wrong passphrase apart from damage
to the content.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import nacl.bindings as sodium
import nacl.exceptions
import nacl.pwhash

from vault.errors import InvalidInput, NotPermitted, VerificationFailed
from vault.keyring import MAX_MEMLIMIT, MAX_OPSLIMIT, KdfParams, derive_passphrase_key

MAGIC = b"KLUISARC"
VERSION = 1
KDF_ARGON2ID13 = 1
# magic, version, kdf, opslimit, memlimit, salt, secretstream header
_HEADER = struct.Struct(">8sHHIQ16s24s")
HEADER_BYTES = _HEADER.size  # 64
MAC_BYTES = 32
PLAIN_CHUNK = 1 << 20
_ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES  # 17
_LENGTH = struct.Struct(">I")
_TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


class NotAnArchive(InvalidInput):
    code = "archive.not_an_archive"
    en = "This file is not a kluis export. Choose the file that 'kluis vault export' made."
    nl = (
        "Dit bestand is geen kluis-export. Kies het bestand dat 'kluis vault export' heeft gemaakt."
    )


class UnsupportedArchive(InvalidInput):
    code = "archive.unsupported"
    en = "This export was made by another version of kluis that this one cannot read. Update kluis."
    nl = (
        "Deze export is gemaakt met een andere versie van kluis die deze niet kan lezen. Werk kluis"
        " bij."
    )


class WrongArchivePassphrase(NotPermitted):
    code = "archive.wrong_passphrase"
    en = "The export passphrase is not correct (or the start of the file is damaged). Try again."
    nl = (
        "Het exportwachtwoord klopt niet (of het begin van het bestand is beschadigd). Probeer het "
        "opnieuw."
    )


class Truncated(VerificationFailed):
    code = "archive.truncated"
    en = "The export file is incomplete: it ends too early. Copy the whole file again and retry."
    nl = "Het exportbestand is onvolledig: het houdt te vroeg op. Kopieer het hele bestand opnieuw."


class Tampered(VerificationFailed):
    code = "archive.tampered"
    en = "The export file was changed or damaged after it was made. Use an undamaged copy."
    nl = (
        "Het exportbestand is veranderd of beschadigd nadat het is gemaakt. Gebruik een "
        "onbeschadigde kopie."
    )


@dataclass(frozen=True)
class _Keys:
    stream: bytes
    mac: bytes


def _derive(passphrase: str, salt: bytes, kdf: KdfParams) -> _Keys:
    # One Argon2id run, 64 bytes: the first half keys the stream, the second the header MAC.
    material = derive_passphrase_key(passphrase, salt, kdf, size=64)
    return _Keys(stream=material[:32], mac=material[32:])


def _mac(keys: _Keys, header: bytes) -> bytes:
    return hmac.new(keys.mac, b"kluis/v1/archive-header|" + header, hashlib.sha256).digest()


class SealedWriter:
    """A write-only stream that seals what it is given into ``out`` (see ``seal_stream``)."""

    def __init__(self, out: BinaryIO, passphrase: str, kdf: KdfParams) -> None:
        salt = secrets.token_bytes(16)
        keys = _derive(passphrase, salt, kdf)
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        stream_header = sodium.crypto_secretstream_xchacha20poly1305_init_push(
            self._state, keys.stream
        )
        header = _HEADER.pack(
            MAGIC, VERSION, KDF_ARGON2ID13, kdf.opslimit, kdf.memlimit, salt, stream_header
        )
        self._header = header + _mac(keys, header)
        self._out = out
        self._buffer = bytearray()
        self._first = True
        out.write(self._header)

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > PLAIN_CHUNK:
            self._push(bytes(self._buffer[:PLAIN_CHUNK]), _TAG_MESSAGE)
            del self._buffer[:PLAIN_CHUNK]
        return len(data)

    def _push(self, plain: bytes, tag: int) -> None:
        # The first chunk authenticates the whole header as associated data.
        ad = self._header if self._first else None
        self._first = False
        sealed = sodium.crypto_secretstream_xchacha20poly1305_push(self._state, plain, ad, tag)
        self._out.write(_LENGTH.pack(len(sealed)) + sealed)

    def finish(self) -> None:
        """Seal the rest with the FINAL tag. Without it, a reader reports truncation."""
        self._push(bytes(self._buffer), _TAG_FINAL)
        self._buffer.clear()


def seal_stream(out: BinaryIO, passphrase: str, kdf: KdfParams) -> SealedWriter:
    """A writer sealing into ``out`` under ``passphrase``; call ``finish()`` at the end."""
    return SealedWriter(out, passphrase, kdf)


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        piece = source.read(size - len(data))
        if not piece:
            break
        data += piece
    return data


def _parse_header(source: BinaryIO) -> tuple[bytes, KdfParams, bytes, bytes, bytes]:
    head = _read_exactly(source, HEADER_BYTES + MAC_BYTES)
    if not head.startswith(MAGIC):
        raise NotAnArchive("magic")
    if len(head) < HEADER_BYTES + MAC_BYTES:
        raise Truncated("header")
    header, mac = head[:HEADER_BYTES], head[HEADER_BYTES:]
    _, version, kdf_id, opslimit, memlimit, salt, stream_header = _HEADER.unpack(header)
    if version != VERSION or kdf_id != KDF_ARGON2ID13:
        raise UnsupportedArchive(f"version {version}, kdf {kdf_id}")
    if not (
        nacl.pwhash.argon2id.OPSLIMIT_MIN <= opslimit <= MAX_OPSLIMIT
        and nacl.pwhash.argon2id.MEMLIMIT_MIN <= memlimit <= MAX_MEMLIMIT
    ):
        raise UnsupportedArchive("Argon2id parameters out of range")
    return header, KdfParams(opslimit, memlimit), salt, stream_header, mac


class OpenedReader:
    """A read-only stream of the plaintext of a sealed archive (see ``open_stream``)."""

    def __init__(self, source: BinaryIO, passphrase: str) -> None:
        header, kdf, salt, stream_header, mac = _parse_header(source)
        keys = _derive(passphrase, salt, kdf)
        if not hmac.compare_digest(mac, _mac(keys, header)):
            raise WrongArchivePassphrase()
        self._header = header + mac
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(
            self._state, stream_header, keys.stream
        )
        self._source = source
        self._first = True
        self._done = False
        self._buffer = b""
        self._offset = 0

    def _pull(self) -> bytes:
        prefix = _read_exactly(self._source, _LENGTH.size)
        if len(prefix) < _LENGTH.size:
            raise Truncated("no FINAL chunk")
        (length,) = _LENGTH.unpack(prefix)
        if not _ABYTES <= length <= PLAIN_CHUNK + _ABYTES:
            raise Tampered("chunk length")
        sealed = _read_exactly(self._source, length)
        if len(sealed) < length:
            raise Truncated("chunk cut short")
        ad = self._header if self._first else None
        self._first = False
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(self._state, sealed, ad)
        except nacl.exceptions.CryptoError:
            raise Tampered("chunk authentication") from None
        if tag == _TAG_FINAL:
            self._done = True
            if self._source.read(1):
                raise Tampered("data after the FINAL chunk")
        elif tag != _TAG_MESSAGE:
            raise Tampered("unexpected tag")
        return bytes(plain)

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` plaintext bytes (all the rest for -1); b"" only at the verified end."""
        parts: list[bytes] = []
        wanted = size if size >= 0 else None
        while wanted is None or wanted > 0:
            if self._offset >= len(self._buffer):
                if self._done:
                    break
                self._buffer, self._offset = self._pull(), 0
                continue
            end = (
                len(self._buffer)
                if wanted is None
                else min(len(self._buffer), self._offset + wanted)
            )
            parts.append(self._buffer[self._offset : end])
            if wanted is not None:
                wanted -= end - self._offset
            self._offset = end
        return b"".join(parts)

    def drain(self) -> None:
        """Read to the end, so truncation or tampering after the last used byte is caught."""
        while self.read(PLAIN_CHUNK):
            pass

    def chunks(self) -> Iterator[bytes]:
        while piece := self.read(PLAIN_CHUNK):
            yield piece


def open_stream(source: BinaryIO, passphrase: str) -> OpenedReader:
    """A reader of the plaintext sealed in ``source``.

    Raises NotAnArchive, UnsupportedArchive, Truncated (header) and WrongArchivePassphrase
    here; reading raises Truncated or Tampered.
    """
    return OpenedReader(source, passphrase)
