"""C2SP signed notes (``c2sp.org/signed-note`` v1.0.0) with Ed25519 keys.

A signed note is UTF-8 text ending in a newline, a blank line, then one or more signature
lines ``— <key name> base64(4-byte key ID || signature)``. A verifier key is written
``<name>+<hex key ID>+base64(0x01 || 32-byte public key)``; the key ID is
``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` read big-endian.

``sign_note`` / ``open_note`` are the pair most callers need. ``open_note`` ignores
signatures by unknown keys (C2SP: "Verifiers MUST ignore signatures from unknown keys"),
rejects the note when a known key's signature fails (the SHOULD, taken as a MUST here) and
when no known key signed it. Base64 must be canonical, so no two spellings of one signature
exist and any changed bit of a note is caught.

Only Ed25519 (signature type 0x01) is implemented; other types are refused when a key is
parsed, as C2SP recommends supporting only what the design needs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vault.errors import InvalidInput, VerificationFailed

ED25519 = 0x01
# golang.org/x/mod/sumdb/note stops at 100; C2SP requires accepting at least 16.
MAX_SIGNATURES = 100

_DASH = "\u2014 "
_HEX_ID = re.compile(r"[0-9a-f]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class MalformedNote(InvalidInput):
    code = "note.malformed"
    en = "The signed note is not in the right format. Ask the sender for a fresh copy."
    nl = "De ondertekende notitie heeft niet de juiste vorm. Vraag de afzender om een nieuwe kopie."


class BadText(InvalidInput):
    code = "note.bad_text"
    en = (
        "This text cannot be signed as a note: it must be UTF-8, end with a newline "
        "and have no control characters."
    )
    nl = (
        "Deze tekst kan niet als notitie worden ondertekend: gebruik UTF-8, sluit af met "
        "een nieuwe regel en gebruik geen stuurtekens."
    )


class BadKeyName(InvalidInput):
    code = "note.bad_key_name"
    en = "A key name must not be empty and must not contain spaces or '+'. Choose another name."
    nl = "Een sleutelnaam mag niet leeg zijn en geen spaties of '+' bevatten. Kies een andere naam."


class BadVerifierKey(InvalidInput):
    code = "note.bad_verifier_key"
    en = "The public key of the log is not valid. Check that you copied it completely."
    nl = (
        "De publieke sleutel van het logboek is niet geldig. "
        "Controleer of u hem volledig hebt gekopieerd."
    )


class BadSignerKey(InvalidInput):
    code = "note.bad_signer_key"
    en = "The signing key could not be read."
    nl = "De ondertekeningssleutel kon niet worden gelezen."


class BadSignature(VerificationFailed):
    code = "note.bad_signature"
    en = "A signature on the note does not match its text. The note was changed after signing."
    nl = (
        "Een handtekening onder de notitie past niet bij de tekst. "
        "De notitie is na ondertekening gewijzigd."
    )


class UnverifiedNote(VerificationFailed):
    code = "note.unverified"
    en = "None of the keys you trust signed this note. Check that you have the right public key."
    nl = (
        "Geen van de sleutels die u vertrouwt heeft deze notitie ondertekend. "
        "Controleer of u de juiste publieke sleutel hebt."
    )


def key_id(name: str, signature_type: int, public_key: bytes) -> int:
    """``SHA-256(name || 0x0A || type || public key)[:4]`` big-endian (C2SP signed-note)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class VerifierKey:
    """A named Ed25519 public key that notes are checked against. Build with
    ``parse_verifier_key`` or ``Signer.verifier_key``."""

    name: str
    key_id: int
    public_key: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.public_key))

    def _verifies(self, message: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """A named Ed25519 signing key. Its repr shows the name and key ID only, never the key."""

    __slots__ = ("_key", "key_id", "name")

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        _require_name(name, BadKeyName)
        self.name = name
        self._key = key
        self.key_id = key_id(name, ED25519, key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A new random key called ``name``. Raises ``note.bad_key_name``."""
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def verifier_key(self) -> VerifierKey:
        """The public half, to publish as ``format_verifier_key(signer.verifier_key)``."""
        return VerifierKey(self.name, self.key_id, self._key.public_key().public_bytes_raw())

    def _sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id={self.key_id:08x})"


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: who (name and key ID) and the signature bytes after the key ID."""

    name: str
    key_id: int
    signature: bytes


@dataclass(frozen=True)
class Note:
    """A note as written, before any signature is checked. Do not act on ``text`` yet."""

    text: str
    signatures: tuple[NoteSignature, ...]


@dataclass(frozen=True)
class OpenedNote:
    """A note whose ``verified`` signatures were checked with known keys."""

    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]

    @property
    def signed_by(self) -> tuple[str, ...]:
        """Names of the known keys whose signatures verified."""
        return tuple(sig.name for sig in self.verified)


# --- keys --------------------------------------------------------------------------------------


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse ``<name>+<hex id>+<base64(0x01 || key)>``, splitting on the first two ``+`` only.

    Returns the key; raises ``note.bad_verifier_key`` for a bad name, an ID that is not eight
    lowercase hex digits or does not match the key, a type other than Ed25519, or a key that
    is not 32 bytes.
    """
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise BadVerifierKey("C2SP signed-note: a verifier key has three '+'-separated parts")
    name, hex_id, encoded = parts
    _require_name(name, BadVerifierKey)
    if not _HEX_ID.fullmatch(hex_id):
        raise BadVerifierKey("C2SP signed-note: the key ID is eight hex digits")
    raw = _b64decode(encoded)
    if raw is None or not raw:
        raise BadVerifierKey("C2SP signed-note: the key is standard base64")
    if raw[0] != ED25519:
        raise BadVerifierKey(f"C2SP signed-note: signature type {raw[0]:#04x} is not supported")
    if len(raw) != 33:
        raise BadVerifierKey("RFC 8032 §5.1.5: an Ed25519 public key is 32 bytes")
    if key_id(name, ED25519, raw[1:]) != int(hex_id, 16):
        raise BadVerifierKey("C2SP signed-note: the key ID does not match the key")
    try:
        return VerifierKey(name, int(hex_id, 16), raw[1:])
    except ValueError:
        raise BadVerifierKey("RFC 8032 §5.1.3: not an Ed25519 public key") from None


def format_verifier_key(key: VerifierKey) -> str:
    """The text form ``<name>+<hex id>+<base64(0x01 || key)>`` (C2SP signed-note)."""
    encoded = base64.b64encode(bytes([ED25519]) + key.public_key).decode()
    return f"{key.name}+{key.key_id:08x}+{encoded}"


def parse_signer_key(text: str) -> Signer:
    """Parse Go's ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`` (golang.org/x/mod).

    Returns the signer; raises ``note.bad_signer_key`` without saying more (it is a secret).
    """
    parts = text.split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _HEX_ID.fullmatch(parts[3]):
        raise BadSignerKey()
    name, hex_id, encoded = parts[2:]
    raw = _b64decode(encoded)
    if raw is None or len(raw) != 33 or raw[0] != ED25519 or not _valid_name(name):
        raise BadSignerKey()
    signer = Signer(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if signer.key_id != int(hex_id, 16):
        raise BadSignerKey()
    return signer


def format_signer_key(signer: Signer) -> str:
    """Go's ``PRIVATE+KEY+...`` form, so the log key can be stored in the vault. Secret."""
    seed = signer._key.private_bytes_raw()
    encoded = base64.b64encode(bytes([ED25519]) + seed).decode()
    return f"PRIVATE+KEY+{signer.name}+{signer.key_id:08x}+{encoded}"


# --- notes -------------------------------------------------------------------------------------


def sign_note(text: str, signers: Signer | Sequence[Signer]) -> str:
    """Sign ``text`` with each signer, in order, and return the signed note.

    Raises ``note.bad_text`` unless the text is non-empty, ends with a newline and has no
    control character but newline (C2SP signed-note "Format").
    """
    message = _text_bytes(text, BadText)
    if not text.endswith("\n"):
        raise BadText("C2SP signed-note: the text ends in a newline")
    chosen = [signers] if isinstance(signers, Signer) else list(signers)
    if not 1 <= len(chosen) <= MAX_SIGNATURES:
        raise BadText(f"C2SP signed-note: a note has 1 to {MAX_SIGNATURES} signatures")
    sigs = tuple(NoteSignature(s.name, s.key_id, s._sign(message)) for s in chosen)
    return format_note(Note(text, sigs))


def format_note(note: Note) -> str:
    """The text, a blank line, and one ``— name base64(id || sig)`` line per signature."""
    lines = [note.text, "\n"]
    for sig in note.signatures:
        encoded = base64.b64encode(sig.key_id.to_bytes(4, "big") + sig.signature).decode()
        lines.append(f"{_DASH}{sig.name} {encoded}\n")
    return "".join(lines)


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into its text and signature lines, checking only the grammar.

    Returns the ``Note``; raises ``note.malformed`` for invalid UTF-8, a control character,
    no blank line before the signatures, a bad signature line, or more than 100 signatures.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedNote("C2SP signed-note: a note is valid UTF-8") from None
    _text_bytes(note, MalformedNote)
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNote("C2SP signed-note: a blank line separates text and signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedNote("C2SP signed-note: each signature line ends in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"more than {MAX_SIGNATURES} signatures")
    return Note(text, tuple(_parse_signature_line(line) for line in lines))


def open_note(note: str | bytes, verifiers: Iterable[VerifierKey]) -> OpenedNote:
    """Parse a note and check every signature made by a known (name, key ID).

    Returns the text with the verified and the ignored (unknown key) signatures. Raises
    ``note.malformed`` (see ``parse_note``), ``note.bad_verifier_key`` if two different keys
    share a name and ID, ``note.bad_signature`` if a known key's signature fails, and
    ``note.unverified`` if no known key signed (C2SP signed-note "Signatures").
    """
    parsed = parse_note(note)
    known: dict[tuple[str, int], VerifierKey] = {}
    for given in verifiers:
        other = known.setdefault((given.name, given.key_id), given)
        if other.public_key != given.public_key:
            raise BadVerifierKey("C2SP signed-note: two known keys share name and key ID")
    message = parsed.text.encode()
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    for sig in parsed.signatures:
        key = known.get((sig.name, sig.key_id))
        if key is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        if not key._verifies(message, sig.signature):
            raise BadSignature(f"C2SP signed-note: signature by {sig.name}+{sig.key_id:08x}")
        if sig not in verified:
            verified.append(sig)
    if not verified:
        raise UnverifiedNote("C2SP signed-note: no signature by a known key verifies")
    return OpenedNote(parsed.text, tuple(verified), tuple(unverified))


# --- grammar -----------------------------------------------------------------------------------


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_DASH):
        raise MalformedNote("C2SP signed-note: a signature line starts with an em dash and space")
    name, space, encoded = line[len(_DASH) :].partition(" ")
    if not space or not _valid_name(name):
        raise MalformedNote("C2SP signed-note: a key name is non-empty, without spaces or '+'")
    raw = _b64decode(encoded)
    if raw is None or len(raw) < 5:
        raise MalformedNote("C2SP signed-note: a signature is base64(4-byte key ID || bytes)")
    return NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def _valid_name(name: str) -> bool:
    if not name or "+" in name or _CONTROL.search(name):
        return False
    return not any(c.isspace() for c in name)


def _require_name(name: str, error: type[InvalidInput]) -> None:
    if not _valid_name(name):
        raise error("C2SP signed-note: a key name is non-empty, without spaces or '+'")
    _text_bytes(name, error)


def _text_bytes(text: str, error: type[InvalidInput]) -> bytes:
    """UTF-8 of ``text``, refusing control characters other than newline (and lone surrogates)."""
    if _CONTROL.search(text):
        raise error("C2SP signed-note: no ASCII control characters other than newline")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise error("C2SP signed-note: a note is valid UTF-8") from None


def _b64decode(text: str) -> bytes | None:
    """Standard base64 (RFC 4648 §4), canonical only: one spelling per byte string."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode() == text else None
