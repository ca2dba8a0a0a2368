"""The consent log in the vault: appends commit with the caller's change or not at all, vault
item changes are logged atomically, the log survives reopening and a SIGKILL, and the stored
state always equals what the entries recompute to."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

import pytest
from values import shows_value

from vault import KdfParams, Transaction, create_profile
from verifiers import log_entry as le
from verifiers.checkpoint import verify_checkpoint
from verifiers.merkle import check_consistency, check_inclusion, hash_leaf
from verifiers.tlog import AttachmentClash, BadRecord, Damaged, Record
from wallet.consent_log import NoSuchEntry
from wallet.wallet import SCHEMAS, Wallet, open_wallet

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "correct horse battery staple"
NOW = datetime(2027, 3, 3, 10, 15, tzinfo=UTC)
UTRECHT = le.Party("https://utrecht.kluis.example", "Gemeente Utrecht", "Municipality of Utrecht")


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    root = tmp_path / "profile"
    create_profile(root, PASSPHRASE, schemas=SCHEMAS, _kdf=KdfParams(opslimit=1, memlimit=8192))
    return root


@pytest.fixture
def wallet(profile: Path) -> Iterator[Wallet]:
    with open_wallet(profile, PASSPHRASE) as opened:
        yield opened


def _example(n: int) -> list[Record]:
    return [Record("example", {"n": i}) for i in range(n)]


def test_a_new_log_is_empty_with_a_key_named_after_its_origin(wallet: Wallet) -> None:
    assert wallet.log.size == 0 and wallet.log.checkpoint() is None
    assert wallet.log.origin.startswith("kluis.local/log/")
    assert wallet.log.verifier_key_text.startswith(wallet.log.origin + "+")
    assert wallet.log.check() is None


def test_append_commits_entries_and_a_checkpoint(wallet: Wallet) -> None:
    done = wallet.log.append(_example(3), now=NOW)
    assert [e.seq for e in done.entries] == [0, 1, 2]
    assert list(wallet.log.lines()) == [e.line for e in done.entries]
    checkpoint = wallet.log.checkpoint()
    assert checkpoint is not None and checkpoint.size == 3
    assert wallet.log.check() == checkpoint
    assert [e["n"] for e in wallet.log.entries()] == [0, 1, 2]


def test_an_append_in_the_callers_transaction_rolls_back_with_it(wallet: Wallet) -> None:
    wallet.log.append(_example(1), now=NOW)
    with pytest.raises(RuntimeError), wallet.vault.transaction() as tx:
        wallet.vault.put_attribute("decision", "approved", source="test")
        wallet.log.append(_example(2), now=NOW, tx=tx)
        raise RuntimeError("the engine fails before the decision commits")
    assert wallet.log.size == 1
    assert wallet.vault.count() == 0
    wallet.log.check()


def test_a_bad_record_leaves_the_log_unchanged(wallet: Wallet) -> None:
    with pytest.raises(BadRecord):
        wallet.log.append([*_example(2), Record("example", {"x": 0.5})], now=NOW)
    assert wallet.log.size == 0


def test_item_changes_are_logged_with_a_commitment_to_the_content(wallet: Wallet) -> None:
    wallet.vault.put_attribute("income-2026", "31500", source="test", now=NOW)
    wallet.vault.put_attribute("income-2026", "32000", source="test", now=NOW)
    wallet.vault.put_document("letter", io.BytesIO(b"%PDF-1.7 secret"), source="test",
                              media_type="application/pdf", now=NOW)
    wallet.vault.remove("income-2026", now=NOW)
    entries = list(wallet.log.entries())
    assert [e["kind"] for e in entries] == ["item_added", "item_changed", "item_added",
                                            "item_removed"]
    assert entries[2]["item"] | {"commitment": "-"} == {
        "name": "letter", "type": "document", "media_type": "application/pdf", "size": 15,
        "commitment": "-"}
    for line in wallet.log.lines():
        assert not shows_value(line, "31500") and not shows_value(line, "32000")
        assert b"secret" not in line
    opened = le.check_opening(entries[1], wallet.log.openings(1)[0])
    assert opened.value == sha256(b"32000").hexdigest()
    removed = le.check_opening(entries[3], wallet.log.openings(3)[0])
    assert removed.value == sha256(b"32000").hexdigest()


def test_a_failing_subscriber_rolls_back_the_change_and_its_entry(wallet: Wallet) -> None:
    wallet.vault.put_attribute("kept", "1", source="test", now=NOW)

    def refuse(event: object, tx: Transaction) -> None:
        raise RuntimeError("refused")

    wallet.vault.subscribe(refuse)
    with pytest.raises(RuntimeError):
        wallet.vault.put_attribute("lost", "2", source="test", now=NOW)
    assert wallet.log.size == 1
    assert [i.name for i in wallet.vault.items()] == ["kept"]
    wallet.log.check()


def test_reopening_continues_the_same_log(profile: Path) -> None:
    with open_wallet(profile, PASSPHRASE) as wallet:
        origin = wallet.log.origin
        wallet.log.append(_example(5), now=NOW)
        old = wallet.log.checkpoint()
    with open_wallet(profile, PASSPHRASE) as wallet:
        assert wallet.log.origin == origin
        wallet.log.append(_example(6), now=NOW)
        new = wallet.log.checkpoint()
        assert old is not None and new is not None and new.size == 11
        lines = list(wallet.log.lines())
        assert [int(line.split(b'"seq":')[1].split(b",")[0]) for line in lines] == list(range(11))
        check_consistency(old.size, new.size, old.root_hash, new.root_hash,
                          wallet.log.prove_consistency(old.size))
        for seq in (0, 4, 10):
            check_inclusion(seq, new.size, hash_leaf(lines[seq]),
                            wallet.log.prove_inclusion(seq), new.root_hash)
        assert wallet.log.check() == new


def test_openings_and_attachments_stay_with_their_entries(wallet: Wallet) -> None:
    approval = le.request_approved("r1", UTRECHT, [
        le.ReleasedCredential("c1", "https://kluis.example/vct/income-statement",
                              [(("income_bracket",), "modal")])])
    wallet.log.append([approval], now=NOW)
    assert wallet.log.openings(0) == approval.openings
    with pytest.raises(NoSuchEntry):
        wallet.log.openings(1)
    with pytest.raises(NoSuchEntry):
        wallet.log.entry(-1)


def test_a_trust_list_is_kept_once_and_a_clash_is_refused(wallet: Wallet) -> None:
    from verifiers.tlog import Attachment

    same = Attachment("trust_list", "h1", "jws-one")
    wallet.log.append([Record("example", {}, attachments=(same,)),
                       Record("example", {}, attachments=(same,))], now=NOW)
    assert list(wallet.log.attachments(0, 2)) == [(0, same), (1, same)]
    rows = wallet.vault.reader().query("SELECT count(*) FROM consent_document")
    assert rows == [(1,)]
    with pytest.raises(AttachmentClash):
        wallet.log.append([Record("example", {}, attachments=(
            Attachment("trust_list", "h1", "jws-two"),))], now=NOW)
    assert wallet.log.size == 2


def test_check_finds_a_damaged_store(wallet: Wallet) -> None:
    wallet.log.append(_example(4), now=NOW)
    with wallet.vault.transaction() as tx:
        tx.execute("UPDATE consent_entry SET line = ? WHERE seq = 2", (b'{"edited":1}',))
    with pytest.raises(Damaged):
        wallet.log.check()


def test_check_finds_a_removed_entry(wallet: Wallet) -> None:
    wallet.log.append(_example(4), now=NOW)
    with wallet.vault.transaction() as tx:
        tx.execute("DELETE FROM consent_entry WHERE seq = 3")
    with pytest.raises(Damaged):
        wallet.log.check()


# --- a real process killed mid-append ---------------------------------------------------------

APPENDER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from verifiers.tlog import Record
    from wallet.wallet import open_wallet
    with open_wallet(Path(sys.argv[1]), sys.argv[2]) as wallet:
        print("open", flush=True)
        n = 0
        while True:
            records = [Record("example", {"batch": n, "i": i, "pad": "x" * 150})
                       for i in range(500)]
            with wallet.vault.transaction() as tx:
                wallet.log.append(records, now=datetime.now(UTC), tx=tx)
                wallet.vault.put_attribute(f"batch-{n}", "done", source="appender")
            print(n, flush=True)
            n += 1
    """
)


