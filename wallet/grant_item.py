"""What a granted item holds when it is sealed (``specs/grant.md`` §2): a vault item as it is
now, or chosen claims of the newest credential of a type, as one JSON document.

The content is read afresh every time an item is sealed, so a new version always carries the
vault's current state. Nothing here writes or sends anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import rfc8785

from vault import InvalidInput, ItemType, NoSuchItem, Vault
from verifiers._document import format_timestamp
from verifiers.claim_path import ClaimPath, select
from wallet.credential import held_credentials

MAX_ITEM_BYTES = 94 * 1024
"""The largest content kluis seals: its sealed form still fits the relay's default 128 KiB."""
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


class TooLarge(InvalidInput):
    code = "grant.document_too_large"
    en = "'{name}' is too large to share through the relay (at most 94 KiB)."
    nl = "'{name}' is te groot om via de relay te delen (hoogstens 94 KiB)."


class Source(StrEnum):
    CREDENTIAL = "credential"
    """Chosen claims of the newest credential of a type."""
    VAULT = "vault"
    """A vault item (attribute, note or document)."""


@dataclass(frozen=True)
class ItemSpec:
    """One item of a grant: its id at the relay and where its content comes from."""

    item: str
    source: Source
    name: str
    """The vault item's name, or the credential type (``vct``)."""
    claims: tuple[ClaimPath, ...] = ()


@dataclass(frozen=True)
class ItemContent:
    media_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def item_content(vault: Vault, spec: ItemSpec, *, now: datetime) -> ItemContent | None:
    """The content ``spec`` names as it is at ``now``; None when it is not there (the vault
    item was removed, no unexpired credential of the type is held). Raises
    ``grant.document_too_large``."""
    if spec.source is Source.VAULT:
        found = _vault_item(vault, spec.name)
    else:
        found = _credential_claims(vault, spec, now)
    if found is not None and len(found.content) > MAX_ITEM_BYTES:
        raise TooLarge(f"specs/grant.md §2: at most {MAX_ITEM_BYTES} bytes", name=spec.name)
    return found


def _vault_item(vault: Vault, name: str) -> ItemContent | None:
    try:
        item = vault.get(name)
    except NoSuchItem:
        return None
    if item.type is not ItemType.DOCUMENT:
        return ItemContent(TEXT, (item.text or "").encode("utf-8"))
    if item.size > MAX_ITEM_BYTES:
        raise TooLarge(f"specs/grant.md §2: at most {MAX_ITEM_BYTES} bytes", name=name)
    content = b"".join(vault.read_document(name))
    return ItemContent(item.media_type or "application/octet-stream", content)


def _credential_claims(vault: Vault, spec: ItemSpec, now: datetime) -> ItemContent | None:
    held = [c for c in held_credentials(vault, now=now) if c.vct == spec.name]
    if not held:
        return None
    newest = max(held, key=lambda c: (c.issued_at or c.received, c.received))
    claims: list[dict[str, Any]] = []
    for path in spec.claims:
        for found in select(path, newest.claims):
            claims.append({"path": list(found.path), "value": found.value})
    document: dict[str, Any] = {"vct": newest.vct, "issuer": newest.issuer,
                                "credential": newest.id, "claims": claims}
    if newest.issued_at is not None:
        document["issued_at"] = format_timestamp(newest.issued_at)
    return ItemContent(JSON, bytes(rfc8785.dumps(document)))
