"""``kluis init``, ``status``, ``passphrase change`` and ``recover``, in-process."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from cli import context
from vault import WrongPassphrase, inspect_profile, open_vault

PASSPHRASE = "correct horse battery staple"
Invoke = Callable[..., Result]
RECOVERY = re.compile(r"\b([A-Z2-7]{4}(?:-[A-Z2-7]{4}){7})\b")


def test_init_prints_the_recovery_code_once_with_advice(kluis: Invoke, home: Path) -> None:
    result = kluis("init")
    assert result.exit_code == 0, result.output
    codes = RECOVERY.findall(result.output)
    assert len(codes) == 1
    assert "Write this code on paper" in result.output
    assert PASSPHRASE not in result.output
    assert inspect_profile(home).exists
    with open_vault(home, PASSPHRASE):
        pass


def test_init_asks_twice_without_the_variable(kluis: Invoke, home: Path) -> None:
    result = kluis(
        "init", env={"KLUIS_PASSPHRASE": ""}, input="typed passphrase\ntyped passphrase\n"
    )
    assert result.exit_code == 0, result.output
    with open_vault(home, "typed passphrase"):
        pass


def test_init_with_mismatched_repeat_asks_again(kluis: Invoke, home: Path) -> None:
    typed = "first passphrase\nsecond passphrase\nthird passphrase\nthird passphrase\n"
    result = kluis("init", env={"KLUIS_PASSPHRASE": ""}, input=typed)
    assert result.exit_code == 0, result.output
    with open_vault(home, "third passphrase"):
        pass


def test_init_json_gives_the_code_to_scripts(kluis: Invoke, home: Path) -> None:
    data = json.loads(kluis("init", "--json").stdout)
    assert data["profile"] == str(home) and RECOVERY.fullmatch(data["recovery_code"])


def test_init_over_a_profile_fails_without_asking(kluis: Invoke, profile: Path) -> None:
    before = (profile / "key.json").read_bytes()
    result = kluis("init", env={"KLUIS_PASSPHRASE": ""}, input="")
    assert result.exit_code == 5
    assert result.stderr.startswith("Error [vault.profile_exists]: ")
    assert result.stderr.count("\n") == 1
    assert (profile / "key.json").read_bytes() == before


def test_init_with_a_weak_passphrase(kluis: Invoke, home: Path) -> None:
    result = kluis("init", env={"KLUIS_PASSPHRASE": "short"})
    assert result.exit_code == 3 and "[vault.weak_passphrase]" in result.stderr
    assert not home.exists()


def test_status_without_a_profile(kluis: Invoke, home: Path) -> None:
    result = kluis("status", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"profile": str(home), "exists": False}
    assert "kluis init" in kluis("status").stdout


def test_status_needs_no_passphrase_unless_unlocking(kluis: Invoke, profile: Path) -> None:
    data = json.loads(kluis("status", "--json", env={"KLUIS_PASSPHRASE": ""}).stdout)
    assert data["exists"] and not data["in_use"] and data["failed_attempts"] == 0
    assert "items" not in data
    kluis("vault", "put", "bsn", "--value", "123456782")
    unlocked = json.loads(kluis("status", "--unlock", "--json").stdout)
    assert unlocked["items"] == 1 and unlocked["schemas"]["vault"] == 1
    assert set(unlocked["schemas"]) == {"vault", *(s.component for s in context.SCHEMAS)}
    text = kluis("status", "--unlock").stdout
    assert "Items: 1" in text and "vault 1" in text


def test_status_unlock_with_a_wrong_passphrase(kluis: Invoke, profile: Path) -> None:
    result = kluis("status", "--unlock", env={"KLUIS_PASSPHRASE": "wrong passphrase"})
    assert result.exit_code == 6 and "[vault.wrong_passphrase]" in result.stderr


def test_passphrase_change(kluis: Invoke, profile: Path) -> None:
    database = (profile / "vault.db").read_bytes()
    result = kluis("passphrase", "change", env={"KLUIS_NEW_PASSPHRASE": "a brand new passphrase"})
    assert result.exit_code == 0, result.output
    assert (profile / "vault.db").read_bytes() == database
    with open_vault(profile, "a brand new passphrase"):
        pass


def test_passphrase_change_typed(kluis: Invoke, profile: Path) -> None:
    typed = f"{PASSPHRASE}\nnew typed passphrase\nnew typed passphrase\n"
    result = kluis("passphrase", "change", env={"KLUIS_PASSPHRASE": ""}, input=typed)
    assert result.exit_code == 0, result.output
    with open_vault(profile, "new typed passphrase"):
        pass


def test_passphrase_change_with_a_wrong_old_one(kluis: Invoke, profile: Path) -> None:
    key = (profile / "key.json").read_bytes()
    result = kluis(
        "passphrase",
        "change",
        env={"KLUIS_PASSPHRASE": "wrong passphrase", "KLUIS_NEW_PASSPHRASE": "new passphrase"},
    )
    assert result.exit_code == 6 and "[vault.wrong_passphrase]" in result.stderr
    assert (profile / "key.json").read_bytes() == key


def test_recover(kluis: Invoke, home: Path) -> None:
    code = json.loads(kluis("init", "--json").stdout)["recovery_code"]
    result = kluis(
        "recover",
        env={"KLUIS_PASSPHRASE": "", "KLUIS_NEW_PASSPHRASE": ""},
        input=f"{code.lower()}\nremembered passphrase\nremembered passphrase\n",
    )
    assert result.exit_code == 0, result.output
    with open_vault(home, "remembered passphrase"):
        pass
    with pytest.raises(WrongPassphrase):
        open_vault(home, PASSPHRASE)


def test_recover_with_a_wrong_code(kluis: Invoke, profile: Path) -> None:
    key = (profile / "key.json").read_bytes()
    env = {
        "KLUIS_RECOVERY_CODE": "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA",
        "KLUIS_NEW_PASSPHRASE": "new passphrase",
    }
    result = kluis("recover", env=env)
    assert result.exit_code == 6 and "[vault.wrong_recovery_code]" in result.stderr
    result = kluis("recover", env={**env, "KLUIS_RECOVERY_CODE": "1234"})
    assert result.exit_code == 3 and "[vault.bad_recovery_code]" in result.stderr
    assert (profile / "key.json").read_bytes() == key


def test_commands_on_a_missing_profile_fail_before_asking(kluis: Invoke, home: Path) -> None:
    for command in (
        ["vault", "list"],
        ["vault", "get", "x"],
        ["passphrase", "change"],
        ["recover"],
    ):
        result = kluis(*command, env={"KLUIS_PASSPHRASE": ""}, input="")
        assert result.exit_code == 4, command
        assert result.stderr == (
            f"Error [vault.no_profile]: There is no kluis profile at {home}. Create one with"
            " 'kluis init', or choose another folder with --home.\n"
        )
    assert not home.exists()


def test_errors_speak_dutch(kluis: Invoke, home: Path) -> None:
    result = kluis("vault", "list", lang="nl")
    assert result.stderr.startswith("Fout [vault.no_profile]: Er is geen kluis-profiel in ")
