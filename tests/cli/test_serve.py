"""``kluis serve`` and the server process behind it (``python -m server``), as real processes:
every app answers on its own loopback port, the trust list the server writes verifies,
settings come from KLUIS_* variables, a port in use is one clear error, Ctrl-C and SIGTERM
stop everything, and two workers serve the same ports."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from cli import service
from vault import KluisError
from verifiers.trustlist import TrustAnchor, verify_trust_list

KLUIS = Path(sys.executable).with_name("kluis")
AGENCY_APPS = {"gemeente-issuer", "belastingdienst-issuer", "duo-issuer"}


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KLUIS_")}
    return {**clean, "KLUIS_LANG": "en", **extra}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_app_answers_and_the_trust_list_verifies(tmp_path: Path) -> None:
    line = service.command(port=0, data_dir=tmp_path)
    with service.running(line, env=_env()) as running:
        assert {"relay", *AGENCY_APPS} <= set(running.apps)
        for name in AGENCY_APPS:
            url = running.url(name)
            metadata = httpx.get(f"{url}/.well-known/openid-credential-issuer").json()
            assert metadata["credential_issuer"] == url  # each app its own origin
        unknown = httpx.get(running.url("relay") + "/nothing-here")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"
        anchor = TrustAnchor.from_jwk(running.anchor_name,
                                      json.loads(running.anchor.read_text()))
        trust = verify_trust_list(running.trust_list.read_text().strip(), anchor,
                                  now=datetime.now(UTC))
        assert len(trust.agencies) >= 3
        assert running.store == f"sqlite:///{tmp_path / 'kluis-server.db'}"
        assert (tmp_path / "kluis-server.db").exists()
    assert not running.alive()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the PostgreSQL server of .ci/run (KLUIS_TEST_POSTGRES)."""
    base = os.environ.get("KLUIS_TEST_POSTGRES", "")
    if not base:
        if os.environ.get("KLUIS_REQUIRE_POSTGRES") == "1":
            pytest.fail("KLUIS_TEST_POSTGRES is not set (KLUIS_REQUIRE_POSTGRES=1)")
        pytest.skip("KLUIS_TEST_POSTGRES is not set; .ci/run starts a server and sets it")
    import psycopg

    schema = f"kluis_serve_{secrets.token_hex(6)}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.postgres
def test_the_services_run_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    line = service.command(port=0, data_dir=tmp_path, db=postgres_url,
                           only=("duo-issuer-admin",))
    with service.running(line, env=_env()) as running:
        # The store is named without its user (or password).
        assert running.store.startswith("postgresql://") and "@" not in running.store
        offer = httpx.post(running.url("duo-issuer-admin") + "/register/anna/offers",
                           json={"configurations": ["diploma"]})
        assert offer.status_code == 201, offer.text
        assert httpx.get(offer.json()["offer_url"]).status_code == 200
    assert not (tmp_path / "kluis-server.db").exists()


def test_settings_come_from_kluis_variables(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(KLUIS_DATA_DIR=str(tmp_path), KLUIS_PORT=str(port))
    with service.running(service.command(only=("relay",)), env=env) as running:
        assert list(running.apps) == ["relay"]
        assert running.url("relay") == f"http://127.0.0.1:{port}"
        assert running.trust_list.parent == tmp_path / "demo-world"


def test_a_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(KluisError) as caught:
            service.start(service.command(port=port, data_dir=tmp_path),
                          env=_env(), stderr=subprocess.DEVNULL)
        assert caught.value.code == "service.not_started"
        assert "server.port_in_use" in caught.value.message("en")
        assert f"Port {port}" in caught.value.message("en")
        result = subprocess.run(
            [str(KLUIS), "serve", "--port", str(port), "--data-dir", str(tmp_path)],
            env=_env(), capture_output=True, timeout=60)
    assert result.returncode == 8
    assert result.stderr.decode().startswith("Error [service.not_started]: ")
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr.decode()


def _start_serve(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(KLUIS), "serve", "--port", "0", "--data-dir", str(tmp_path), *args],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_table(process: subprocess.Popen[bytes]) -> str:
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + 60
    while b"Stop with Ctrl-C." not in seen:
        assert time.monotonic() < deadline and process.poll() is None, seen
        seen += process.stdout.readline()
    return seen.decode()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serve_shows_where_everything_is_and_stops_on_a_signal(
    tmp_path: Path, stop: signal.Signals
) -> None:
    process = _start_serve(tmp_path)
    try:
        shown = _wait_for_table(process)
        urls = [word for word in shown.split() if word.startswith("http://127.0.0.1:")]
        assert len(urls) >= 7
        assert "kluis trust set " in shown and "trustlist.jws --anchor " in shown
        assert "never expose" in shown
        assert httpx.get(urls[0] + "/nothing").status_code == 404
        process.send_signal(stop)
        out_bytes, _ = process.communicate(timeout=30)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
    out = out_bytes.decode()
    assert "The services have stopped." in out
    with pytest.raises(httpx.TransportError):
        httpx.get(urls[0] + "/nothing", timeout=2)


def test_listening_beyond_loopback_is_warned_about(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [str(KLUIS), "serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path)],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_table(process)
        process.send_signal(signal.SIGTERM)
        _, err_bytes = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    err = err_bytes.decode()
    assert "Warning: you asked to listen on 0.0.0.0" in err
    assert "The back offices have no login" in err


def _children(pid: int) -> list[int]:
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat_file.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_services_stop_when_the_command_that_started_them_is_killed(tmp_path: Path) -> None:
    process = _start_serve(tmp_path)
    try:
        _wait_for_table(process)
        servers = _children(process.pid)
        assert len(servers) == 1
        process.kill()  # SIGKILL: kluis serve cannot pass anything on
        process.communicate(timeout=30)
        deadline = time.monotonic() + 15
        while Path(f"/proc/{servers[0]}").exists() and _state(servers[0]) != "Z":
            assert time.monotonic() < deadline, "the services outlived kluis serve"
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    line = service.command(port=0, data_dir=tmp_path, workers=2, only=("relay",))
    running = service.start(line, env=_env())
    try:
        workers = [p for p in _children(running.process.pid)
                   if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2
        running.process.kill()
        deadline = time.monotonic() + 15
        while any(_state(p) not in ("gone", "Z") for p in workers):
            assert time.monotonic() < deadline, "workers outlived their supervisor"
            time.sleep(0.1)
    finally:
        running.stop()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_two_workers_serve_the_same_ports(tmp_path: Path) -> None:
    line = service.command(port=0, data_dir=tmp_path, workers=2, only=("relay",))
    with service.running(line, env=_env()) as running:
        assert running.workers == 2
        workers = [p for p in _children(running.process.pid)
                   if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2
        url = running.url("relay")
        with httpx.Client() as client:
            answers = {client.get(f"{url}/problems/http.no_route").status_code
                       for _ in range(20)}
        assert answers == {200}
    assert not running.alive()
