"""specs/audit-export.md's worked example cannot go stale: this test rebuilds it with today's
code (fixed salts, the published test key; Ed25519 is deterministic) and compares it with the
page byte for byte, then verifies and replays the page's own files and checks its opening.

If the format changes on purpose, run this test, and copy the blocks it prints into the page.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from verifiers import LegalBasis, LocalizedText
from verifiers import log_entry as le
from verifiers.audit_export import EarlierCheckpoint, verify_export, write_export
from verifiers.merkle import prove_consistency
from verifiers.note import Signer, format_verifier_key
from verifiers.opening import Opening, check_openings, format_opening, parse_opening
from verifiers.receipt import Retention
from verifiers.replay import replay_export
from verifiers.tlog import MemoryLogStore, append

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "specs" / "audit-export.md"
ORIGIN = "kluis.example/log/demo"
SEED = hashlib.sha256(f"kluis example key, not secret: {ORIGIN}".encode()).digest()
WHEN = datetime(2027, 3, 3, 10, 15, tzinfo=UTC)
UTRECHT = le.Party("https://utrecht.kluis.example", "Gemeente Utrecht", "Municipality of Utrecht")
INCOME = "https://kluis.example/vct/income-statement"


def _blocks() -> dict[str, str]:
    """The page's example blocks: ``<!-- example: NAME -->`` then a fenced block."""
    text = PAGE.read_text(encoding="utf-8")
    found = re.findall(r"<!-- example: ([\w./-]+) -->\n```[a-z]*\n(.*?)```", text, re.S)
    return dict(found)


def _build(folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], Opening]:
    salts = iter(["c2FsdC1mb3ItdGhlLWV4YW1w", "c2Vjb25kLXNhbHQtZXhhbXBs"])
    monkeypatch.setattr(le, "new_salts", lambda count: [next(salts) for _ in range(count)])
    signer = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(SEED))
    store = MemoryLogStore()
    approval = le.request_approved("r1", UTRECHT, [le.ReleasedCredential(
        "cred-income", INCOME, [(("income_bracket",), {"code": "B", "label": "modal"})])])
    first = append(store, signer, [
        le.request_received(
            "r1", UTRECHT, registered=True,
            purpose=le.Purpose("wmo-household-help", "dpv:ServiceProvision", LocalizedText(
                nl="Wmo huishoudelijke hulp", en="Wmo household help")),
            legal_basis=LegalBasis(nl="Wmo 2015 art. 2.3.2", en="Wmo 2015 art. 2.3.2"),
            retention=Retention(duration="P2Y"), processing_activity="utrecht-va-0042",
            expires_at=WHEN + timedelta(days=1),
            claims=[le.ClaimRef(INCOME, ("income_bracket",))]),
        approval,
    ], now=WHEN)
    append(store, signer, [
        le.presentation_sent("r1", UTRECHT, [le.SentPresentation(
            "cred-income", INCOME, "dHK4A2Y0a9s7X1f8kQ3l2p5bZcVnR6mW0eTuYgHjIo4",
            [("income_bracket",)])], le.Outcome.SENT),
        le.export_made(le.ExportKind.AUDIT),
    ], now=WHEN + timedelta(minutes=1))
    size = store.head().size
    earlier = EarlierCheckpoint(first.note, 2, prove_consistency(2, size, store))
    write_export(folder, lines=store.lines(0, size), size=size,
                 attachments=store.attachments(0, size), checkpoint=store.head().checkpoint,
                 verifier_key=format_verifier_key(signer.verifier_key), earlier=[earlier])
    files = {name: (folder / name).read_text() for name in (
        "entries.jsonl", "checkpoint", "log.vkey", "checkpoints/2", "checkpoints/2.proof")}
    opening = Opening(ORIGIN, 1, store._lines[1], approval.openings)
    return files, opening


def test_the_worked_example_is_what_the_code_makes(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    files, opening = _build(tmp_path / "built", monkeypatch)
    made = {**files, "opening.json": format_opening(opening).decode()}
    page = _blocks()
    for name, content in made.items():
        if page.get(name) != content:
            print(f"<!-- example: {name} -->\n```\n{content}```\n")
    assert {name: page.get(name) for name in made} == made


def test_the_pages_files_verify_replay_and_open(tmp_path: Path) -> None:
    page = _blocks()
    folder = tmp_path / "from-the-page"
    (folder / "checkpoints").mkdir(parents=True)
    for name in ("entries.jsonl", "checkpoint", "log.vkey", "checkpoints/2",
                 "checkpoints/2.proof"):
        (folder / name).write_text(page[name])
    result = verify_export(folder, since=page["checkpoints/2"])
    assert (result.origin, result.checkpoint.size, result.earlier) == (ORIGIN, 4, (2,))
    assert replay_export(folder).clean
    opened = check_openings(folder, parse_opening(page["opening.json"].encode()))
    assert [(o.path, o.value) for o in opened] == [(("income_bracket",),
                                                    {"code": "B", "label": "modal"})]
