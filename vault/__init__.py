"""Encrypted storage of one citizen's data: the SQLCipher vault, key wrapping, recovery,
export/import, and the root of kluis's errors.

The leftmost layer: it imports nothing from ``verifiers``, ``wallet``, ``cli`` or ``server``.
It never prints and never reads the environment for behaviour.
"""

import logging

from vault.access import (
    DEFAULT_BUSY_TIMEOUT,
    ProfileStatus,
    change_passphrase,
    create_profile,
    inspect_profile,
    open_vault,
    recover,
)
from vault.archive import ArchiveSummary, BadContent, ImportResult, export_archive, import_archive
from vault.database import Corrupt, Transaction
from vault.document import CHUNK_SIZE, FileExists, NoFile, NotAFile
from vault.envelope import (
    NotAnArchive,
    Tampered,
    Truncated,
    UnsupportedArchive,
    WrongArchivePassphrase,
)
from vault.errors import (
    FAMILIES,
    Conflict,
    InvalidInput,
    KluisError,
    Lang,
    NotFound,
    NotPermitted,
    Unavailable,
    VerificationFailed,
    family_of,
)
from vault.event import EventKind, ItemEvent, Subscriber
from vault.item import (
    DEFAULT_MEDIA_TYPE,
    BadMediaType,
    BadName,
    BadSource,
    BadValue,
    Item,
    ItemInfo,
    ItemType,
    NoSuchItem,
    NotADocument,
    parse_name,
)
from vault.keyring import (
    PASSPHRASE_KDF,
    BadKeyFile,
    BadRecoveryCode,
    KdfParams,
    RecoveryCode,
    WeakPassphrase,
    WrongPassphrase,
    WrongRecoveryCode,
    parse_recovery_code,
)
from vault.profile import Busy, NoProfile, ProfileExists
from vault.schema import Schema, SchemaTooNew
from vault.vault import Vault

# A library does not decide where log records go; the shell that configures logging does.
logging.getLogger("kluis").addHandler(logging.NullHandler())

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_MEDIA_TYPE",
    "FAMILIES",
    "PASSPHRASE_KDF",
    "ArchiveSummary",
    "BadContent",
    "BadKeyFile",
    "BadMediaType",
    "BadName",
    "BadRecoveryCode",
    "BadSource",
    "BadValue",
    "Busy",
    "Conflict",
    "Corrupt",
    "EventKind",
    "FileExists",
    "ImportResult",
    "InvalidInput",
    "Item",
    "ItemEvent",
    "ItemInfo",
    "ItemType",
    "KdfParams",
    "KluisError",
    "Lang",
    "NoFile",
    "NoProfile",
    "NoSuchItem",
    "NotADocument",
    "NotAFile",
    "NotAnArchive",
    "NotFound",
    "NotPermitted",
    "ProfileExists",
    "ProfileStatus",
    "RecoveryCode",
    "Schema",
    "SchemaTooNew",
    "Subscriber",
    "Tampered",
    "Transaction",
    "Truncated",
    "Unavailable",
    "UnsupportedArchive",
    "Vault",
    "VerificationFailed",
    "WeakPassphrase",
    "WrongArchivePassphrase",
    "WrongPassphrase",
    "WrongRecoveryCode",
    "change_passphrase",
    "create_profile",
    "export_archive",
    "family_of",
    "import_archive",
    "inspect_profile",
    "open_vault",
    "parse_name",
    "parse_recovery_code",
    "recover",
]
