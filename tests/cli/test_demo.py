"""``kluis demo`` as a real process, as a newcomer runs it: every scene happens and is checked,
in Dutch and in English; without a terminal it answers its own question; a step that fails
(here: a port already taken) stops it with one clear line and a non-zero exit; and it leaves
nothing behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

KLUIS = Path(sys.executable).with_name("kluis")

SCENES = {
    "en": [
        "1. The relay and three agencies start on this computer",
        "Unlocked: Argon2id at its normal cost took",
        "The list's signature verifies with the anchor's key.",
        "Each agency has its own address, so they cannot link her by it.",
        "Stored: personal data",
        "Stored: income statement",
        "Stored: diploma",
        "the code ", "by letter", "by text message (SMS)",
        "Who is asking?", "Why?", "Legal basis:", "How long will they keep it?",
        "Given names: Anna Maria", "Income bracket: 2, € 30.001 – € 45.000",
        "Please note:",
        "The municipality verified the answer and signed 2 receipts",
        "It received exactly name, address and income bracket: address, family_name, "
        "given_name, income_bracket.",
        "BLOCKED",
        "kluis blocked it: it asks beyond the municipality's registration (bsn, gross_income).",
        "Nothing reached the municipality.",
        "The municipality recorded her answer: access_denied.",
        "Her own log records the refusal too.",
        "You refused the request from Municipality of Utrecht.",
        "her wallet sealed the income bracket and tax year to the municipality's key",
        "Read 1: the municipality sees income bracket 2",
        "Read 2: the municipality sees income bracket 2",
        "Both reads are in her log.",
        "Anna stops the access with one action",
        "Read 3 is refused: The relay refused to hand out the item (grant.revoked).",
        "Her log holds the grant, both reads, the revocation and the refused try.",
        "You stopped the access of Municipality of Utrecht",
        "but this was refused: you had stopped their access.",
        "kluis audit verify: the log is intact",
        "kluis audit replay: every release was approved and none went beyond its approval "
        "(releases: 1; violations: 0).",
        "kluis audit reconcile: the municipality's receipts and Anna's log agree (2 releases on "
        "both sides).",
        "checks passed in",
    ],
    "nl": [
        "1. De relay en drie organisaties starten op deze computer",
        "Geopend: Argon2id op de gewone sterkte duurde",
        "Bewaard: persoonsgegevens",
        "Bewaard: inkomensverklaring",
        "per brief", "per sms",
        "Wie vraagt het?", "Waarvoor?", "Wettelijke grondslag:", "Hoe lang bewaren ze het?",
        "Dit delen met Gemeente Utrecht? ja (--yes)",
        "De gemeente controleerde het antwoord en ondertekende 2 ontvangstbewijzen",
        "TEGENGEHOUDEN",
        "De gemeente legde haar antwoord vast: access_denied.",
        "Inzage 2: de gemeente ziet inkomensklasse 2",
        "Inzage 3 wordt geweigerd: De relay gaf het gegeven niet af (grant.revoked).",
        "Haar logboek bevat de machtiging, beide inzagen, de intrekking en de geweigerde poging.",
        "kluis audit verify: het logboek is ongeschonden",
        "kluis audit reconcile: de ontvangstbewijzen van de gemeente en Anna's logboek komen "
        "overeen (2 verstrekkingen aan beide kanten).",
        "controles geslaagd in",
    ],
}


def _env(tmp_path: Path, lang: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KLUIS_")}
    # A private temporary folder, to see that the demo leaves nothing in it.
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    return {**clean, "KLUIS_LANG": lang, "TMPDIR": str(temp),
            "KLUIS_HOME": str(tmp_path / "never-used")}


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "nl"])
def test_every_scene_happens_and_is_checked(tmp_path: Path, lang: str) -> None:
    result = subprocess.run([str(KLUIS), "demo", "--yes"], env=_env(tmp_path, lang),
                            capture_output=True, timeout=180, stdin=subprocess.DEVNULL)
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    missing = [line for line in SCENES[lang] if line not in out]
    assert missing == [], out
    assert "✗" not in out
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / "never-used").exists()  # the citizen's own profile is untouched


@pytest.mark.slow
def test_without_a_terminal_it_answers_its_own_question(tmp_path: Path) -> None:
    result = subprocess.run([str(KLUIS), "--lang", "en", "demo"], env=_env(tmp_path, "nl"),
                            capture_output=True, timeout=180, stdin=subprocess.DEVNULL)
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert "There is no terminal to ask questions on, so the demo answers them itself" in out
    assert "Share this with Municipality of Utrecht? yes (--yes)" in out


def test_a_port_already_taken_stops_it_with_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(KLUIS), "demo", "--yes", "--lang", "en", "--port", str(port)],
            env=_env(tmp_path, "en"), capture_output=True, timeout=120,
            stdin=subprocess.DEVNULL)
    out = result.stdout.decode()
    assert result.returncode == 8, out
    failed = [line for line in out.splitlines() if line.startswith("✗")]
    assert failed == [
        f"✗ Step 1 failed: The kluis services did not start (Port {port} on 127.0.0.1 is "
        "already in use. Stop what uses it, or choose another port [server.port_in_use]). "
        "Solve that and try again."], out
    assert "The throw-away vault is removed and the services are stopped." in out
    assert "2. " not in out  # nothing after the failed step
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.slow
def test_on_a_terminal_it_asks_and_honours_a_no(tmp_path: Path) -> None:
    """Asked on a terminal, Anna says no: nothing is shared, the rest of the story goes on,
    and with no receipt at the agency there is nothing to reconcile."""
    main, side = os.openpty()
    try:
        os.write(main, b"n\n")
        result = subprocess.run([str(KLUIS), "demo", "--lang", "en"], env=_env(tmp_path, "en"),
                                stdin=side, capture_output=True, timeout=180)
    finally:
        os.close(main)
        os.close(side)
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert "Share this with Municipality of Utrecht? [y/N]" in out
    assert "There is no terminal" not in out
    assert "Anna said no: nothing was shared." in out
    assert "Anna shared nothing, so the municipality holds no receipt" in out
    assert "Read 3 is refused" in out and "✗" not in out
