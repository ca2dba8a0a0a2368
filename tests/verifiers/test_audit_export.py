"""The audit export and ``verify_export``: a clean export verifies (folder and tar); every
tamper is caught with its own code; any single-byte change anywhere is caught."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault import KluisError
from verifiers.audit_export import (
    BadExport,
    Forked,
    KeyMismatch,
    MissingFile,
    RootMismatch,
    SizeMismatch,
    verify_export,
    write_export,
)
from verifiers.audit_export import Rollback as RolledBack
from verifiers.checkpoint import parse_checkpoint, sign_checkpoint
from verifiers.merkle import BadConsistencyProof
from verifiers.note import BadSignature, Signer, UnverifiedNote, format_verifier_key

FILES = ("entries.jsonl", "checkpoint", "log.vkey")


def _lines(path: Path) -> list[bytes]:
    return (path / "entries.jsonl").read_bytes().split(b"\n")[:-1]


def _write_lines(path: Path, lines: list[bytes]) -> None:
    (path / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


@pytest.fixture
def three(story):
    """A log of three releases; the checkpoint after the first was handed out."""
    story.release("r1")
    first = story.store.head().checkpoint
    story.release("r2")
    story.release("r3")
    return story, first


@pytest.fixture
def export(three, tmp_path: Path) -> Path:
    story, first = three
    return story.export(tmp_path / "export", earlier=(first,))


def test_a_clean_export_verifies(three, export: Path) -> None:
    story, first = three
    result = verify_export(export, key=story.signer.verifier_key, since=first)
    assert result.checkpoint.size == story.store.head().size == len(_lines(export))
    assert result.earlier == (4,)
    assert result.since is not None and result.since.size == 4
    assert result.origin == story.signer.name
    names = sorted(p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file())
    assert names == ["checkpoint", "checkpoints/4", "checkpoints/4.proof", "entries.jsonl",
                     "log.vkey", "receipts.jsonl"]


def test_a_tar_export_verifies(three, tmp_path: Path) -> None:
    story, first = three
    tar = story.export(tmp_path / "export.tar", earlier=(first,))
    assert tar.is_file()
    assert verify_export(tar, since=first).checkpoint.size == story.store.head().size


def test_an_empty_log_with_a_checkpoint_at_size_zero_verifies(story, tmp_path: Path) -> None:
    note = story.checkpoint_at(0)
    path = tmp_path / "empty"
    write_export(path, lines=[], size=0, attachments=[], checkpoint=note,
                 verifier_key=format_verifier_key(story.signer.verifier_key))
    assert verify_export(path).checkpoint.size == 0


def test_the_writer_refuses_an_existing_target(three, export: Path) -> None:
    with pytest.raises(FileExistsError):
        three[0].export(export)


# --- tampers, each with its code --------------------------------------------------------------


def test_edited_entry(export: Path) -> None:
    lines = _lines(export)
    lines[2] = lines[2].replace(b"income_bracket", b"income_brackeT")
    _write_lines(export, lines)
    with pytest.raises(RootMismatch):
        verify_export(export)


def test_inserted_entry(export: Path) -> None:
    lines = _lines(export)
    _write_lines(export, [*lines[:3], lines[1], *lines[3:]])
    with pytest.raises(SizeMismatch):
        verify_export(export)


def test_removed_entry(export: Path) -> None:
    lines = _lines(export)
    del lines[5]
    _write_lines(export, lines)
    with pytest.raises(SizeMismatch):
        verify_export(export)


def test_reordered_entries(export: Path) -> None:
    lines = _lines(export)
    lines[6], lines[7] = lines[7], lines[6]
    _write_lines(export, lines)
    with pytest.raises(RootMismatch):
        verify_export(export)


def test_truncated_at_a_line_end(export: Path) -> None:
    _write_lines(export, _lines(export)[:-2])
    with pytest.raises(SizeMismatch):
        verify_export(export)


def test_truncated_inside_a_line(export: Path) -> None:
    data = (export / "entries.jsonl").read_bytes()
    (export / "entries.jsonl").write_bytes(data[:-40])
    with pytest.raises(BadExport):
        verify_export(export)


def test_entries_added_after_the_checkpoint(three, tmp_path: Path) -> None:
    story, _ = three
    path = story.export(tmp_path / "e", size=8)
    _write_lines(path, list(story.store.lines(0, 12)))
    with pytest.raises(SizeMismatch):
        verify_export(path)


def test_forked_log_against_a_pinned_checkpoint(new_story, tmp_path: Path) -> None:
    """Two histories signed by one key: the auditor's old checkpoint is of the other one."""
    honest, fork = new_story(), new_story()
    honest.release("r1")
    fork.release("r1-other")
    seen = fork.store.head().checkpoint  # same size, other entries
    honest.release("r2")
    path = honest.export(tmp_path / "e")
    with pytest.raises(Forked):
        verify_export(path, since=seen)