@pytest.mark.parametrize("kill_after", [0, 4])
def test_sigkill_mid_append_leaves_a_consistent_log(profile: Path, kill_after: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    appender = subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(profile), PASSPHRASE],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    assert appender.stdout is not None
    assert appender.stdout.readline().strip() == "open"
    reported = -1
    while reported < kill_after:
        reported = int(appender.stdout.readline())
    os.kill(appender.pid, signal.SIGKILL)  # by now inside the next batch's transaction
    appender.wait(timeout=10)
    with open_wallet(profile, PASSPHRASE) as wallet:
        checkpoint = wallet.log.check()  # recomputed root == stored state == checkpoint
        assert checkpoint is not None
        batches = {i.name for i in wallet.vault.items() if i.name.startswith("batch-")}
        # each committed batch: 500 entries + the item_added entry of its marker, atomically
        assert checkpoint.size == 501 * len(batches)
        assert len(batches) > kill_after
        note = wallet.log.head().checkpoint
        verify_checkpoint(note, wallet.log.verifier_key, origin=wallet.log.origin)


# --- export ---------------------------------------------------------------------------------------


def test_exports_record_themselves_and_carry_earlier_checkpoints(wallet: Wallet,
                                                                 tmp_path: Path) -> None:
    from verifiers.audit_export import verify_export

    wallet.vault.put_attribute("income-2026", "31500", source="test", now=NOW)
    first = wallet.log.export(tmp_path / "first", now=NOW)
    assert first.size == 2
    first_note = (tmp_path / "first" / "checkpoint").read_text()
    wallet.log.append(_example(3), now=NOW)
    second = wallet.log.export(tmp_path / "second.tar", now=NOW)
    assert second.size == 6 and second.checkpoints == 1
    result = verify_export(tmp_path / "second.tar", key=wallet.log.verifier_key,
                           since=first_note)
    assert result.earlier == (2,) and result.checkpoint.size == 6
    kinds = [e["kind"] for e in wallet.log.entries()]
    assert kinds == ["item_added", "export_made", "example", "example", "example", "export_made"]
    assert wallet.log.published() == [first_note, wallet.log.head().checkpoint]


