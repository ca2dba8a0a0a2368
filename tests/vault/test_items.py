"""Items: put, get, list, remove for each type, metadata, documents streamed in chunks, and
every bad input refused without changing the vault."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tracemalloc
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault import (
    CHUNK_SIZE,
    BadMediaType,
    BadName,
    BadSource,
    BadValue,
    FileExists,
    ItemType,
    NoFile,
    NoSuchItem,
    NotADocument,
    NotAFile,
    Vault,
    open_vault,
    parse_name,
)

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def test_attribute_note_and_document_round_trip(vault: Vault) -> None:
    content = os.urandom(3 * CHUNK_SIZE + 17)
    vault.put_attribute("bsn", "123456782", source="BRP", now=T0)
    vault.put_note("kitchen table", "Visit on Tuesday.\nBring payslips.", source="citizen", now=T0)
    info = vault.put_document(
        "payslip", io.BytesIO(content), media_type="application/pdf", source="employer", now=T0
    )
    assert (info.size, info.sha256, info.media_type) == (
        len(content),
        hashlib.sha256(content).hexdigest(),
        "application/pdf",
    )
    assert vault.get("bsn").text == "123456782"
    assert vault.get("bsn").sha256 == hashlib.sha256(b"123456782").hexdigest()
    assert vault.get("kitchen table").text == "Visit on Tuesday.\nBring payslips."
    assert vault.get("payslip").text is None
    assert b"".join(vault.read_document("payslip")) == content
    assert [(i.name, i.type, i.source, i.added) for i in vault.items()] == [
        ("bsn", ItemType.ATTRIBUTE, "BRP", T0),
        ("kitchen table", ItemType.NOTE, "citizen", T0),
        ("payslip", ItemType.DOCUMENT, "employer", T0),
    ]
    assert vault.count() == 3


def test_put_of_an_existing_name_replaces_and_keeps_added(vault: Vault) -> None:
    vault.put_document(
        "x", io.BytesIO(b"old document"), media_type="text/plain", source="a", now=T0
    )
    later = T0 + timedelta(days=2)
    info = vault.put_attribute("x", "now an attribute", source="b", now=later)
    assert (info.added, info.changed, info.type, info.media_type) == (
        T0,
        later,
        ItemType.ATTRIBUTE,
        None,
    )
    assert vault.get("x").text == "now an attribute"
    with pytest.raises(NotADocument):
        vault.read_document("x")
    # The old document's chunks went with it.
    assert vault.reader().query("SELECT count(*) FROM vault_chunk") == [(0,)]


def test_remove(vault: Vault) -> None:
    vault.put_document("doc", io.BytesIO(b"x" * 100), media_type="text/plain", source="a")
    removed = vault.remove("doc")
    assert removed.name == "doc" and removed.size == 100
    assert vault.items() == []
    assert vault.reader().query("SELECT count(*) FROM vault_chunk") == [(0,)]
    with pytest.raises(NoSuchItem):
        vault.remove("doc")
    with pytest.raises(NoSuchItem):
        vault.get("doc")


def test_document_from_a_20_mb_file_streams_with_flat_memory(vault: Vault, tmp_path: Path) -> None:
    source = tmp_path / "scan.pdf"
    digest = hashlib.sha256()
    with source.open("wb") as file:
        for _ in range(20):
            block = os.urandom(1 << 20)
            digest.update(block)
            file.write(block)
    tracemalloc.start()
    try:
        info = vault.put_document("scan", source, media_type="application/pdf", source="scanner")
        streamed = hashlib.sha256()
        for piece in vault.read_document("scan"):
            streamed.update(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.size == 20 << 20 and info.sha256 == digest.hexdigest() == streamed.hexdigest()
    assert peak < 6 * CHUNK_SIZE  # a few chunks at a time, never the whole 20 MB
    out = tmp_path / "out" / "scan copy.pdf"
    out.parent.mkdir()
    vault.save_document("scan", out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest.hexdigest()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_save_document_never_overwrites(vault: Vault, tmp_path: Path) -> None:
    vault.put_document("doc", io.BytesIO(b"content"), media_type="text/plain", source="a")
    out = tmp_path / "exists.txt"
    out.write_bytes(b"mine")
    with pytest.raises(FileExists):
        vault.save_document("doc", out)
    assert out.read_bytes() == b"mine"
    with pytest.raises(NoFile):
        vault.save_document("doc", tmp_path / "no such folder" / "x")
    vault.put_attribute("attr", "v", source="a")
    with pytest.raises(NotADocument):
        vault.save_document("attr", tmp_path / "attr.txt")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "profile") == ["exists.txt"]


def test_document_path_missing_or_a_folder(vault: Vault, tmp_path: Path) -> None:
    with pytest.raises(NoFile):
        vault.put_document("d", tmp_path / "missing.pdf", media_type="application/pdf", source="a")
    with pytest.raises(NotAFile):
        vault.put_document("d", tmp_path, media_type="application/pdf", source="a")
    assert vault.items() == []


BAD_NAMES = {
    "empty": "",
    "slash": "tax/2024",
    "backslash": "tax\\2024",
    "nul": "a\x00b",
    "newline": "a\nb",
    "tab": "a\tb",
    "escape": "a\x1b[31mred",
    "del": "a\x7f",
    "c1_control": "a\x85b",
    "rtl_override": "invoice\u202efdp.exe",
    "zero_width": "a\u200bb",
    "line_separator": "a\u2028b",
    "lone_surrogate": "a\ud800",
    "too_long": "x" * 201,
    "leading_space": " bsn",
    "trailing_space": "bsn ",
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_bad_name_is_refused_and_nothing_changes(vault: Vault, case: str) -> None:
    vault.put_attribute("existing", "v", source="a", now=T0)
    before = vault.items()
    for put in (
        lambda: vault.put_attribute(BAD_NAMES[case], "v", source="a"),
        lambda: vault.put_note(BAD_NAMES[case], "v", source="a"),
        lambda: vault.put_document(BAD_NAMES[case], io.BytesIO(b"x"), source="a"),
        lambda: vault.get(BAD_NAMES[case]),
        lambda: vault.remove(BAD_NAMES[case]),
    ):
        with pytest.raises(BadName):
            put()
    assert vault.items() == before


def test_longest_name_and_unicode_names_are_fine(vault: Vault) -> None:
    for name in ("x" * 200, "Geboortedatum", "naïve café", "名前", "Ω-1 (2024)"):
        vault.put_attribute(name, "v", source="a")
        assert vault.get(name).name == name


def test_names_are_nfc_normalised(vault: Vault) -> None:
    decomposed = unicodedata.normalize("NFD", "café")
    vault.put_attribute(decomposed, "1", source="a")
    vault.put_attribute("café", "2", source="a")
    assert [i.name for i in vault.items()] == ["café"]
    assert vault.get(decomposed).text == "2"


@pytest.mark.parametrize("source", ["", "  ", "a\nb", "x" * 201])
def test_bad_source(vault: Vault, source: str) -> None:
    with pytest.raises(BadSource):
        vault.put_attribute("a", "b", source=source)
    assert vault.items() == []


@pytest.mark.parametrize(
    "media_type",
    ["pdf", "application/", "/pdf", "text/plain; charset", "a/b\n", "ap plication/pdf"],
)
def test_bad_media_type(vault: Vault, media_type: str) -> None:
    with pytest.raises(BadMediaType):
        vault.put_document("d", io.BytesIO(b"x"), media_type=media_type, source="a")
    assert vault.items() == []


def test_good_media_types(vault: Vault) -> None:
    for media_type in (
        "application/pdf",
        "image/svg+xml",
        "text/plain; charset=utf-8",
        "application/vnd.oasis.opendocument.text",
    ):
        assert (
            vault.put_document("d", io.BytesIO(b"x"), media_type=media_type, source="a").media_type
            == media_type
        )


def test_text_limits(vault: Vault) -> None:
    vault.put_attribute("max", "x" * 65536, source="a")
    with pytest.raises(BadValue):
        vault.put_attribute("over", "x" * 65537, source="a")
    with pytest.raises(BadValue):
        vault.put_note("over", "é" * (512 * 1024 + 1), source="a")
    with pytest.raises(BadValue):
        vault.put_attribute("surrogate", "a\udc80", source="a")
    assert [i.name for i in vault.items()] == ["max"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.text(min_size=1, max_size=40), value=st.text(max_size=200))
def test_any_valid_name_and_text_round_trip(vault: Vault, name: str, value: str) -> None:
    try:
        canonical = parse_name(name)
    except BadName:
        return
    vault.put_attribute(name, value, source="hypothesis")
    item = vault.get(canonical)
    assert (item.name, item.text) == (canonical, value)
    assert item.size == len(value.encode())


def test_items_survive_reopening(profile: Path, passphrase: str) -> None:
    with open_vault(profile, passphrase) as vault:
        vault.put_attribute("a", "1", source="s", now=T0)
        before = vault.items()
    with open_vault(profile, passphrase) as vault:
        assert vault.items() == before


def test_closed_vault_refuses_use(profile: Path, passphrase: str) -> None:
    from vault.database import Closed

    vault = open_vault(profile, passphrase)
    vault.close()
    vault.close()
    with pytest.raises(Closed):
        vault.items()
