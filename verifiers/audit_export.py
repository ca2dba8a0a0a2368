"""The audit export: a folder, or a tar of one, that any transparency-log tool can check.

Layout (``specs/audit-export.md``)::

    entries.jsonl            line i = entry i, RFC 8785 bytes + LF (the bytes hashed)
    checkpoint               the latest signed checkpoint, of exactly these entries
    log.vkey                 the log's verifier key + LF
    checkpoints/<size>       earlier checkpoints the log handed out
    checkpoints/<size>.proof RFC 9162 consistency proof from <size> to the latest size
    receipts.jsonl           receipt tokens, one line per entry with a receipt_hash
    trustlists/<hash>.jws    the trust lists entries name by hash

``verify_export`` proves the log's integrity: it streams ``entries.jsonl`` once, recomputes
every leaf and the root, checks the checkpoint's signature with ``log.vkey`` (or a pinned
key), the root of every earlier checkpoint and of ``since`` at its size, and each
consistency proof. It reads no entry's content: that, and the receipts and trust lists the
entries name, is the replay's work (``verifiers.replay``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
import shutil
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from vault.errors import InvalidInput, NotFound, VerificationFailed
from verifiers.checkpoint import Checkpoint, verify_checkpoint
from verifiers.merkle import HASH_SIZE, MerkleTree, check_consistency
from verifiers.note import VerifierKey, format_verifier_key, parse_verifier_key
from verifiers.tlog import Attachment, canonical_json

ENTRIES = "entries.jsonl"
CHECKPOINT = "checkpoint"
VKEY = "log.vkey"
CHECKPOINTS = "checkpoints"
RECEIPTS = "receipts.jsonl"
TRUSTLISTS = "trustlists"
SPEC = "specs/audit-export.md"

BLOCK_BYTES = 1 << 22
"""Read size while streaming entries: large enough that hashing, not reading, dominates."""
MAX_NOTE_BYTES = 64 * 1024
MAX_EARLIER = 10_000

_EARLIER = re.compile(r"checkpoints/(0|[1-9][0-9]{0,19})(\.proof)?")
_TRUST_LIST = re.compile(r"trustlists/[A-Za-z0-9_-]{43}\.jws")
_FOLDERS = frozenset({CHECKPOINTS, TRUSTLISTS})
_FIXED = frozenset({ENTRIES, CHECKPOINT, VKEY, RECEIPTS})

Progress = Callable[[int], None]
"""Called with the number of entries read so far (for a progress bar)."""


class MissingFile(NotFound):
    code = "audit.missing_file"
    en = "The export has no '{name}'. Ask for the complete export."
    nl = "In de export ontbreekt '{name}'. Vraag om de volledige export."


class BadExport(InvalidInput):
    code = "audit.bad_export"
    en = "This is not an audit export in the expected form. Ask for a fresh export."
    nl = "Dit is geen auditexport in de verwachte vorm. Vraag om een nieuwe export."


class SizeMismatch(VerificationFailed):
    code = "audit.size_mismatch"
    en = (
        "The export holds another number of entries than its signed checkpoint says. "
        "Entries were added or removed."
    )
    nl = (
        "De export bevat een ander aantal regels dan het ondertekende controlepunt zegt. "
        "Er zijn regels toegevoegd of verwijderd."
    )


class RootMismatch(VerificationFailed):
    code = "audit.root_mismatch"
    en = "The entries do not match the signed checkpoint. An entry was changed or moved."
    nl = (
        "De regels passen niet bij het ondertekende controlepunt. "
        "Er is een regel gewijzigd of verplaatst."
    )


class KeyMismatch(VerificationFailed):
    code = "audit.key_mismatch"
    en = "The export's log key is not the key you trust for this log. Do not trust the export."
    nl = (
        "De sleutel van het logboek in de export is niet de sleutel die u vertrouwt. "
        "Vertrouw de export niet."
    )


class Forked(VerificationFailed):
    code = "audit.forked"
    en = (
        "The log signed two versions of its history that do not agree. "
        "Entries were changed after an earlier checkpoint; report this."
    )
    nl = (
        "Het logboek heeft twee versies van zijn geschiedenis ondertekend die niet kloppen "
        "met elkaar. Na een eerder controlepunt zijn regels gewijzigd; meld dit."
    )


class Rollback(VerificationFailed):
    code = "audit.rollback"
    en = (
        "The export is older than a checkpoint you saw before: entries are missing. "
        "Ask for the latest export."
    )
    nl = (
        "De export is ouder dan een controlepunt dat u eerder zag: er ontbreken regels. "
        "Vraag om de nieuwste export."
    )


@dataclass(frozen=True)
class EarlierCheckpoint:
    """A checkpoint the log handed out before, with the proof that the latest extends it."""

    note: str
    size: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class ExportSummary:
    """What ``write_export`` wrote."""

    path: Path
    size: int
    receipts: int
    trust_lists: int
    checkpoints: int


@dataclass(frozen=True)
class VerifiedExport:
    """A verified export: the log, its latest checkpoint, and which earlier ones it extends."""

    origin: str
    verifier_key: str
    checkpoint: Checkpoint
    earlier: tuple[int, ...]
    since: Checkpoint | None


# --- writing --------------------------------------------------------------------------------


def write_export(
    target: Path,
    *,
    lines: Iterable[bytes],
    size: int,
    attachments: Iterable[tuple[int, Attachment]],
    checkpoint: str,
    verifier_key: str,
    earlier: Sequence[EarlierCheckpoint] = (),
) -> ExportSummary:
    """Write an export of the first ``size`` entries to the new folder (or ``.tar``) ``target``.

    The folder is built beside ``target`` and renamed into place, so ``target`` is complete
    or absent. Files are owner-only: entries name agencies and items. Returns a summary;
    raises ``audit.bad_export`` when ``lines`` holds another number of entries than ``size``
    and ``FileExistsError`` when ``target`` exists (the shell checks that first).
    """
    if target.exists():
        raise FileExistsError(str(target))
    staging = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    staging.mkdir(mode=0o700)
    try:
        summary = _write_folder(staging, lines, size, attachments, checkpoint, verifier_key,
                                earlier)
        if target.suffix == ".tar":
            _tar_folder(staging, target)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return ExportSummary(target, *summary)


def _write_folder(
    folder: Path,
    lines: Iterable[bytes],
    size: int,
    attachments: Iterable[tuple[int, Attachment]],
    checkpoint: str,
    verifier_key: str,
    earlier: Sequence[EarlierCheckpoint],
) -> tuple[int, int, int, int]:
    count = 0
    with _private(folder / ENTRIES) as out:
        for line in lines:
            out.write(line + b"\n")
            count += 1
    if count != size:
        raise BadExport(f"{count} entries read, {size} expected")
    (folder / CHECKPOINTS).mkdir(mode=0o700)
    (folder / TRUSTLISTS).mkdir(mode=0o700)
    receipts = 0
    trust_lists: set[str] = set()
    with _private(folder / RECEIPTS) as out:
        for seq, attachment in attachments:
            if attachment.kind == "receipt":
                row = {"seq": seq, "receipt_id": attachment.name, "token": attachment.content}
                out.write(canonical_json(row) + b"\n")
                receipts += 1
            elif attachment.kind == "trust_list" and attachment.name not in trust_lists:
                trust_lists.add(attachment.name)
                with _private(folder / TRUSTLISTS / f"{attachment.name}.jws") as jws:
                    jws.write(attachment.content.encode("utf-8"))
    for old in earlier:
        with _private(folder / CHECKPOINTS / str(old.size)) as out:
            out.write(old.note.encode("utf-8"))
        with _private(folder / CHECKPOINTS / f"{old.size}.proof") as out:
            out.write(b"".join(base64.b64encode(h) + b"\n" for h in old.proof))
    with _private(folder / CHECKPOINT) as out:
        out.write(checkpoint.encode("utf-8"))
    with _private(folder / VKEY) as out:
        out.write(verifier_key.encode("ascii") + b"\n")
    return count, receipts, len(trust_lists), len(earlier)


@contextlib.contextmanager
def _private(path: Path) -> Iterator[IO[bytes]]:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb", buffering=1 << 20) as stream:
        yield stream


def _tar_folder(folder: Path, target: Path) -> None:
    """A plain POSIX tar of ``folder``'s files at the tar's root, written then renamed."""
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as raw, tarfile.open(
            fileobj=raw, mode="w", format=tarfile.PAX_FORMAT
        ) as tar:
            for path in sorted(folder.rglob("*")):
                info = tar.gettarinfo(str(path), arcname=path.relative_to(folder).as_posix())
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if path.is_file():
                    with path.open("rb") as stream:
                        tar.addfile(info, stream)
                else:
                    tar.addfile(info)
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()


# --- reading --------------------------------------------------------------------------------


class ExportReader:
    """The files of an export folder or tar, checked for names and kinds only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if path.is_dir():
            self._names = _folder_names(path)
        elif path.is_file():
            self._names = self._open_tar(path)
        else:
            raise MissingFile(f"{SPEC} §1", name=str(path))
        for name in self._names:
            if name not in _FIXED and not _EARLIER.fullmatch(name) and not (
                _TRUST_LIST.fullmatch(name)
            ):
                raise BadExport(f"{SPEC} §1: unexpected file {name!r}")

    def _open_tar(self, path: Path) -> list[str]:
        try:
            self._tar = tarfile.open(path, mode="r:")
            members = self._tar.getmembers()
        except (tarfile.TarError, OSError, EOFError):
            raise BadExport(f"{SPEC} §1: neither a folder nor a tar") from None
        for member in members:
            name = member.name.removeprefix("./")
            if member.isdir() and name in _FOLDERS:
                continue
            if not member.isfile() or name in self._members:
                raise BadExport(f"{SPEC} §1: tar member {member.name!r}")
            self._members[name] = member
        return sorted(self._members)

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    def __enter__(self) -> ExportReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def names(self, prefix: str = "") -> list[str]:
        return [name for name in self._names if name.startswith(prefix)]

    def has(self, name: str) -> bool:
        return name in self._names

    def open(self, name: str) -> IO[bytes]:
        """The file ``name`` for reading; raises ``audit.missing_file``."""
        if name not in self._names:
            raise MissingFile(f"{SPEC} §1", name=name)
        if self._tar is not None:
            stream = self._tar.extractfile(self._members[name])
            if stream is None:
                raise BadExport(f"{SPEC} §1: {name} is not a file")
            return stream
        return (self.path / name).open("rb")

    def read(self, name: str, limit: int = MAX_NOTE_BYTES) -> bytes:
        """All of a small file; raises ``audit.bad_export`` beyond ``limit`` bytes."""
        with self.open(name) as stream:
            data = stream.read(limit + 1)
        if len(data) > limit:
            raise BadExport(f"{SPEC} §1: {name} is larger than {limit} bytes")
        return data


