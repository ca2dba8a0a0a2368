"""On disk nothing is readable without the key: no SQLite header, and no stored name, value,
note or document byte string in any file of the profile, while open or closed."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

from vault import Vault, open_vault


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _leaks(root: Path, markers: list[bytes]) -> list[tuple[str, bytes]]:
    return [(name, m) for name, data in _files(root).items() for m in markers if m in data]


def _marker() -> bytes:
    return f"MARK{secrets.token_hex(12)}".encode()


def _fill(vault: Vault) -> list[bytes]:
    """Store unique markers in every kind of field; the markers."""
    markers = [_marker() for _ in range(6)]
    name, value, note, source, media_sub, in_document = markers
    vault.put_attribute(name.decode(), value.decode(), source=source.decode())
    vault.put_note("note", f"Dear agency, {note.decode()} regards.", source="citizen")
    # 20 MB of document, the marker repeated across chunk boundaries.
    filler = secrets.token_bytes(1 << 20)
    block = filler[: (1 << 20) - len(in_document)] + in_document
    document = io.BytesIO(block * 20)
    vault.put_document(
        "scan", document, media_type=f"application/x-{media_sub.decode()}", source="scanner"
    )
    # Small documents stay on a few pages: catch page-level leaks too.
    vault.put_document("small", io.BytesIO(in_document), media_type="text/plain", source="citizen")
    return markers


def test_no_sqlite_header_and_no_plaintext_while_open_and_after(
    profile: Path, passphrase: str
) -> None:
    with open_vault(profile, passphrase) as vault:
        markers = _fill(vault)
        files = _files(profile)
        assert {"vault.db", "vault.db-wal"} <= set(files)  # the WAL holds the fresh pages
        assert len(files["vault.db-wal"]) > 20 << 20
        assert _leaks(profile, markers) == []
        vault.remove(markers[0].decode())  # deleted pages are encrypted too
        assert _leaks(profile, markers) == []
    assert not _files(profile)["vault.db"].startswith(b"SQLite format 3")
    assert _leaks(profile, markers) == []


def test_the_check_finds_plaintext_when_there_is_some(tmp_path: Path) -> None:
    """The grep above is only worth something if it can fail."""
    marker = _marker()
    (tmp_path / "x").write_bytes(b"prefix" + marker)
    assert _leaks(tmp_path, [marker]) == [("x", marker)]
