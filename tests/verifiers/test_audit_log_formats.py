"""specs/audit-log-formats.md: its worked example is recomputed, re-signed and verified, so
the page cannot drift from the code."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from verifiers.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from verifiers.merkle import MerkleTree, check_consistency, check_inclusion, hash_leaf
from verifiers.note import Signer, format_verifier_key, parse_verifier_key

PAGE = Path(__file__).resolve().parents[2] / "specs" / "audit-log-formats.md"
ORIGIN = "vault.example/audit"
# The page's documented test key: not a secret, and never used for a real log.
SEED = hashlib.sha256(b"kluis example key, not secret: " + ORIGIN.encode()).digest()


def _examples() -> dict[str, str]:
    """The fenced block after each ``<!-- example: NAME -->`` marker, by NAME."""
    blocks = re.findall(r"<!-- example: ([a-z-]+) -->\n```[a-z]*\n(.*?)```", PAGE.read_text(), re.S)
    return dict(blocks)


@pytest.fixture(scope="module")
def example() -> dict[str, str]:
    found = _examples()
    assert set(found) == {
        "entries",
        "leaf-hashes",
        "root",
        "vkey",
        "checkpoint",
        "inclusion",
        "consistency",
    }
    return found


def _signer() -> Signer:
    return Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(SEED))


def test_leaf_hashes_and_root(example: dict[str, str]) -> None:
    entries = [line.encode() for line in example["entries"].splitlines()]
    assert [hash_leaf(e).hex() for e in entries] == example["leaf-hashes"].split()
    tree = MerkleTree()
    tree.extend_entries(entries)
    assert tree.root().hex() == example["root"].strip()


def test_checkpoint_verifies_with_the_pages_key(example: dict[str, str]) -> None:
    vkey = parse_verifier_key(example["vkey"].strip())
    checkpoint = verify_checkpoint(example["checkpoint"], vkey, origin=ORIGIN)
    assert checkpoint.size == len(example["entries"].splitlines())
    assert checkpoint.root_hash.hex() == example["root"].strip()


def test_checkpoint_and_key_are_what_our_code_produces(example: dict[str, str]) -> None:
    signer = _signer()
    assert format_verifier_key(signer.verifier_key) == example["vkey"].strip()
    root = bytes.fromhex(example["root"].strip())
    assert sign_checkpoint(Checkpoint(ORIGIN, 3, root), signer) == example["checkpoint"]


def test_proofs_verify(example: dict[str, str]) -> None:
    leaves = [hash_leaf(line.encode()) for line in example["entries"].splitlines()]
    root = bytes.fromhex(example["root"].strip())
    inclusion = json.loads(example["inclusion"])
    proof = [base64.b64decode(p) for p in inclusion["proof"]]
    check_inclusion(inclusion["index"], inclusion["size"], leaves[inclusion["index"]], proof, root)
    consistency = json.loads(example["consistency"])
    root1 = base64.b64decode(consistency["root1"])
    tree = MerkleTree()
    tree.extend(leaves[: consistency["size1"]])
    assert tree.root() == root1
    proof = [base64.b64decode(p) for p in consistency["proof"]]
    check_consistency(consistency["size1"], consistency["size2"], root1, root, proof)