def _folder_names(root: Path) -> list[str]:
    names = []
    for path in root.iterdir():
        if path.is_symlink():
            raise BadExport(f"{SPEC} §1: {path.name} is a symbolic link")
        if path.is_dir() and path.name in _FOLDERS:
            for inner in path.iterdir():
                if inner.is_symlink() or not inner.is_file():
                    raise BadExport(f"{SPEC} §1: {path.name}/{inner.name} is not a file")
                names.append(f"{path.name}/{inner.name}")
        elif path.is_file():
            names.append(path.name)
        else:
            raise BadExport(f"{SPEC} §1: {path.name} is not a file")
    return sorted(names)


def entry_blocks(stream: IO[bytes], block_bytes: int = BLOCK_BYTES) -> Iterator[list[bytes]]:
    """The lines of ``entries.jsonl`` in blocks, each line without its LF.

    Raises ``audit.bad_export`` when the file does not end with LF (a cut line).
    """
    tail = b""
    while chunk := stream.read(block_bytes):
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()
        if lines:
            yield lines
    if tail:
        raise BadExport(f"{SPEC} §2: entries.jsonl ends in the middle of a line")


# --- verifying ------------------------------------------------------------------------------


def verify_export(
    path: Path,
    *,
    key: VerifierKey | None = None,
    since: str | bytes | None = None,
    progress: Progress | None = None,
) -> VerifiedExport:
    """Verify the integrity of the export at ``path`` (``specs/audit-export.md`` §3).

    ``key`` pins the log's verifier key; ``since`` is a checkpoint note the auditor saw
    before. Returns the verified checkpoint and the sizes it was found consistent with.
    Raises ``audit.missing_file``, ``audit.bad_export``, ``audit.key_mismatch``, the
    ``note.*`` and ``checkpoint.*`` errors of a bad signature or body, ``audit.rollback``,
    ``audit.size_mismatch``, ``audit.root_mismatch``, ``audit.forked`` and
    ``merkle.bad_consistency_proof``, in that order of checking.
    """
    with ExportReader(path) as export:
        check = IntegrityCheck(export, key=key, since=since)
        with export.open(ENTRIES) as stream:
            for block in entry_blocks(stream):
                check.feed(block)
                if progress is not None:
                    progress(check.size)
        return check.finish()


