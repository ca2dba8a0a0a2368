"""The data key and its two wrappings: by the passphrase (Argon2id) and by the recovery code.

The data key is 32 random bytes that open the SQLCipher database. It is never stored in the
clear: the key file holds it twice, sealed with XChaCha20-Poly1305 (libsodium via pynacl),

- once under Argon2id(passphrase, salt) - the Argon2id parameters are stored beside it, so a
  later version can raise them by rewrapping at the next passphrase change;
- once under HKDF-SHA256(recovery code): the recovery code carries 160 random bits, so a
  slow password hash would add nothing against guessing and only cost the citizen time.

Each seal's associated data names the profile and the purpose, so a wrapped key cannot be
moved to another profile or slot. Changing the passphrase or recovering only rewraps: the
database is never re-encrypted.
"""

from __future__ import annotations

import base64
import json
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.errors import InvalidInput, NotPermitted, VerificationFailed

DATA_KEY_BYTES = 32
SALT_BYTES = nacl.pwhash.argon2id.SALTBYTES
NONCE_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
RECOVERY_BYTES = 20  # 160 bits: 32 base32 characters, shown as 8 groups of 4
KEY_FILE_FORMAT = "kluis-key"
KEY_FILE_VERSION = 1

MIN_PASSPHRASE = 8
MAX_PASSPHRASE = 1024


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost: ``opslimit`` passes over ``memlimit`` bytes of memory."""

    opslimit: int
    memlimit: int


# libsodium's "moderate" level: 3 passes over 256 MiB, about 0.5 s here (bench/vault.py
# prints it). The passphrase is the only thing between a copied key file and the data, and a
# citizen unlocks once per command or session, so half a second is worth paying; 256 MiB
# makes each guess expensive on GPUs too. The archive uses the same level.
PASSPHRASE_KDF = KdfParams(
    opslimit=nacl.pwhash.argon2id.OPSLIMIT_MODERATE,
    memlimit=nacl.pwhash.argon2id.MEMLIMIT_MODERATE,
)
# Bounds accepted from a file: a hostile file must not make us allocate without limit.
MAX_OPSLIMIT = 16
MAX_MEMLIMIT = 1 << 30  # libsodium's "sensitive" level


class WrongPassphrase(NotPermitted):
    code = "vault.wrong_passphrase"
    en = "The passphrase is not correct. Try again, or use your recovery code with 'kluis recover'."
    nl = (
        "Het wachtwoord klopt niet. Probeer het opnieuw, of gebruik uw herstelcode met 'kluis "
        "recover'."
    )


class WrongRecoveryCode(NotPermitted):
    code = "vault.wrong_recovery_code"
    en = "The recovery code does not open this vault. Check the code you wrote down and try again."
    nl = (
        "De herstelcode opent deze kluis niet. Controleer de code die u hebt opgeschreven en "
        "probeer het opnieuw."
    )


class BadRecoveryCode(InvalidInput):
    code = "vault.bad_recovery_code"
    en = (
        "This is not a recovery code: it has 32 letters and digits in 8 groups of 4. Check it and "
        "try again."
    )
    nl = (
        "Dit is geen herstelcode: die heeft 32 letters en cijfers in 8 groepjes van 4. Controleer "
        "de code en probeer het opnieuw."
    )


class WeakPassphrase(InvalidInput):
    code = "vault.weak_passphrase"
    en = "Choose a passphrase of at least 8 characters (a few words you can remember works well)."
    nl = (
        "Kies een wachtwoord van minstens 8 tekens (een paar woorden die u kunt onthouden werkt "
        "goed)."
    )


class BadKeyFile(VerificationFailed):
    code = "vault.bad_key_file"
    en = (
        "The key file of your profile is damaged, so the vault cannot be opened. Restore the "
        "profile from a backup or an export."
    )
    nl = (
        "Het sleutelbestand van uw profiel is beschadigd, dus de kluis kan niet open. Zet het "
        "profiel terug uit een reservekopie of een export."
    )


@dataclass(frozen=True)
class DataKey:
    """The key that opens the database. Its bytes never show in a repr or a log line."""

    raw: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> DataKey:
        return cls(secrets.token_bytes(DATA_KEY_BYTES))


@dataclass(frozen=True)
class RecoveryCode:
    """160 random bits, written as 32 base32 characters in groups of 4 (``ABCD-EFGH-...``)."""

    raw: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> RecoveryCode:
        return cls(secrets.token_bytes(RECOVERY_BYTES))

    def __str__(self) -> str:
        text = base64.b32encode(self.raw).decode("ascii")
        return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def parse_recovery_code(text: str) -> RecoveryCode:
    """The recovery code written in ``text`` (case, spaces and dashes do not matter).

    Raises BadRecoveryCode when it is not 32 base32 characters.
    """
    compact = "".join(text.split()).replace("-", "").upper()
    if len(compact) != 32:
        raise BadRecoveryCode()
    try:
        return RecoveryCode(base64.b32decode(compact))
    except ValueError:  # binascii.Error, or non-ASCII text
        raise BadRecoveryCode() from None


def check_new_passphrase(passphrase: str) -> str:
    """The passphrase, NFC-normalised, if it is acceptable as a new one. Raises WeakPassphrase."""
    normal = unicodedata.normalize("NFC", passphrase)
    if not MIN_PASSPHRASE <= len(normal) <= MAX_PASSPHRASE:
        raise WeakPassphrase()
    return normal


def _passphrase_bytes(passphrase: str) -> bytes:
    # NFC so the same passphrase typed on another keyboard or system gives the same bytes.
    return unicodedata.normalize("NFC", passphrase).encode("utf-8", "surrogatepass")


def derive_passphrase_key(passphrase: str, salt: bytes, kdf: KdfParams, size: int = 32) -> bytes:
    """``size`` bytes from Argon2id(passphrase, salt) at cost ``kdf``."""
    return bytes(
        nacl.pwhash.argon2id.kdf(
            size, _passphrase_bytes(passphrase), salt, opslimit=kdf.opslimit, memlimit=kdf.memlimit
        )
    )


def _recovery_key(code: RecoveryCode, profile_id: str) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=profile_id.encode("ascii"),
        info=b"kluis/v1/recovery-wrap",
    )
    return hkdf.derive(code.raw)


@dataclass(frozen=True)
class WrappedKey:
    """One sealed copy of the data key."""

    nonce: bytes
    sealed: bytes


@dataclass(frozen=True)
class KeyFile:
    """The contents of ``key.json``. Nothing in it is secret without the passphrase or code."""

    profile_id: str
    created: str
    kdf: KdfParams
    salt: bytes
    by_passphrase: WrappedKey
    by_recovery: WrappedKey


def _associated_data(profile_id: str, purpose: str) -> bytes:
    return f"kluis/v1/data-key|{profile_id}|{purpose}".encode("ascii")


def _seal(key: bytes, data_key: DataKey, ad: bytes) -> WrappedKey:
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(data_key.raw, ad, nonce, key)
    return WrappedKey(nonce, sealed)


def _open(key: bytes, wrapped: WrappedKey, ad: bytes) -> DataKey | None:
    try:
        raw = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            wrapped.sealed, ad, wrapped.nonce, key
        )
    except nacl.exceptions.CryptoError:
        return None
    return DataKey(raw) if len(raw) == DATA_KEY_BYTES else None


def seal_key_file(
    data_key: DataKey,
    passphrase: str,
    recovery: RecoveryCode,
    *,
    profile_id: str,
    created: str,
    kdf: KdfParams,
) -> KeyFile:
    """A key file holding ``data_key`` under both ``passphrase`` and ``recovery``."""
    salt = secrets.token_bytes(SALT_BYTES)
    by_passphrase = _seal(
        derive_passphrase_key(passphrase, salt, kdf),
        data_key,
        _associated_data(profile_id, "passphrase"),
    )
    by_recovery = _seal(
        _recovery_key(recovery, profile_id), data_key, _associated_data(profile_id, "recovery")
    )
    return KeyFile(profile_id, created, kdf, salt, by_passphrase, by_recovery)


def rewrap_passphrase(
    key_file: KeyFile, data_key: DataKey, passphrase: str, *, kdf: KdfParams
) -> KeyFile:
    """``key_file`` with the passphrase slot sealed under a new passphrase, salt and cost."""
    salt = secrets.token_bytes(SALT_BYTES)
    by_passphrase = _seal(
        derive_passphrase_key(passphrase, salt, kdf),
        data_key,
        _associated_data(key_file.profile_id, "passphrase"),
    )
    return KeyFile(
        key_file.profile_id, key_file.created, kdf, salt, by_passphrase, key_file.by_recovery
    )


def open_with_passphrase(key_file: KeyFile, passphrase: str) -> DataKey:
    """The data key. Raises WrongPassphrase (and says nothing more) when it does not open."""
    key = derive_passphrase_key(passphrase, key_file.salt, key_file.kdf)
    data_key = _open(
        key, key_file.by_passphrase, _associated_data(key_file.profile_id, "passphrase")
    )
    if data_key is None:
        raise WrongPassphrase()
    return data_key


def open_with_recovery(key_file: KeyFile, code: RecoveryCode) -> DataKey:
    """The data key. Raises WrongRecoveryCode when the code does not open it."""
    key = _recovery_key(code, key_file.profile_id)
    data_key = _open(key, key_file.by_recovery, _associated_data(key_file.profile_id, "recovery"))
    if data_key is None:
        raise WrongRecoveryCode()
    return data_key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def format_key_file(key_file: KeyFile) -> bytes:
    """The JSON bytes of ``key.json``."""
    document = {
        "format": KEY_FILE_FORMAT,
        "version": KEY_FILE_VERSION,
        "profile": key_file.profile_id,
        "created": key_file.created,
        "passphrase": {
            "kdf": "argon2id13",
            "opslimit": key_file.kdf.opslimit,
            "memlimit": key_file.kdf.memlimit,
            "salt": _b64(key_file.salt),
            "aead": "xchacha20poly1305-ietf",
            "nonce": _b64(key_file.by_passphrase.nonce),
            "sealed": _b64(key_file.by_passphrase.sealed),
        },
        "recovery": {
            "kdf": "hkdf-sha256",
            "aead": "xchacha20poly1305-ietf",
            "nonce": _b64(key_file.by_recovery.nonce),
            "sealed": _b64(key_file.by_recovery.sealed),
        },
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _field(obj: Any, name: str, kind: type) -> Any:
    value = obj.get(name) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadKeyFile(f"field {name!r}")
    return value


def _bytes_field(obj: Any, name: str, size: int | None = None) -> bytes:
    try:
        value = base64.b64decode(_field(obj, name, str), validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise BadKeyFile(f"field {name!r}") from None
    if size is not None and len(value) != size:
        raise BadKeyFile(f"field {name!r}")
    return value


def parse_key_file(data: bytes) -> KeyFile:
    """The key file in ``data``. Raises BadKeyFile for anything that is not one we can use."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadKeyFile("not JSON") from None
    if (
        _field(document, "format", str) != KEY_FILE_FORMAT
        or _field(document, "version", int) != KEY_FILE_VERSION
    ):
        raise BadKeyFile("format or version")
    slot = _field(document, "passphrase", dict)
    recovery = _field(document, "recovery", dict)
    kdf = KdfParams(_field(slot, "opslimit", int), _field(slot, "memlimit", int))
    if not (
        nacl.pwhash.argon2id.OPSLIMIT_MIN <= kdf.opslimit <= MAX_OPSLIMIT
        and nacl.pwhash.argon2id.MEMLIMIT_MIN <= kdf.memlimit <= MAX_MEMLIMIT
        and _field(slot, "kdf", str) == "argon2id13"
        and _field(recovery, "kdf", str) == "hkdf-sha256"
    ):
        raise BadKeyFile("key derivation")
    profile_id = _field(document, "profile", str)
    if not (profile_id.isascii() and profile_id.isalnum()):
        raise BadKeyFile("field 'profile'")
    return KeyFile(
        profile_id=profile_id,
        created=_field(document, "created", str),
        kdf=kdf,
        salt=_bytes_field(slot, "salt", SALT_BYTES),
        by_passphrase=WrappedKey(
            _bytes_field(slot, "nonce", NONCE_BYTES), _bytes_field(slot, "sealed")
        ),
        by_recovery=WrappedKey(
            _bytes_field(recovery, "nonce", NONCE_BYTES), _bytes_field(recovery, "sealed")
        ),
    )


def new_profile_id() -> str:
    """A random id naming the profile inside its key file (not a secret, not a person's id)."""
    return secrets.token_hex(16)
