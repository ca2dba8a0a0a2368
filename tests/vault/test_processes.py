"""Real processes: a writer killed with SIGKILL mid-batch leaves exactly its last committed
state, and a second process opening a busy profile waits, then gets vault.busy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vault import Busy, Schema, open_vault

ROOT = Path(__file__).resolve().parents[2]
BATCH = 20

# The writer records each batch number in its own table inside the batch's transaction, so
# the vault itself says which batch committed last.
PROGRESS = Schema("crashtest", ("CREATE TABLE crashtest_batch (n INTEGER PRIMARY KEY)",))

WRITER = textwrap.dedent(
    """
    import io, sys
    from pathlib import Path
    from vault import Schema, open_vault
    progress = Schema("crashtest", ("CREATE TABLE crashtest_batch (n INTEGER PRIMARY KEY)",))
    with open_vault(Path(sys.argv[1]), sys.argv[2], schemas=[progress]) as vault:
        print("open", flush=True)
        n = 0
        while True:
            with vault.transaction() as tx:
                for i in range({batch}):
                    vault.put_attribute(f"b{{n}}-{{i}}", "v" * 200, source="writer")
                content = io.BytesIO(bytes([n % 256]) * 300_000)
                vault.put_document(f"b{{n}}-doc", content, source="writer")
                tx.execute("INSERT INTO crashtest_batch (n) VALUES (?)", (n,))
            print(n, flush=True)
            n += 1
    """
).format(batch=BATCH)

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from vault import open_vault
    with open_vault(Path(sys.argv[1]), sys.argv[2]):
        print("open", flush=True)
        sys.stdin.readline()
    """
)


def _spawn(code: str, profile: Path, passphrase: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code, str(profile), passphrase],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("kill_after", [0, 3, 7])
def test_sigkill_mid_batch_leaves_the_last_committed_state(
    profile: Path, passphrase: str, kill_after: int
) -> None:
    writer = _spawn(WRITER, profile, passphrase)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "open"
    reported = -1
    while reported < kill_after:
        reported = int(writer.stdout.readline())
    os.kill(writer.pid, signal.SIGKILL)  # the writer is busy with the next batch by now
    writer.wait(timeout=10)

    with open_vault(profile, passphrase, schemas=[PROGRESS]) as vault:
        assert vault.check_integrity() == []
        (last,) = vault.reader().query_one("SELECT max(n) FROM crashtest_batch") or (None,)
        # The kill may land between a commit and its report line, never inside a commit.
        assert last in (reported, reported + 1)
        names = {info.name for info in vault.items()}
        expected = {f"b{n}-{i}" for n in range(last + 1) for i in range(BATCH)}
        expected |= {f"b{n}-doc" for n in range(last + 1)}
        assert names == expected
        assert b"".join(vault.read_document(f"b{last}-doc")) == bytes([last % 256]) * 300_000


def test_second_process_waits_then_gets_busy(profile: Path, passphrase: str) -> None:
    holder = _spawn(HOLDER, profile, passphrase)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(Busy):
            open_vault(profile, passphrase, busy_timeout=0.3)
        with pytest.raises(Busy):
            open_vault(profile, passphrase, busy_timeout=0)
    finally:
        holder.stdin.write("done\n")
        holder.stdin.flush()
        holder.wait(timeout=10)
    assert holder.returncode == 0
    with open_vault(profile, passphrase, busy_timeout=0) as vault:  # nothing left broken
        assert vault.check_integrity() == []


def test_waiting_opener_gets_in_when_the_other_closes(profile: Path, passphrase: str) -> None:
    holder = _spawn(HOLDER, profile, passphrase)
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "open"
    holder.stdin.write("done\n")
    holder.stdin.flush()  # the holder closes while we wait
    with open_vault(profile, passphrase, busy_timeout=10) as vault:
        assert vault.count() == 0
    holder.wait(timeout=10)