class IntegrityCheck:
    """``verify_export`` in three steps, so a reader of the entries can hash while it reads.

    Building it checks the key, the signed checkpoints and rollback (steps 1-4); ``feed``
    hashes each block of lines in order; ``finish`` compares size and roots (steps 5-6).
    """

    def __init__(
        self, export: ExportReader, *, key: VerifierKey | None, since: str | bytes | None
    ) -> None:
        vkey = _read_verifier_key(export, key)
        self.origin = vkey.name
        self._vkey = vkey
        self.latest = verify_checkpoint(export.read(CHECKPOINT), vkey, origin=self.origin)
        self._earlier = _read_earlier(export, vkey, self.origin)
        self._since = verify_checkpoint(since, vkey, origin=self.origin) if since else None
        for old, _ in self._earlier:
            if old.size > self.latest.size:
                raise Rollback(f"{SPEC} §3 step 4: checkpoints/{old.size} is beyond the latest")
        if self._since is not None and self._since.size > self.latest.size:
            raise Rollback(f"{SPEC} §3 step 4: size {self._since.size} > {self.latest.size}")
        wanted = {old.size for old, _ in self._earlier}
        if self._since is not None:
            wanted.add(self._since.size)
        self._targets = iter(sorted(wanted))
        self._target = next(self._targets, None)
        self._tree = MerkleTree()
        self._roots: dict[int, bytes] = {}
        self._reach()

    @property
    def size(self) -> int:
        """Entries hashed so far."""
        return self._tree.size

    def feed(self, block: list[bytes]) -> None:
        """Hash the next lines (without their LF), in log order."""
        tree, start = self._tree, 0
        while self._target is not None and self._target <= tree.size + len(block) - start:
            take = self._target - tree.size
            tree.extend_entries(block[start : start + take])
            start += take
            self._reach()
        tree.extend_entries(block[start:] if start else block)

    def _reach(self) -> None:
        while self._target is not None and self._target == self._tree.size:
            self._roots[self._target] = self._tree.root()
            self._target = next(self._targets, None)

    def finish(self) -> VerifiedExport:
        """Compare what was hashed with the checkpoints; the verified export."""
        latest, size, root = self.latest, self._tree.size, self._tree.root()
        if size != latest.size:
            raise SizeMismatch(f"{SPEC} §3 step 5: {size} entries, checkpoint says {latest.size}")
        if root != latest.root_hash:
            raise RootMismatch(f"{SPEC} §3 step 5: RFC 9162 root of the entries differs")
        pinned = [(self._since, None)] if self._since is not None else []
        for old, proof in [*self._earlier, *pinned]:
            if self._roots.get(old.size) != old.root_hash:
                raise Forked(f"{SPEC} §3 step 6: the checkpoint at size {old.size} differs")
            if proof is not None and old.size > 0:
                check_consistency(old.size, latest.size, old.root_hash, latest.root_hash, proof)
        return VerifiedExport(
            self.origin,
            format_verifier_key(self._vkey),
            latest,
            tuple(sorted(old.size for old, _ in self._earlier)),
            self._since,
        )


