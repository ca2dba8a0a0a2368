"""The agency's receipt log as an auditor receives it, including before its first receipt."""

from __future__ import annotations

from pathlib import Path

from server.receipt_log import RECEIPT_LOG_SCHEMA, ReceiptLog
from server.store import open_store
from verifiers.audit_export import verify_export
from verifiers.merkle import EMPTY_ROOT
from verifiers.note import parse_verifier_key


def test_an_empty_receipt_log_exports_and_verifies_as_empty(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'agency.db'}", schemas=[RECEIPT_LOG_SCHEMA])
    try:
        log = ReceiptLog(store, "receipts", "utrecht.kluis.example/receipts")
        exported = log.export(tmp_path / "export")
        verified = verify_export(tmp_path / "export",
                                 key=parse_verifier_key(log.verifier_key_text()))
    finally:
        store.close()
    assert exported.size == verified.checkpoint.size == 0
    assert verified.checkpoint.root_hash == EMPTY_ROOT
    assert (tmp_path / "export" / "entries.jsonl").read_bytes() == b""
