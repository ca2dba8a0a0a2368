"""C2SP transparency-log checkpoints (``c2sp.org/tlog-checkpoint`` v1.0.0).

A checkpoint is a signed note whose text is the log's origin, its tree size in decimal and
its RFC 6962 root hash in base64, one per line, then optional non-empty extension lines:

    vault.example/audit
    1000000
    <base64 of the 32-byte root>

kluis names the log's key after the origin (the C2SP SHOULD), so ``sign_checkpoint``
refuses a signer with another name. ``verify_checkpoint`` checks the signature before it
reads the text, and then that the origin is the one expected: a checkpoint of another log
signed by the same key must not pass for ours.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from vault.errors import InvalidInput, VerificationFailed
from verifiers.merkle import HASH_SIZE
from verifiers.note import Signer, VerifierKey, open_note, sign_note

# Tree sizes are uint64 in every tlog implementation (Go, transparency-dev, Rust).
MAX_SIZE = (1 << 64) - 1

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
_CONTROL = re.compile(r"[\x00-\x1f]")


class MalformedCheckpoint(InvalidInput):
    code = "checkpoint.malformed"
    en = "The checkpoint is not in the right format. Ask for a fresh copy of the log."
    nl = "Het controlepunt heeft niet de juiste vorm. Vraag om een nieuwe kopie van het logboek."


class WrongOrigin(VerificationFailed):
    code = "checkpoint.wrong_origin"
    en = "This checkpoint belongs to another log. Check that you opened the right log."
    nl = (
        "Dit controlepunt hoort bij een ander logboek. "
        "Controleer of u het juiste logboek hebt geopend."
    )


class KeyNameMismatch(InvalidInput):
    code = "checkpoint.key_name_mismatch"
    en = "The log key must carry the name of the log. Use the key that belongs to this log."
    nl = (
        "De sleutel van het logboek moet de naam van het logboek dragen. "
        "Gebruik de sleutel van dit logboek."
    )


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: ``origin``, ``size`` leaves and their ``root_hash``.

    Raises ``checkpoint.malformed`` when built with an empty or multi-line origin, a size
    outside 0..2**64-1, an empty root hash, or an empty or multi-line extension line.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or _CONTROL.search(self.origin):
            raise MalformedCheckpoint("C2SP tlog-checkpoint: the origin is one non-empty line")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_SIZE:
            raise MalformedCheckpoint("C2SP tlog-checkpoint: the tree size is a uint64")
        if not self.root_hash:
            raise MalformedCheckpoint("C2SP tlog-checkpoint: the root hash is not empty")
        for line in self.extensions:
            if not line or _CONTROL.search(line):
                raise MalformedCheckpoint("C2SP tlog-checkpoint: extension lines are non-empty")


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """The note text of ``checkpoint``: origin, size, base64 root, extensions, each + newline."""
    lines = [
        checkpoint.origin,
        str(checkpoint.size),
        base64.b64encode(checkpoint.root_hash).decode(),
        *checkpoint.extensions,
    ]
    return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str, *, hash_size: int | None = HASH_SIZE) -> Checkpoint:
    """Parse a checkpoint note text (C2SP tlog-checkpoint "Note text").

    ``hash_size`` is the root hash length of the log's hash (32 for SHA-256); ``None`` accepts
    any non-empty length, for parsing other logs' test bodies. Returns the ``Checkpoint``;
    raises ``checkpoint.malformed`` for fewer than three lines, a missing final newline, an
    empty origin, a size with a sign, leading zeros or beyond uint64, a root that is not
    canonical base64 of the right length, or an empty extension line.
    """
    if not text.endswith("\n"):
        raise MalformedCheckpoint("C2SP tlog-checkpoint: every line ends in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpoint("C2SP tlog-checkpoint: at least three lines")
    origin, size, root, *extensions = lines
    if not _SIZE.fullmatch(size) or int(size) > MAX_SIZE:
        raise MalformedCheckpoint("C2SP tlog-checkpoint: the size is decimal, no leading zeros")
    root_hash = _b64decode(root)
    if root_hash is None or (hash_size is not None and len(root_hash) != hash_size):
        raise MalformedCheckpoint(f"C2SP tlog-checkpoint: the root is base64 of {hash_size} bytes")
    return Checkpoint(origin, int(size), root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """Sign ``checkpoint`` as a C2SP signed note and return the note.

    Raises ``checkpoint.key_name_mismatch`` unless the signer's name is the origin, and
    ``checkpoint.malformed`` unless the root hash is 32 bytes (an RFC 6962 SHA-256 root).
    """
    if signer.name != checkpoint.origin:
        raise KeyNameMismatch("C2SP tlog-checkpoint: the key name SHOULD match the origin")
    if len(checkpoint.root_hash) != HASH_SIZE:
        raise MalformedCheckpoint("RFC 9162 §2.1.1: a SHA-256 root hash is 32 bytes")
    return sign_note(format_checkpoint(checkpoint), signer)


def verify_checkpoint(note: str | bytes, verifier_key: VerifierKey, *, origin: str) -> Checkpoint:
    """Open a signed checkpoint with ``verifier_key`` and check that it is of log ``origin``.

    Returns the verified ``Checkpoint``. Raises the ``note.*`` errors of ``open_note`` (other
    signatures, e.g. witnesses', are ignored), ``checkpoint.malformed`` for a bad body, and
    ``checkpoint.wrong_origin`` when the origin line is not ``origin``.
    """
    opened = open_note(note, [verifier_key])
    checkpoint = parse_checkpoint(opened.text)
    if checkpoint.origin != origin:
        raise WrongOrigin(f"C2SP tlog-checkpoint: origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint


def _b64decode(text: str) -> bytes | None:
    """Canonical standard base64 (RFC 4648 §4): one spelling per hash, so a flipped bit shows."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if raw and base64.b64encode(raw).decode() == text else None
