"""Export and import: a new profile gets every item byte for byte (metadata and extension
tables too); a truncated, tampered, garbage or wrongly unlocked archive is refused with its
own code and creates nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault import (
    BadContent,
    FileExists,
    KdfParams,
    NoFile,
    NotAFile,
    NotAnArchive,
    ProfileExists,
    Schema,
    Tampered,
    Truncated,
    UnsupportedArchive,
    Vault,
    WeakPassphrase,
    WrongArchivePassphrase,
    export_archive,
    import_archive,
    open_vault,
)
from vault.envelope import HEADER_BYTES, MAC_BYTES, seal_stream

EXPORT = "export passphrase"
NEW = "new profile passphrase"
T0 = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
WALLET = Schema(
    "wallet",
    ("CREATE TABLE wallet_credential (id INTEGER PRIMARY KEY, raw BLOB, score REAL, note TEXT)",),
)


def _fill(vault: Vault) -> None:
    vault.put_attribute("bsn", "123456782", source="BRP", now=T0)
    vault.put_attribute("empty", "", source="citizen", now=T0)
    vault.put_note(
        "notitie", "Afspraak dinsdag.\nNeem loonstroken mee. ✓", source="citizen", now=T0
    )
    content = os.urandom(2 * (1 << 20) + 5)
    vault.put_document(
        "loonstrook", io.BytesIO(content), media_type="application/pdf", source="werkgever"
    )
    vault.put_document("copy", io.BytesIO(content), media_type="application/pdf", source="me")
    vault.put_document("nothing", io.BytesIO(b""), media_type="text/plain", source="me")
    with vault.transaction() as tx:
        tx.execute(
            "INSERT INTO wallet_credential (raw, score, note) VALUES (?, ?, ?), (?, ?, ?)",
            (b"\x00\xffjwt", 0.5, "één", None, float("-inf"), None),
        )


def _dump(vault: Vault) -> object:
    documents = {
        info.name: b"".join(vault.read_document(info.name))
        for info in vault.items()
        if info.type == "document"
    }
    texts = {info.name: vault.get(info.name).text for info in vault.items()}
    rows = vault.reader().query("SELECT * FROM wallet_credential ORDER BY id")
    return vault.items(), texts, documents, rows


@pytest.fixture
def archive(profile: Path, passphrase: str, kdf: KdfParams, tmp_path: Path) -> tuple[Path, object]:
    out = tmp_path / "kluis-export.kar"
    with open_vault(profile, passphrase, schemas=[WALLET]) as vault:
        _fill(vault)
        summary = export_archive(vault, out, EXPORT, _kdf=kdf)
        assert (summary.items, summary.documents, summary.tables) == (6, 2, 1)
        return out, _dump(vault)


def _import(archive: Path, root: Path, kdf: KdfParams, passphrase: str = EXPORT) -> None:
    import_archive(archive, root, passphrase, NEW, schemas=[WALLET], _kdf=kdf)


def test_import_reproduces_everything_byte_for_byte(
    archive: tuple[Path, object], tmp_path: Path, kdf: KdfParams
) -> None:
    path, before = archive
    result = import_archive(path, tmp_path / "new", EXPORT, NEW, schemas=[WALLET], _kdf=kdf)
    assert (result.summary.items, result.summary.documents, result.summary.tables) == (6, 2, 1)
    with open_vault(tmp_path / "new", NEW, schemas=[WALLET]) as vault:
        assert _dump(vault) == before
        assert vault.check_integrity() == []
    assert len(str(result.recovery_code)) == 39


def test_import_brings_an_old_component_up_to_date(
    archive: tuple[Path, object], tmp_path: Path, kdf: KdfParams
) -> None:
    newer = Schema(
        "wallet", (*WALLET.migrations, "ALTER TABLE wallet_credential ADD COLUMN kid TEXT")
    )
    import_archive(archive[0], tmp_path / "new", EXPORT, NEW, schemas=[newer], _kdf=kdf)
    with open_vault(tmp_path / "new", NEW, schemas=[newer]) as vault:
        assert vault.schema_versions() == {"vault": 1, "wallet": 2}
        assert vault.reader().query("SELECT count(*) FROM wallet_credential WHERE kid IS NULL") == [
            (2,)
        ]


def test_archive_holds_no_plaintext(archive: tuple[Path, object]) -> None:
    data = archive[0].read_bytes()
    # Long words only: a 3-byte word turns up by chance in megabytes of ciphertext.
    for word in (b"123456782", b"loonstrook", b"manifest.json", b"Afspraak dinsdag"):
        assert word not in data


def _assert_nothing_created(root: Path) -> None:
    assert not root.exists()
    assert [p.name for p in root.parent.iterdir() if p.name.startswith(f".{root.name}")] == []


def test_wrong_passphrase(archive: tuple[Path, object], tmp_path: Path, kdf: KdfParams) -> None:
    with pytest.raises(WrongArchivePassphrase):
        _import(archive[0], tmp_path / "new", kdf, passphrase="not the export passphrase")
    _assert_nothing_created(tmp_path / "new")


@pytest.mark.parametrize(
    "cut",
    ["inside_header", "after_header", "inside_first_chunk", "before_final_chunk", "last_byte"],
)
def test_truncated_archive(
    archive: tuple[Path, object], tmp_path: Path, kdf: KdfParams, cut: str
) -> None:
    data = archive[0].read_bytes()
    first_chunk = HEADER_BYTES + MAC_BYTES
    size = {
        "inside_header": 40,
        "after_header": first_chunk,
        "inside_first_chunk": first_chunk + 100,
        "before_final_chunk": _final_chunk_offset(data),
        "last_byte": len(data) - 1,
    }[cut]
    short = tmp_path / "short.kar"
    short.write_bytes(data[:size])
    with pytest.raises(Truncated):
        _import(short, tmp_path / "new", kdf)
    _assert_nothing_created(tmp_path / "new")


def _final_chunk_offset(data: bytes) -> int:
    """Where the last (FINAL) chunk's length prefix starts."""
    offset = HEADER_BYTES + MAC_BYTES
    last = offset
    while offset < len(data):
        last = offset
        offset += 4 + int.from_bytes(data[offset : offset + 4], "big")
    return last


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_any_changed_byte_is_caught(
    archive: tuple[Path, object],
    tmp_path_factory: pytest.TempPathFactory,
    kdf: KdfParams,
    data: st.DataObject,
) -> None:
    original = archive[0].read_bytes()
    position = data.draw(st.integers(0, len(original) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="xor")
    changed = bytearray(original)
    changed[position] ^= mask
    folder = tmp_path_factory.mktemp("tamper")
    path = folder / "changed.kar"
    path.write_bytes(bytes(changed))
    expected: tuple[type[Exception], ...]
    if position < 8:
        expected = (NotAnArchive,)
    elif position < 12:
        expected = (UnsupportedArchive,)
    elif position < HEADER_BYTES + MAC_BYTES:  # cost, salt, stream header, MAC: cannot tell apart
        expected = (WrongArchivePassphrase, UnsupportedArchive)
    else:
        expected = (Tampered,)
    with pytest.raises(expected):
        _import(path, folder / "new", kdf)
    _assert_nothing_created(folder / "new")


def test_extra_bytes_after_the_end_are_caught(
    archive: tuple[Path, object], tmp_path: Path, kdf: KdfParams
) -> None:
    longer = tmp_path / "longer.kar"
    longer.write_bytes(archive[0].read_bytes() + b"\x00")
    with pytest.raises(Tampered):
        _import(longer, tmp_path / "new", kdf)
    _assert_nothing_created(tmp_path / "new")


@pytest.mark.parametrize("content", [b"", b"hello", b"PK\x03\x04" + bytes(200), os.urandom(4096)])
def test_not_an_archive(tmp_path: Path, kdf: KdfParams, content: bytes) -> None:
    path = tmp_path / "other.bin"
    path.write_bytes(content)
    with pytest.raises(NotAnArchive):
        _import(path, tmp_path / "new", kdf)
    _assert_nothing_created(tmp_path / "new")


def test_import_needs_a_new_profile(
    archive: tuple[Path, object], profile: Path, kdf: KdfParams
) -> None:
    files = sorted(p.name for p in profile.iterdir())
    with pytest.raises(ProfileExists):
        _import(archive[0], profile, kdf)
    assert sorted(p.name for p in profile.iterdir()) == files


def test_archive_path_missing_or_a_folder(tmp_path: Path, kdf: KdfParams) -> None:
    with pytest.raises(NoFile):
        _import(tmp_path / "missing.kar", tmp_path / "new", kdf)
    with pytest.raises(NotAFile):
        _import(tmp_path, tmp_path / "new", kdf)
    _assert_nothing_created(tmp_path / "new")


def test_unknown_component_is_refused(
    archive: tuple[Path, object], tmp_path: Path, kdf: KdfParams
) -> None:
    with pytest.raises(UnsupportedArchive):
        import_archive(archive[0], tmp_path / "new", EXPORT, NEW, _kdf=kdf)  # no wallet schema
    _assert_nothing_created(tmp_path / "new")


def test_export_never_overwrites_and_checks_the_passphrase(
    vault: Vault, tmp_path: Path, kdf: KdfParams
) -> None:
    out = tmp_path / "exists.kar"
    out.write_bytes(b"mine")
    with pytest.raises(FileExists):
        export_archive(vault, out, EXPORT, _kdf=kdf)
    assert out.read_bytes() == b"mine"
    with pytest.raises(WeakPassphrase):
        export_archive(vault, tmp_path / "new.kar", "short", _kdf=kdf)
    assert not (tmp_path / "new.kar").exists()


def test_empty_vault_round_trips(vault: Vault, tmp_path: Path, kdf: KdfParams) -> None:
    export_archive(vault, tmp_path / "empty.kar", EXPORT, _kdf=kdf)
    import_archive(tmp_path / "empty.kar", tmp_path / "new", EXPORT, NEW, _kdf=kdf)
    with open_vault(tmp_path / "new", NEW) as copy:
        assert copy.items() == []


# -- archives whose encryption is sound but whose content is not ------------------------------


def _sealed(tmp_path: Path, kdf: KdfParams, members: list[tuple[str, bytes]]) -> Path:
    path = tmp_path / "crafted.kar"
    with path.open("wb") as file:
        writer = seal_stream(file, EXPORT, kdf)
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        writer.finish()
    return path


def _manifest(items: int = 1, **extra: object) -> bytes:
    return json.dumps(
        {
            "format": "kluis-archive",
            "version": 1,
            "created": "x",
            "schemas": {"vault": 1},
            "items": items,
            **extra,
        }
    ).encode()


def _item(**changes: object) -> bytes:
    record = {
        "id": 1,
        "name": "bsn",
        "type": "attribute",
        "media_type": None,
        "source": "BRP",
        "added": "2025-01-02T03:04:05.000000Z",
        "changed": "2025-01-02T03:04:05.000000Z",
        "size": 3,
        "sha256": hashlib.sha256(b"123").hexdigest(),
        "value": "123",
    }
    record.update(changes)
    return json.dumps(record).encode() + b"\n"


BAD_CONTENT = {
    "items_before_manifest": [("items.jsonl", _item()), ("manifest.json", _manifest())],
    "manifest_not_json": [("manifest.json", b"{")],
    "other_format": [("manifest.json", _manifest(format="zip"))],
    "items_missing": [("manifest.json", _manifest())],
    "item_count_differs": [("manifest.json", _manifest(items=2)), ("items.jsonl", _item())],
    "value_digest_differs": [("manifest.json", _manifest()), ("items.jsonl", _item(value="124"))],
    "name_with_slash": [("manifest.json", _manifest()), ("items.jsonl", _item(name="a/b"))],
    "unknown_type": [("manifest.json", _manifest()), ("items.jsonl", _item(type="secret"))],
    "extra_field": [("manifest.json", _manifest()), ("items.jsonl", _item(colour="red"))],
    "bad_time": [("manifest.json", _manifest()), ("items.jsonl", _item(added="yesterday"))],
    "duplicate_name": [
        ("manifest.json", _manifest(items=2)),
        ("items.jsonl", _item() + _item(id=2)),
    ],
    "document_missing": [
        ("manifest.json", _manifest()),
        ("items.jsonl", _item(type="document", media_type="text/plain", value=None)),
    ],
    "document_not_matching": [
        ("manifest.json", _manifest()),
        ("items.jsonl", _item(type="document", media_type="text/plain", value=None)),
        ("documents/" + hashlib.sha256(b"123").hexdigest(), b"124"),
    ],
    "unexpected_member": [
        ("manifest.json", _manifest(items=0)),
        ("items.jsonl", b""),
        ("../etc/passwd", b"x"),
    ],
    "table_of_unknown_component": [
        ("manifest.json", _manifest(items=0)),
        ("items.jsonl", b""),
        ("tables/wallet/wallet_credential.jsonl", b"{}\n"),
    ],
    "not_a_tar": [("manifest.json", b"")],  # replaced below by raw bytes
}


@pytest.mark.parametrize("case", sorted(BAD_CONTENT))
def test_sound_envelope_with_bad_content(tmp_path: Path, kdf: KdfParams, case: str) -> None:
    if case == "not_a_tar":
        path = tmp_path / "crafted.kar"
        with path.open("wb") as file:
            writer = seal_stream(file, EXPORT, kdf)
            writer.write(b"this is not a tar stream at all" * 50)
            writer.finish()
    else:
        path = _sealed(tmp_path, kdf, BAD_CONTENT[case])
    with pytest.raises(BadContent):
        import_archive(path, tmp_path / "new", EXPORT, NEW, _kdf=kdf)
    _assert_nothing_created(tmp_path / "new")


def test_crafted_archive_with_good_content_imports(tmp_path: Path, kdf: KdfParams) -> None:
    """The crafting above is only a fair test if a well-formed crafted archive is accepted."""
    path = _sealed(tmp_path, kdf, [("manifest.json", _manifest()), ("items.jsonl", _item())])
    import_archive(path, tmp_path / "new", EXPORT, NEW, _kdf=kdf)
    with open_vault(tmp_path / "new", NEW) as vault:
        assert vault.get("bsn").text == "123"
