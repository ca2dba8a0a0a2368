"""Benchmark of the consent log: appends into the vault, and `audit verify` / `audit replay`
of a large export, beside the hashing limit measured in the same run.

    .venv/bin/python -m bench.audit            # 1,000,000 entries (about a minute)
    .venv/bin/python -m bench.audit --entries 100000

What is measured (issue 4 item 9):

- append: committed entries per second into a real (SQLCipher) vault, in batches, through
  ``ConsentLog.append`` (RFC 8785 bytes, leaf hashes, one signed checkpoint per batch);
- verify and replay of one export of N entries in a realistic mix (requests, approvals with
  commitments, presentations, receipts with their tokens, item events), each in its own
  process so its peak RSS is its own, at N/10 and N entries to show memory stays flat;
- baselines over the same lines, in this process: SHA-256 of each line, and the bare RFC 6962
  root (``MerkleTree.extend_entries`` over the lines in memory).

Goals: verify <= 1.5x the bare root; replay <= 5x; appends >= 20k entries/s; peak < 300 MB.
Ratios are of CPU seconds (each measured as the best of two runs), so other work on a shared
machine does not skew them; wall seconds are printed beside. Peak memory is the child
process's high-water RSS (VmHWM), interpreter and imports included.

The receipt tokens in the generated export are random text of a real token's length: the
replay binds tokens by hash and does not check agency signatures, so their content does not
change its cost.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vault import KdfParams, create_profile
from verifiers import log_entry as le
from verifiers.checkpoint import Checkpoint, sign_checkpoint
from verifiers.disclosure import digest_of
from verifiers.merkle import MerkleTree
from verifiers.note import Signer, format_verifier_key
from verifiers.tlog import Record, canonical_json
from wallet.wallet import SCHEMAS, open_wallet

UTRECHT = {"id": "https://utrecht.kluis.example",
           "name": {"nl": "Gemeente Utrecht", "en": "Municipality of Utrecht"}}
INCOME = "https://kluis.example/vct/income-statement"
START = datetime(2027, 1, 1, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _commitment() -> str:
    return digest_of(secrets.token_urlsafe(24))


def _cycle(n: int, seq: int, moment: datetime) -> list[tuple[dict[str, object], str | None]]:
    """One release and the vault activity around it: ten entries, as a wallet writes them."""
    rid = f"req-{n:08d}"
    hash_ = base64.urlsafe_b64encode(hashlib.sha256(rid.encode()).digest()).decode()[:43]
    receipt_id = base64.urlsafe_b64encode(
        hashlib.sha256(b"r" + rid.encode()).digest()).decode()[:22]
    token = secrets.token_urlsafe(600)
    claim = {"vct": INCOME, "path": ["income_bracket"]}
    bodies: list[tuple[dict[str, object], str | None]] = [
        ({"kind": "request_received", "request": rid, "verifier": UTRECHT, "registered": True,
          "purpose": {"id": "wmo-household-help", "dpv": "dpv:ServiceProvision"},
          "legal_basis": {"nl": "Wmo 2015 art. 2.3.2", "en": "Wmo 2015 art. 2.3.2"},
          "retention": {"duration": "P2Y"}, "processing_activity": "utrecht-va-0042",
          "expires_at": _stamp(moment + timedelta(days=1)), "claims": [claim]}, None),
        ({"kind": "request_approved", "request": rid, "verifier": {"id": UTRECHT["id"]},
          "credentials": [{"credential": "cred-income", "vct": INCOME, "claims": [
              {"path": ["income_bracket"], "commitment": _commitment()}]}]}, None),
        ({"kind": "presentation_sent", "request": rid, "verifier": {"id": UTRECHT["id"]},
          "outcome": "sent", "presentations": [{"credential": "cred-income", "vct": INCOME,
                                                "hash": hash_,
                                                "claims": [["income_bracket"]]}]}, None),
        ({"kind": "receipt_received", "request": rid, "receipt_id": receipt_id,
          "receipt_hash": base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest())
          .decode().rstrip("="),
          "receipt": {"receipt_id": receipt_id, "verifier": UTRECHT["id"], "request_id": rid,
                      "presentation_hash": hash_, "vct": INCOME,
                      "claims": [["income_bracket"]], "received_at": _stamp(moment)}}, token),
    ]
    for i in range(6):
        kind = ("item_added", "item_changed", "item_changed", "item_removed")[i % 4]
        bodies.append(({"kind": kind, "item": {"name": f"note-{n}-{i}", "type": "note",
                                               "size": 120 + i, "commitment": _commitment()}},
                       None))
    out = []
    for offset, (body, token_) in enumerate(bodies):
        out.append(({**body, "v": 1, "seq": seq + offset, "time": _stamp(moment)}, token_))
    return out


def generate(folder: Path, entries: int) -> tuple[int, float]:
    """Write an export of ``entries`` entries to ``folder``; (bytes of entries, seconds)."""
    began = time.perf_counter()
    signer = Signer.generate("kluis.local/log/bench")
    tree = MerkleTree()
    folder.mkdir()
    (folder / "checkpoints").mkdir()
    (folder / "trustlists").mkdir()
    size = 0
    with (folder / "entries.jsonl").open("wb") as out, \
            (folder / "receipts.jsonl").open("wb") as receipts:
        seq, n, moment = 0, 0, START
        while seq < entries:
            for obj, token in _cycle(n, seq, moment):
                if seq >= entries:
                    break
                line = canonical_json(obj)
                tree.append_entry(line)
                out.write(line + b"\n")
                size += len(line)
                if token is not None:
                    row = {"receipt_id": obj["receipt_id"], "seq": seq, "token": token}
                    receipts.write(canonical_json(row) + b"\n")
                seq += 1
            n += 1
            moment += timedelta(minutes=7)
    checkpoint = Checkpoint(signer.name, tree.size, tree.root())
    (folder / "checkpoint").write_text(sign_checkpoint(checkpoint, signer))
    (folder / "log.vkey").write_text(format_verifier_key(signer.verifier_key) + "\n")
    return size, time.perf_counter() - began


def baselines(folder: Path) -> tuple[float, float, float, int]:
    """CPU seconds of SHA-256 over each line and of the bare RFC 6962 root over the lines
    held in memory (best of three), the root's wall seconds, and the line count."""
    lines = (folder / "entries.jsonl").read_bytes().split(b"\n")[:-1]
    sha = hashlib.sha256
    plain = root = wall = float("inf")
    for _ in range(3):
        began = time.process_time()
        for line in lines:
            sha(line).digest()
        plain = min(plain, time.process_time() - began)
        began, clock = time.process_time(), time.perf_counter()
        tree = MerkleTree()
        tree.extend_entries(lines)
        tree.root()
        root = min(root, time.process_time() - began)
        wall = min(wall, time.perf_counter() - clock)
    return plain, root, wall, len(lines)


