"""``kluis grant list|show|create|approve|revoke|sync`` and ``kluis agency fetch|grant-keys``,
in-process against a real relay on loopback (SQLite): the citizen approves a grant request,
the agency reads with its key files and keeps a receipt per read, the citizen revokes, the
next read is refused, and the trail and the replay show it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from consent_world import NOW, UTRECHT
from grant_world import (
    FETCH_KID,
    GrantWorld,
    grant_request_params,
    make_grant_world,
    new_grant_citizen,
)
from issuer_service import Clock, _bound, _serving

from cli import context
from cli.commands.audit import _VIOLATIONS
from server.relay_app import create_relay_app
from server.settings import Settings
from server.store import open_store
from verifiers.credential_type import INCOME_STATEMENT
from verifiers.grant_fetch import verify_fetch_receipt
from verifiers.jws import format_private_jwk
from verifiers.replay import Violation
from verifiers.sealed_item import format_encryption_jwk

Invoke = Callable[..., Result]


@pytest.fixture(scope="module")
def world() -> GrantWorld:
    return make_grant_world()


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "now", lambda: NOW)


@contextmanager
def _relay(folder: Path) -> Iterator[str]:
    sock, port = _bound()
    url = f"sqlite:///{folder / 'relay.db'}"
    store = open_store(url)
    settings = Settings(data_dir=folder, db_url=url, port=port, rate_limit_per_client=100_000)
    try:
        with _serving(create_relay_app(settings, store, clock=Clock(at=NOW)), sock):
            yield f"http://127.0.0.1:{port}"
    finally:
        store.close()


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _relay(tmp_path_factory.mktemp("relay")) as url:
        yield url


@pytest.fixture
def citizen(home: Path, world: GrantWorld) -> Path:
    """A profile with the trust list and an income statement (made through the core)."""
    opened = new_grant_citizen(home, world)
    opened.receive(INCOME_STATEMENT)
    opened.wallet.close()
    return home


@pytest.fixture
def agency_keys(tmp_path: Path, world: GrantWorld) -> list[str]:
    key, enc = tmp_path / "fetch.jwk", tmp_path / "enc.jwk"
    key.write_text(json.dumps(format_private_jwk(world.grant_keys.fetch)))
    enc.write_text(json.dumps(format_encryption_jwk(world.grant_keys.encryption,
                                                    private=True)))
    return ["--key", str(key), "--encryption-key", str(enc)]


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def _request(kluis: Invoke, tmp_path: Path, **changes: Any) -> str:
    path = tmp_path / "grant-request.json"
    path.write_text(json.dumps(grant_request_params(**changes)))
    return str(json.loads(_ok(kluis("request", "import", str(path), "--json")).stdout)["id"])


def test_approve_read_twice_revoke_and_the_third_read_is_refused(
        kluis: Invoke, citizen: Path, relay: str, tmp_path: Path,
        agency_keys: list[str]) -> None:
    request_id = _request(kluis, tmp_path)
    screen = _ok(kluis("request", "show", request_id)).stdout
    assert "ONGOING ACCESS" in screen and f"kluis grant approve {request_id}" in screen
    wrong = kluis("request", "approve", request_id, "--yes", "--out", str(tmp_path / "a.json"))
    assert wrong.exit_code == 3 and "grant.needs_grant_approval" in wrong.output

    notice = tmp_path / "notice.json"
    approved = _ok(kluis("grant", "approve", request_id, "--relay", relay, "--notice",
                         str(notice), "--yes"))
    assert "1 grant(s) registered, 1 item(s) sent" in approved.stdout
    grant_id = json.loads(notice.read_text())["grant"]

    for _ in range(2):
        read = json.loads(_ok(kluis("agency", "fetch", str(notice), "--item", "income",
                                    *agency_keys, "--json")).stdout)
        claims = {c["path"][0]: c["value"] for c in json.loads(read["content"])["claims"]}
        assert claims["tax_year"] == 2026 and "gross_income" not in claims
    receipts = [json.loads(line) for line in
                (tmp_path / "grant-receipts.jsonl").read_text().splitlines()]
    assert len(receipts) == 2
    synced = json.loads(_ok(kluis("grant", "sync", "--json")).stdout)
    assert synced["logged"] == 2

    listed = json.loads(_ok(kluis("grant", "list", "--json")).stdout)
    assert [(g["id"], g["status"], g["reads"]) for g in listed] == [(grant_id, "active", 2)]
    shown = _ok(kluis("grant", "show", grant_id[:6], lang="nl")).stdout
    assert "Gemeente Utrecht — actief" in shown and "ingezien (versie 1)" in shown

    revoked = _ok(kluis("grant", "revoke", grant_id[:6], "--yes"))
    assert "Stopped. The relay refuses every read" in revoked.stdout
    third = kluis("agency", "fetch", str(notice), "--item", "income", *agency_keys)
    assert third.exit_code == 6 and "grant.revoked" in third.output
    _ok(kluis("grant", "sync"))

    trail = _ok(kluis("audit", "show")).stdout
    assert "Municipality of Utrecht read your income bracket and tax year." in trail
    assert "You stopped the access of Municipality of Utrecht" in trail
    assert "tried to read your income bracket and tax year, but this was refused" in trail
    dutch = _ok(kluis("audit", "show", lang="nl")).stdout
    assert "Gemeente Utrecht heeft uw inkomensklasse en belastingjaar ingezien." in dutch
    export = tmp_path / "audit-export"
    _ok(kluis("audit", "export", str(export)))
    replay = kluis("audit", "replay", str(export))
    assert replay.exit_code == 0, replay.output
    assert [r["fetch"] for r in receipts] == [
        e["fetch"] for e in _entries(export) if e["kind"] == "grant_used"][:2]


def test_receipts_verify_with_the_agencys_key(kluis: Invoke, citizen: Path, relay: str,
                                              tmp_path: Path, agency_keys: list[str],
                                              world: GrantWorld) -> None:
    notice = tmp_path / "notice.json"
    _ok(kluis("grant", "approve", _request(kluis, tmp_path), "--relay", relay, "--notice",
              str(notice), "--yes"))
    out = tmp_path / "income.json"
    _ok(kluis("agency", "fetch", str(notice), "--item", "income", *agency_keys, "--out",
              str(out), "--receipts", str(tmp_path / "r.jsonl")))
    (line,) = (tmp_path / "r.jsonl").read_text().splitlines()
    receipt = verify_fetch_receipt(json.loads(line)["receipt"], world.grant_keys.fetch.public)
    assert (receipt.item, receipt.agency) == ("income", UTRECHT)
    assert json.loads(out.read_text())["vct"] == INCOME_STATEMENT
    again = kluis("agency", "fetch", str(notice), "--item", "income", *agency_keys, "--out",
                  str(out))
    assert again.exit_code == 5  # never overwrites


def test_create_on_own_initiative(kluis: Invoke, citizen: Path, relay: str, tmp_path: Path,
                                  agency_keys: list[str]) -> None:
    _ok(kluis("vault", "put", "zorgplan", "--value", "Hulp bij het huishouden, 4 uur"))
    notice = tmp_path / "own.json"
    created = json.loads(_ok(kluis(
        "grant", "create", "--agency", UTRECHT, "--purpose", "wmo-household-help",
        "--until", "2027-06-30", "--item", "zorgplan=care-plan",
        "--claims", "income-statement:income_bracket", "--agency-key", FETCH_KID,
        "--relay", relay, "--notice", str(notice), "--yes", "--json")).stdout)
    assert [i["id"] for i in created["items"]] == ["care-plan", "income-statement"]
    assert created["sync"]["uploaded"] == 2 and created["valid_until"].startswith("2027-0")
    read = _ok(kluis("agency", "fetch", str(notice), "--item", "care-plan", *agency_keys))
    assert read.stdout.strip() == "Hulp bij het huishouden, 4 uur"
    _ok(kluis("vault", "put", "zorgplan", "--value", "6 uur"))
    assert json.loads(_ok(kluis("grant", "sync", "--json")).stdout)["uploaded"] == 1
    assert _ok(kluis("agency", "fetch", str(notice), "--item", "care-plan",
                     *agency_keys)).stdout.strip() == "6 uur"


@pytest.mark.parametrize(("args", "code", "exit_code"), [
    (["--until", "31-06-2027"], "grant.bad_date", 3),
    (["--until", "2027-06-30", "--claims", "passport:number"], "grant.bad_item_option", 3),
    (["--until", "2027-06-30", "--claims", "income-statement:gross_income",
      "--agency-key", FETCH_KID], "grant.beyond_registration", 6),
    (["--until", "2027-06-30", "--claims", "income-statement:income_bracket"],
     "grant.choose_agency_key", 3),
])
def test_bad_create_options_say_what_is_wrong(kluis: Invoke, citizen: Path, relay: str,
                                              args: list[str], code: str,
                                              exit_code: int) -> None:
    result = kluis("grant", "create", "--agency", UTRECHT, "--purpose", "wmo-household-help",
                   "--relay", relay, "--yes", *args)
    assert (result.exit_code, code in result.output) == (exit_code, True), result.output
    assert json.loads(_ok(kluis("grant", "list", "--json")).stdout) == []


def test_unknown_grants_and_an_offline_relay(kluis: Invoke, citizen: Path, tmp_path: Path
                                             ) -> None:
    assert kluis("grant", "revoke", "zzzzzz", "--yes").exit_code == 4
    sock, port = _bound()
    sock.close()  # nothing listens here
    offline = _ok(kluis("grant", "approve", _request(kluis, tmp_path), "--relay",
                        f"http://127.0.0.1:{port}", "--yes"))
    assert "could not be reached (transport.unreachable); 2 change(s) wait" in offline.stdout
    (grant,) = json.loads(_ok(kluis("grant", "list", "--json")).stdout)
    assert grant["waiting"] == 2
    never = _ok(kluis("grant", "revoke", grant["id"], "--yes"))
    assert "Nothing of it had reached the relay yet" in never.stdout

    folder = tmp_path / "short-lived"
    folder.mkdir()
    with _relay(folder) as relay:
        other = tmp_path / "other"
        other.mkdir()
        _ok(kluis("grant", "approve", _request(kluis, other, state="wmo-2027-0002"),
                  "--relay", relay, "--yes"))
    (newest,) = [g for g in json.loads(_ok(kluis("grant", "list", "--json")).stdout)
                 if g["status"] == "active"]
    stopped = _ok(kluis("grant", "revoke", newest["id"], "--yes"))
    assert "Stopped in your wallet, but the relay could not be reached" in stopped.stdout
    shown = json.loads(_ok(kluis("grant", "show", newest["id"], "--json")).stdout)
    assert (shown["status"], shown["waiting"]) == ("revoking", 1)


def test_agency_grant_keys_are_written_private(kluis: Invoke, tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    _ok(kluis("agency", "grant-keys", str(folder), "--kid", "utrecht-grants"))
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["grant-encryption.jwk", "grant-encryption.pub.jwk", "grant-fetch.jwk",
                     "grant-fetch.pub.jwk"]
    assert (folder / "grant-fetch.jwk").stat().st_mode & 0o077 == 0
    assert "d" not in json.loads((folder / "grant-encryption.pub.jwk").read_text())


def test_every_replay_violation_has_words() -> None:
    assert set(_VIOLATIONS) == set(Violation)


def _entries(export: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (export / "entries.jsonl").read_text().splitlines()]