def test_export_refuses_an_existing_target(wallet: Wallet, tmp_path: Path) -> None:
    from vault import FileExists, NoFile

    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExists):
        wallet.log.export(tmp_path / "taken", now=NOW)
    with pytest.raises(NoFile):
        wallet.log.export(tmp_path / "no" / "such" / "folder", now=NOW)
    assert wallet.log.size == 0


# --- openings for an auditor -----------------------------------------------------------------------


def test_an_opening_reveals_the_released_values_to_an_auditor(wallet: Wallet,
                                                              tmp_path: Path) -> None:
    from verifiers.opening import check_openings, format_opening, parse_opening

    approval = le.request_approved("r1", UTRECHT, [le.ReleasedCredential(
        "c1", "https://kluis.example/vct/income-statement",
        [(("income_bracket",), {"code": "B", "label": "modal"}), (("tax_year",), 2026)])])
    seq = wallet.log.append([approval], now=NOW).entries[0].seq
    wallet.log.export(tmp_path / "export", now=NOW)
    opening = parse_opening(format_opening(wallet.log.open_entry(seq)))
    opened = check_openings(tmp_path / "export", opening, key=wallet.log.verifier_key)
    assert sorted((o.path, str(o.value)) for o in opened) == [
        (("income_bracket",), "{'code': 'B', 'label': 'modal'}"), (("tax_year",), "2026")]


def test_an_opening_with_a_wrong_value_fails(wallet: Wallet, tmp_path: Path) -> None:
    import base64
    import json

    from verifiers.disclosure import format_disclosure
    from verifiers.log_entry import BadOpening
    from verifiers.opening import Opening, check_openings

    approval = le.request_approved("r1", UTRECHT, [le.ReleasedCredential(
        "c1", "https://kluis.example/vct/income-statement", [(("tax_year",), 2026)])])
    seq = wallet.log.append([approval], now=NOW).entries[0].seq
    wallet.log.export(tmp_path / "export", now=NOW)
    real = wallet.log.open_entry(seq)
    salt = json.loads(base64.urlsafe_b64decode(real.disclosures[0] + "=="))[0]
    lie = format_disclosure(salt, '["tax_year"]', 2025).encoded
    with pytest.raises(BadOpening):
        check_openings(tmp_path / "export", Opening(real.origin, seq, real.line, (lie,)))
    with pytest.raises(BadOpening):  # the right disclosure against another entry's line
        check_openings(tmp_path / "export", Opening(real.origin, seq + 1, real.line,
                                                    real.disclosures))
    with pytest.raises(NoSuchEntry):
        wallet.log.open_entry(99)