_CHILD = """
import json, sys, time
from pathlib import Path
from verifiers.audit_export import verify_export
from verifiers.replay import replay_export
wall = time.perf_counter()
cpu = time.process_time()
if sys.argv[1] == "verify":
    verify_export(Path(sys.argv[2]))
else:
    report = replay_export(Path(sys.argv[2]))
    assert report.clean, report.findings[:3]
status = Path("/proc/self/status").read_text()
peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
print(json.dumps({"seconds": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "rss_mb": peak / 1024}))
"""


def measure(command: str, folder: Path, runs: int = 2) -> dict[str, float]:
    """Run ``audit verify`` or ``replay`` on ``folder`` in a fresh process; the best run."""
    best: dict[str, float] = {}
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, command, str(folder)],
            capture_output=True, text=True, check=True,
        )
        measured: dict[str, float] = json.loads(result.stdout)
        if not best or measured["cpu"] < best["cpu"]:
            best = measured
    return best


def append_rate(folder: Path, entries: int, batch: int) -> float:
    """Committed entries per second into a real vault, ``batch`` entries per append."""
    create_profile(folder / "profile", "bench passphrase", schemas=SCHEMAS,
                   _kdf=KdfParams(opslimit=1, memlimit=8192))
    party = le.Party("https://utrecht.kluis.example", "Gemeente Utrecht",
                     "Municipality of Utrecht")
    records: list[Record] = []
    for i in range(batch):
        if i % 2:
            records.append(le.request_refused(f"req-{i}", party))
        else:
            records.append(le.item_event(le.Kind.ITEM_CHANGED, f"note-{i}", "note", None, 120,
                                         "ab" * 32))
    with open_wallet(folder / "profile", "bench passphrase") as wallet:
        began = time.perf_counter()
        done = 0
        now = START
        while done < entries:
            wallet.log.append(records, now=now)
            done += batch
            now += timedelta(seconds=1)
        seconds = time.perf_counter() - began
        wallet.log.check()
    return done / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kluis-bench-") as scratch:
        work = Path(scratch)
        rate = append_rate(work, args.appends, args.batch)
        rows = []
        for n in sorted({max(args.entries // 10, 10), args.entries}):
            folder = work / f"export-{n}"
            size, _ = generate(folder, n)
            verify = measure("verify", folder)
            replay = measure("replay", folder)
            plain, root, root_wall, count = baselines(folder)
            rows.append((n, size / count, plain, root, root_wall, verify, replay))
            shutil.rmtree(folder)
    print(f"append: {rate:,.0f} committed entries/s (batches of {args.batch}, "
          f"{args.appends:,} entries, SQLCipher vault)  goal >= 20,000")
    print()
    header = (f"{'entries':>9} {'avg B':>5} | {'sha256/line':>11} {'bare root':>9} | "
              f"{'verify':>6} {'(wall)':>6} {'x root':>6} {'peak MB':>7} | "
              f"{'replay':>6} {'(wall)':>6} {'x root':>6} {'peak MB':>7}")
    print(header)
    print("-" * len(header))
    for n, avg, plain, root, _root_wall, verify, replay in rows:
        print(f"{n:>9,} {avg:>5.0f} | {plain:>10.2f}s {root:>8.2f}s | "
              f"{verify['cpu']:>5.2f}s {verify['seconds']:>5.2f}s {verify['cpu'] / root:>5.2f}x "
              f"{verify['rss_mb']:>7.0f} | {replay['cpu']:>5.2f}s {replay['seconds']:>5.2f}s "
              f"{replay['cpu'] / root:>5.2f}x {replay['rss_mb']:>7.0f}")
    print()
    print("CPU seconds (wall in brackets); x root = CPU time / bare root CPU time.")
    print("goals: verify <= 1.50x root, replay <= 5.00x root, peak < 300 MB at any size")


if __name__ == "__main__":
    main()
