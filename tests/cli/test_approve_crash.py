"""Log first, release second, under kill -9: a real process approves a request and writes
the response file; it is SIGKILLed at every named point of the way (tests/support/
approve_harness.py) and after a spread of delays. After each kill the vault opens, its log
verifies, and a response file (whole or partly written) exists only if the approval entry
for that request is in the log; a whole file holds exactly the release that entry recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from consent_world import (
    FAST,
    NOW,
    PASSPHRASE,
    World,
    make_world,
    request_params,
)

from vault import create_profile
from verifiers.credential_type import INCOME_STATEMENT, PERSONAL_DATA
from verifiers.receipt import hash_presentation
from wallet import holder_key, open_wallet, parse_request, set_trust_list

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "support" / "approve_harness.py"
POINTS = ("before_approve", "approval_appended", "approved", "half_written", "temp_written",
          "written", "outcome_recorded")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A closed profile holding the trust list, two credentials and one received request."""
    world: World = make_world()
    home = tmp_path_factory.mktemp("prepared") / "home"
    create_profile(home, PASSPHRASE, _kdf=FAST)
    with open_wallet(home, PASSPHRASE) as wallet:
        set_trust_list(wallet.vault, world.signed_trust_list(), world.anchor(), now=NOW)
        holder = holder_key(wallet.vault, now=NOW).public
        for vct in (PERSONAL_DATA, INCOME_STATEMENT):
            wallet.receive_credential(world.issue(vct, holder), now=NOW)
        evaluation = wallet.consent.receive(parse_request(request_params()), now=NOW)
    return home, evaluation.request.id


def _run(home: Path, rid: str, out: Path, *, point: str = "") -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KLUIS_")},
        "PYTHONPATH": str(ROOT / "tests" / "support"),
        "KLUIS_PASSPHRASE": PASSPHRASE,
        "KLUIS_LANG": "en",
        "KLUIS_TEST_PAUSE": point,
        "KLUIS_TEST_SIGNAL": str(out.parent / "reached"),
    }
    return subprocess.Popen(
        [sys.executable, str(HARNESS), "--home", str(home), "request", "approve", rid,
         "--out", str(out), "--yes"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
    )


def _case(prepared: tuple[Path, str], tmp_path: Path, name: str) -> tuple[Path, Path]:
    home = tmp_path / name / "home"
    shutil.copytree(prepared[0], home)
    out_dir = tmp_path / name / "out"
    out_dir.mkdir()
    return home, out_dir / "answer.json"


def _release_files(out: Path) -> list[Path]:
    """The response file and any temporary file on its way to becoming it."""
    return [p for p in out.parent.iterdir()
            if p.name == out.name or (p.name.startswith(f".{out.name}.") and p.suffix == ".part")]


def _check(home: Path, rid: str, out: Path) -> str:
    """The invariant after a kill; returns the request's state for the caller's assertions."""
    with open_wallet(home, PASSPHRASE) as wallet:
        wallet.log.check()  # raises log.damaged on any inconsistency
        approved = [e for e in wallet.log.entries()
                    if e["kind"] == "request_approved" and e["request"] == rid]
        state = wallet.consent.find(rid).state.value
        files = _release_files(out)
        if files:
            assert approved, f"a release file without its approval entry: {files}"
        if approved:
            assert len(approved) == 1 and state == "approved"
            release = wallet.consent.release(rid)
            assert release.entry == approved[0]["seq"]
        else:
            assert state == "pending" and not files
        if out.exists():
            written = json.loads(out.read_text())
            hashes = {hash_presentation(p) for ps in written["vp_token"].values() for p in ps}
            assert hashes == release.hashes()
    return state


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_each_point_never_leaves_a_release_without_its_entry(
    prepared: tuple[Path, str], tmp_path: Path, point: str
) -> None:
    home, out = _case(prepared, tmp_path, point)
    process = _run(home, prepared[1], out, point=point)
    signal_file = out.parent / "reached"
    deadline = time.monotonic() + 60
    while not signal_file.exists():
        if process.poll() is not None:
            pytest.fail(f"the harness ended before {point}: {process.stderr.read().decode()}")
        assert time.monotonic() < deadline, f"{point} not reached"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    state = _check(home, prepared[1], out)
    committed = POINTS.index(point) >= POINTS.index("approved")
    assert state == ("approved" if committed else "pending")
    if point == "half_written":
        assert not out.exists() and _release_files(out)  # a partial temporary file only
    if point in ("written", "outcome_recorded"):
        assert out.exists()


def test_kill_after_a_spread_of_delays(prepared: tuple[Path, str], tmp_path: Path) -> None:
    """SIGKILL at arbitrary moments (no pause points): measure one whole run, then kill
    runs at fractions of it."""
    home, out = _case(prepared, tmp_path, "full")
    started = time.monotonic()
    process = _run(home, prepared[1], out)
    assert process.wait(timeout=60) == 0, process.stderr.read().decode()
    whole = time.monotonic() - started
    assert _check(home, prepared[1], out) == "approved" and out.exists()
    states = []
    for n in range(8):
        home, out = _case(prepared, tmp_path, f"delay{n}")
        process = _run(home, prepared[1], out)
        time.sleep(whole * (0.6 + 0.06 * n))  # most of a run is starting Python
        process.send_signal(signal.SIGKILL)
        process.wait()
        states.append(_check(home, prepared[1], out))
    assert set(states) <= {"pending", "approved"}