def _read_verifier_key(export: ExportReader, pinned: VerifierKey | None) -> VerifierKey:
    raw = export.read(VKEY, 4096)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise BadExport(f"{SPEC} §2: log.vkey is ASCII") from None
    if not text.endswith("\n") or "\n" in text[:-1]:
        raise BadExport(f"{SPEC} §2: log.vkey is one line ending in LF")
    vkey = parse_verifier_key(text[:-1])
    if pinned is not None and (pinned.name, pinned.key_id, pinned.public_key) != (
        vkey.name, vkey.key_id, vkey.public_key
    ):
        raise KeyMismatch(f"{SPEC} §3 step 1: log.vkey is not the pinned key")
    return vkey


def _read_earlier(
    export: ExportReader, vkey: VerifierKey, origin: str
) -> list[tuple[Checkpoint, tuple[bytes, ...] | None]]:
    names = export.names(CHECKPOINTS + "/")
    if len(names) > 2 * MAX_EARLIER:
        raise BadExport(f"{SPEC} §2: more than {MAX_EARLIER} earlier checkpoints")
    found = []
    for name in names:
        if name.endswith(".proof"):
            if name.removesuffix(".proof") not in names:
                raise BadExport(f"{SPEC} §2: {name} without its checkpoint")
            continue
        checkpoint = verify_checkpoint(export.read(name), vkey, origin=origin)
        if name != f"{CHECKPOINTS}/{checkpoint.size}":
            raise BadExport(f"{SPEC} §2: {name} holds the checkpoint of size {checkpoint.size}")
        proof_name = name + ".proof"
        proof = _parse_proof(export.read(proof_name)) if proof_name in names else None
        found.append((checkpoint, proof))
    return found


def _parse_proof(data: bytes) -> tuple[bytes, ...]:
    """One canonical base64 hash per LF-terminated line (``specs/audit-export.md`` §2)."""
    if data and not data.endswith(b"\n"):
        raise BadExport(f"{SPEC} §2: a proof line ends in LF")
    hashes = []
    for line in data.split(b"\n")[:-1]:
        try:
            node = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise BadExport(f"{SPEC} §2: a proof line is base64") from None
        if len(node) != HASH_SIZE or base64.b64encode(node) != line:
            raise BadExport(f"{SPEC} §2: a proof line is canonical base64 of 32 bytes")
        hashes.append(node)
    return tuple(hashes)