def test_forked_log_inside_the_export(new_story, tmp_path: Path) -> None:
    honest, fork = new_story(), new_story()
    honest.release("r1")
    fork.release("r1-other")
    honest.release("r2")
    path = honest.export(tmp_path / "e", earlier=(honest.store.head().checkpoint,))
    (path / "checkpoints" / "4").write_text(fork.store.head().checkpoint)
    with pytest.raises(Forked):
        verify_export(path)


def test_a_checkpoint_of_another_tree(new_story, tmp_path: Path) -> None:
    honest, fork = new_story(), new_story()
    honest.release("r1")
    fork.release("r1-other")
    path = honest.export(tmp_path / "e")
    (path / "checkpoint").write_text(fork.store.head().checkpoint)
    with pytest.raises(RootMismatch):
        verify_export(path)


def test_rolled_back_log(three, tmp_path: Path) -> None:
    story, first = three
    latest = story.store.head().checkpoint
    path = story.export(tmp_path / "old", size=4)  # an older export, handed over now
    with pytest.raises(RolledBack):
        verify_export(path, since=latest)


def test_wrong_pinned_key(export: Path) -> None:
    with pytest.raises(KeyMismatch):
        verify_export(export, key=Signer.generate("kluis.local/log/other").verifier_key)


def test_signature_from_an_unknown_key(three, export: Path) -> None:
    story, _ = three
    impostor = Signer.generate(story.signer.name)  # same name, other key
    body = parse_checkpoint((export / "checkpoint").read_text().split("\n\n")[0] + "\n")
    (export / "checkpoint").write_text(sign_checkpoint(body, impostor))
    with pytest.raises(UnverifiedNote):
        verify_export(export)


def test_a_replaced_key_passes_only_without_a_pin(three, export: Path) -> None:
    """Re-signing with a new log.vkey makes a self-consistent export: only pinning the key
    (or an earlier checkpoint) shows it is not the log the auditor knows."""
    story, first = three
    impostor = Signer.generate(story.signer.name)
    body = parse_checkpoint((export / "checkpoint").read_text().split("\n\n")[0] + "\n")
    (export / "checkpoint").write_text(sign_checkpoint(body, impostor))
    (export / "log.vkey").write_text(format_verifier_key(impostor.verifier_key) + "\n")
    shutil.rmtree(export / "checkpoints")
    verify_export(export)
    with pytest.raises(KeyMismatch):
        verify_export(export, key=story.signer.verifier_key)
    with pytest.raises(UnverifiedNote):
        verify_export(export, since=first)


def test_changed_signature(export: Path) -> None:
    text = (export / "checkpoint").read_text()
    body, sig = text.split("\n\n")
    flipped = sig[:-6] + ("A" if sig[-6] != "A" else "B") + sig[-5:]
    (export / "checkpoint").write_text(body + "\n\n" + flipped)
    with pytest.raises(BadSignature):
        verify_export(export)


def test_tampered_consistency_proof(export: Path) -> None:
    proof = (export / "checkpoints" / "4.proof").read_bytes().split(b"\n")
    proof[0], proof[1] = proof[1], proof[0]
    (export / "checkpoints" / "4.proof").write_bytes(b"\n".join(proof))
    with pytest.raises(BadConsistencyProof):
        verify_export(export)


@pytest.mark.parametrize("name", FILES)
def test_missing_file(export: Path, name: str) -> None:
    (export / name).unlink()
    with pytest.raises(MissingFile):
        verify_export(export)


def test_unexpected_file(export: Path) -> None:
    (export / "notes.txt").write_text("hello")
    with pytest.raises(BadExport):
        verify_export(export)


def test_not_an_export(tmp_path: Path) -> None:
    (tmp_path / "x.tar").write_bytes(b"not a tar at all" * 50)
    with pytest.raises(BadExport):
        verify_export(tmp_path / "x.tar")
    with pytest.raises(MissingFile):
        verify_export(tmp_path / "nowhere")


# --- any single byte ---------------------------------------------------------------------------


def _all_bytes(root: Path) -> list[tuple[str, int]]:
    names = ["entries.jsonl", "checkpoint", "log.vkey", "checkpoints/4", "checkpoints/4.proof"]
    return [(name, i) for name in names for i in range((root / name).stat().st_size)]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_change_is_caught(export: Path, data) -> None:
    positions = _all_bytes(export)
    name, index = data.draw(st.sampled_from(positions))
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "e"
        shutil.copytree(export, copy)
        raw = bytearray((copy / name).read_bytes())
        raw[index] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[index]))
        (copy / name).write_bytes(bytes(raw))
        with pytest.raises(KluisError):
            verify_export(copy)
