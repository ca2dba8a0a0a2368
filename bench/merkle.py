"""Merkle tree root over 1,000,000 entries of 200 bytes: kluis's incremental tree against the
two baselines measured in the same run: raw SHA-256 over the same entries (the hashing
limit) and a naive recursive RFC 9162 root (all leaf hashes in a list). Peak memory is
measured in separate passes under tracemalloc, so it does not slow the timed runs.

    .venv/bin/python -m bench.merkle [--entries N] [--repeat R]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from collections.abc import Callable, Iterator
from hashlib import sha256
from itertools import cycle, islice

from verifiers.merkle import (
    MerkleTree,
    check_inclusion,
    hash_leaf,
    prove_inclusion,
)

ENTRY_SIZE = 200
POOL = 4096  # distinct entries, cycled: the hashing work is the same as N distinct ones


def entries(n: int) -> Iterator[bytes]:
    pool = [sha256(i.to_bytes(4, "big")).digest() * 7 for i in range(POOL)]
    pool = [e[:ENTRY_SIZE] for e in pool]
    return islice(cycle(pool), n)


def raw_sha256(n: int) -> bytes:
    last = b""
    for entry in entries(n):
        last = sha256(entry).digest()
    return last


def naive_root(n: int) -> bytes:
    """RFC 9162 §2.1.1 as written: hash every leaf into a list, then recurse on ranges."""
    leaves = [sha256(b"\x00" + e).digest() for e in entries(n)]

    def mth(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return leaves[lo]
        k = 1
        while k * 2 < hi - lo:
            k *= 2
        return sha256(b"\x01" + mth(lo, lo + k) + mth(lo + k, hi)).digest()

    return mth(0, n) if n else sha256(b"").digest()


def tree_extend(n: int) -> bytes:
    tree = MerkleTree()
    tree.extend_entries(entries(n))
    return tree.root()


def tree_append(n: int) -> bytes:
    tree = MerkleTree()
    for entry in entries(n):
        tree.append_entry(entry)
    return tree.root()


def best_time(fn: Callable[[int], bytes], n: int, repeat: int) -> tuple[float, bytes]:
    best, result = float("inf"), b""
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(n)
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_memory(fn: Callable[[int], bytes], n: int) -> int:
    tracemalloc.start()
    fn(n)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, repeat = args.entries, args.repeat

    rows = [
        ("raw SHA-256 of each entry (baseline)", raw_sha256),
        ("naive recursive root, leaf hashes in a list", naive_root),
        ("MerkleTree.extend_entries (streaming)", tree_extend),
        ("MerkleTree.append_entry, one call per entry", tree_append),
    ]
    timed = {name: best_time(fn, n, repeat) for name, fn in rows}
    roots = {timed[name][1] for name, _ in rows[1:]}
    if len(roots) != 1:
        raise SystemExit("the roots differ: the benchmark is broken")
    memory = {name: peak_memory(fn, n) for name, fn in rows}

    raw = timed[rows[0][0]][0]
    naive = timed[rows[1][0]][0]
    print(f"Merkle root over {n:,} entries of {ENTRY_SIZE} bytes (best of {repeat})")
    print()
    print("| run | time (s) | x raw SHA-256 | x naive root | entries/s | peak traced memory |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, _ in rows:
        seconds = timed[name][0]
        print(
            f"| {name} | {seconds:.3f} | {seconds / raw:.2f} | {seconds / naive:.2f} "
            f"| {n / seconds:,.0f} | {memory[name] / 2**20:.2f} MiB |"
        )

    leaves = [hash_leaf(e) for e in entries(n)]
    root = tree_extend(n)
    index = n // 3
    start = time.perf_counter()
    proof = prove_inclusion(index, n, leaves)
    prove_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(1000):
        check_inclusion(index, n, leaves[index], proof, root)
    check_s = (time.perf_counter() - start) / 1000
    print()
    print("| proof over the same tree | time |")
    print("|---|---:|")
    where = f"{n:,} stored leaf hashes (no stored subtrees)"
    print(f"| prove_inclusion from {where} | {prove_s:.3f} s |")
    print(f"| check_inclusion ({len(proof)} hashes) | {check_s * 1e6:.1f} µs |")
    print()
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max RSS (includes the naive list and the proof's leaf list): {max_rss:.0f} MiB")


if __name__ == "__main__":
    main()
