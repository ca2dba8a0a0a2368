"""The installed ``kluis`` as real processes, on the real clock: a profile, the holder
key, the trust list, two documents, the consent screen, approval into a response file that
the verifier accepts, and the trail in the log (names and commitments, no values)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from consent_world import PASSPHRASE, UTRECHT_CLIENT, make_world, purpose_data, request_params
from consent_world import stamp as timestamp

from verifiers.credential_type import INCOME_STATEMENT, PERSONAL_DATA
from verifiers.jws import parse_jwk
from verifiers.keybinding import KeyBinding
from verifiers.verifier import verify_sd_jwt
from wallet import open_wallet, trust_list

Run = Callable[..., subprocess.CompletedProcess[bytes]]
pytestmark = pytest.mark.slow  # eight processes, each about a second of start-up


def _ok(result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_a_citizen_approves_a_request_end_to_end(kluis_process: Run, profile: Path,
                                                 tmp_path: Path) -> None:
    """The profile comes from ``kluis init``'s code in-process with a cheap Argon2id (every
    command here opens the vault; ``test_kluis_process`` runs init at the real cost)."""
    now = datetime.now(UTC).replace(microsecond=0)
    world = make_world(now)
    (tmp_path / "trust.jws").write_text(world.signed_trust_list())
    (tmp_path / "anchor.pub.jwk").write_text(json.dumps(world.keys.anchor.export_public(
        as_dict=True)))
    info = [{"format": "kluis_purpose",
             "data": purpose_data(expires_at=timestamp(now + timedelta(days=1)))}]
    (tmp_path / "request.json").write_text(json.dumps(request_params(verifier_info=info)))

    holder = parse_jwk(json.loads(_ok(kluis_process("credential", "key"))))
    _ok(kluis_process("trust", "set", str(tmp_path / "trust.jws"), "--anchor",
                      str(tmp_path / "anchor.pub.jwk")))
    for vct in (PERSONAL_DATA, INCOME_STATEMENT):
        path = tmp_path / f"{vct.rsplit('/', 1)[1]}.sdjwt"
        path.write_text(world.issue(vct, holder))
        assert "Stored:" in _ok(kluis_process("credential", "import", str(path)))

    screen = _ok(kluis_process("request", "show", str(tmp_path / "request.json")))
    assert "Municipality of Utrecht (on the trust list)" in screen
    assert "Given names: Anna Maria" in screen and "Social Support Act 2015" in screen
    rid = json.loads(_ok(kluis_process("request", "list", "--json")))[0]["id"]

    answer = tmp_path / "answer.json"
    _ok(kluis_process("request", "approve", rid, "--out", str(answer), "--yes"))
    response = json.loads(answer.read_text())
    with open_wallet(profile, PASSPHRASE) as wallet:
        trust = trust_list(wallet.vault, now=now)
        kinds = [e["kind"] for e in wallet.log.entries()]
        lines = b"\n".join(wallet.log.lines()).decode()
        assert wallet.log.check() is not None
    verified = verify_sd_jwt(
        response["vp_token"]["pid"][0], issuer_keys=trust, now=int(now.timestamp()),
        key_binding=KeyBinding(nonce=request_params()["nonce"], aud=UTRECHT_CLIENT),
    )
    assert verified.claims["family_name"] == "de Vries" and "bsn" not in verified.claims
    assert kinds == ["credential_received", "credential_received", "request_received",
                     "request_approved", "presentation_sent"]
    assert "de Vries" not in lines and "Oudegracht" not in lines
    again = kluis_process("request", "refuse", rid)
    assert again.returncode == 5 and b"request.already_decided" in again.stderr
