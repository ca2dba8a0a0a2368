"""RFC 6962 / RFC 9162 Merkle trees: the fast tree and proofs against a naive recursive
reference written straight from the RFC, the transparency-dev/merkle vectors, and tampering."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from hashlib import sha256
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers import merkle
from verifiers.merkle import (
    EMPTY_ROOT,
    BadConsistencyProof,
    BadHash,
    BadInclusionProof,
    MerkleTree,
    OutOfRange,
    check_consistency,
    check_inclusion,
    hash_leaf,
    prove_consistency,
    prove_inclusion,
    root_at,
    root_of,
)

# --- the naive reference: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1 as written ---------------------


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(hashes: Sequence[bytes]) -> bytes:
    if not hashes:
        return sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return sha256(b"\x01" + _mth(hashes[:k]) + _mth(hashes[k:])).digest()


def _path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if m < k:
        return _path(m, hashes[:k]) + [_mth(hashes[k:])]
    return _path(m - k, hashes[k:]) + [_mth(hashes[:k])]


def _subproof(m: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if complete else [_mth(hashes)]
    k = _split(n)
    if m <= k:
        return _subproof(m, hashes[:k], complete) + [_mth(hashes[k:])]
    return _subproof(m - k, hashes[k:], False) + [_mth(hashes[:k])]


def _path_shape(m: int, n: int) -> list[bool]:
    """Which side each sibling of PATH(m, D[n]) is on: what an inclusion proof commits to."""
    if n == 1:
        return []
    k = _split(n)
    return _path_shape(m, k) + [False] if m < k else _path_shape(m - k, n - k) + [True]


def _proof_shape(m: int, n: int, complete: bool = True) -> list[str]:
    """The branch SUBPROOF(m, D[n]) takes at each level."""
    if m == n:
        return [] if complete else ["self"]
    k = _split(n)
    if m <= k:
        return _proof_shape(m, k, complete) + ["right"]
    return _proof_shape(m - k, n - k, False) + ["left"]


def _consistency_shape(size1: int, size2: int) -> tuple[bool, list[str]]:
    return size1 & (size1 - 1) == 0, _proof_shape(size1, size2)


LEAVES = [hash_leaf(i.to_bytes(4, "big")) for i in range(320)]
ROOTS = [_mth(LEAVES[:n]) for n in range(len(LEAVES) + 1)]


def _flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- the tree ----------------------------------------------------------------------------------


def test_root_at_every_size_matches_the_naive_tree() -> None:
    tree = MerkleTree()
    assert tree.root() == EMPTY_ROOT == ROOTS[0]
    for size, leaf in enumerate(LEAVES, start=1):
        tree.append(leaf)
        assert tree.size == size
        assert tree.root() == ROOTS[size], size
        assert len(tree.compact_range) == size.bit_count()  # memory stays O(log n)


def test_bulk_paths_agree_with_append() -> None:
    entries = [bytes([i % 256]) * (i % 7) for i in range(300)]
    one, many, hashes = MerkleTree(), MerkleTree(), MerkleTree()
    for entry in entries:
        one.append_entry(entry)
    many.extend_entries(entries)
    hashes.extend(hash_leaf(e) for e in entries)
    assert one.root() == many.root() == hashes.root() == _mth([hash_leaf(e) for e in entries])
    assert root_of(hash_leaf(e) for e in entries) == one.root()


@given(st.integers(0, 300), st.integers(0, 20))
def test_resumed_tree_continues_where_it_stopped(size: int, more: int) -> None:
    first = MerkleTree()
    first.extend(LEAVES[:size])
    resumed = MerkleTree.from_compact_range(first.size, first.compact_range)
    resumed.extend(LEAVES[size : size + more])
    assert resumed.root() == ROOTS[min(size + more, len(LEAVES))]


def test_resume_with_the_wrong_number_of_edge_hashes_is_refused() -> None:
    with pytest.raises(OutOfRange):
        MerkleTree.from_compact_range(3, [LEAVES[0]])
    with pytest.raises(BadHash):
        MerkleTree.from_compact_range(1, [b"short"])


def test_leaf_hash_of_the_wrong_length_is_refused() -> None:
    tree = MerkleTree()
    with pytest.raises(BadHash):
        tree.append(b"\x00" * 31)
    with pytest.raises(BadHash):
        tree.extend([LEAVES[0], b"\x00" * 33])
    assert tree.size == 1  # the good leaf before the bad one stays


def test_record_hash_matches_go_sumdb(vectors: Path) -> None:
    golden = json.loads((vectors / "signed-note/signed_note_vectors.json").read_text())
    record = golden["sumdb_tlog"]["record_hash"]
    assert hash_leaf(record["input_utf8"].encode()) == base64.b64decode(record["hash_b64"])


def test_tree_constants_rebuild_from_the_leaves(vectors: Path) -> None:
    constants = json.loads((vectors / "merkle/tree_constants.json").read_text())
    level = [hash_leaf(bytes.fromhex(x)) for x in constants["leaf_inputs_hex"]]
    for want in constants["node_hashes_hex_by_level"]:
        assert [h.hex() for h in level] == want
        level = [merkle.hash_children(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    leaves = [hash_leaf(bytes.fromhex(x)) for x in constants["leaf_inputs_hex"]]
    tree = MerkleTree()
    got = [tree.root().hex()]
    for leaf in leaves:
        tree.append(leaf)
        got.append(tree.root().hex())
    assert got == constants["root_hashes_hex_by_size"]


# --- proofs against the reference ------------------------------------------------------------


@settings(max_examples=300)
@given(st.data())
def test_inclusion_proofs_match_the_reference_and_verify(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, len(LEAVES)))
    index = data.draw(st.integers(0, size - 1))
    proof = prove_inclusion(index, size, LEAVES)
    assert list(proof) == _path(index, LEAVES[:size])
    check_inclusion(index, size, LEAVES[index], proof, ROOTS[size])


@settings(max_examples=300)
@given(st.data())
def test_consistency_proofs_match_the_reference_and_verify(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(1, len(LEAVES)))
    size1 = data.draw(st.integers(1, size2))
    proof = prove_consistency(size1, size2, LEAVES)
    assert list(proof) == _subproof(size1, LEAVES[:size2], True)
    check_consistency(size1, size2, ROOTS[size1], ROOTS[size2], proof)


@settings(max_examples=300)
@given(st.data())
def test_inclusion_bit_flip_is_rejected(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 200))
    index = data.draw(st.integers(0, size - 1))
    proof = list(prove_inclusion(index, size, LEAVES))
    leaf, root = LEAVES[index], ROOTS[size]
    target = data.draw(st.integers(0, len(proof) + 1))
    bit = data.draw(st.integers(0, 255))
    if target < len(proof):
        proof[target] = _flip(proof[target], bit)
    elif target == len(proof):
        leaf = _flip(leaf, bit)
    else:
        root = _flip(root, bit)
    with pytest.raises(BadInclusionProof):
        check_inclusion(index, size, leaf, proof, root)


@settings(max_examples=300)
@given(st.data())
def test_consistency_bit_flip_is_rejected(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(2, 200))
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = list(prove_consistency(size1, size2, LEAVES))
    root1, root2 = ROOTS[size1], ROOTS[size2]
    target = data.draw(st.integers(0, len(proof) + 1))
    bit = data.draw(st.integers(0, 255))
    if target < len(proof):
        proof[target] = _flip(proof[target], bit)
    elif target == len(proof):
        root1 = _flip(root1, bit)
    else:
        root2 = _flip(root2, bit)
    with pytest.raises(BadConsistencyProof):
        check_consistency(size1, size2, root1, root2, proof)


def _accepts_inclusion(
    index: int, size: int, proof: Sequence[bytes], leaf: bytes, root: bytes
) -> bool:
    try:
        check_inclusion(index, size, leaf, proof, root)
    except BadInclusionProof:
        return False
    return True


def test_inclusion_off_by_one_index_and_size() -> None:
    """A shifted index is always refused. A shifted tree size is refused unless the RFC path
    has the same shape at both sizes (then the proof says the same thing: RFC 9162 proofs do
    not commit to the size beyond the path's shape; the root does)."""
    for size in range(1, 80):
        for index in range(size):
            proof = prove_inclusion(index, size, LEAVES)
            leaf, root = LEAVES[index], ROOTS[size]
            for other in (index - 1, index + 1, index ^ 1):
                if other != index:
                    assert not _accepts_inclusion(other, size, proof, leaf, root), (index, size)
            for other in (size - 1, size + 1, size * 2, size // 2):
                same = 0 <= index < other and _path_shape(index, other) == _path_shape(index, size)
                assert _accepts_inclusion(index, other, proof, leaf, root) == same, (index, size)


def test_consistency_off_by_one_sizes() -> None:
    """A shifted size is refused unless the RFC proof recursion has the same shape."""
    for size2 in range(1, 80):
        for size1 in range(1, size2 + 1):
            proof = prove_consistency(size1, size2, LEAVES)
            for a, b in (
                (size1 - 1, size2),
                (size1 + 1, size2),
                (size1, size2 - 1),
                (size1, size2 + 1),
            ):
                same = 0 < a <= b and _consistency_shape(a, b) == _consistency_shape(size1, size2)
                try:
                    check_consistency(a, b, ROOTS[size1], ROOTS[size2], proof)
                    accepted = True
                except BadConsistencyProof:
                    accepted = False
                assert accepted == same, (size1, size2, a, b)


def test_equal_sizes_need_an_empty_proof() -> None:
    check_consistency(5, 5, ROOTS[5], ROOTS[5], [])
    with pytest.raises(BadConsistencyProof):
        check_consistency(5, 5, ROOTS[5], ROOTS[5], [ROOTS[5]])
    with pytest.raises(BadConsistencyProof):
        check_consistency(5, 5, ROOTS[5], ROOTS[6], [])


@pytest.mark.parametrize(("index", "size"), [(0, 0), (3, 3), (-1, 4)])
def test_inclusion_proof_outside_the_tree_is_not_produced(index: int, size: int) -> None:
    with pytest.raises(OutOfRange):
        prove_inclusion(index, size, LEAVES)


@pytest.mark.parametrize(("size1", "size2"), [(0, 3), (4, 3), (-1, 2)])
def test_consistency_proof_between_bad_sizes_is_not_produced(size1: int, size2: int) -> None:
    with pytest.raises(OutOfRange):
        prove_consistency(size1, size2, LEAVES)


def test_proof_beyond_the_stored_leaves_is_not_produced() -> None:
    with pytest.raises(OutOfRange):
        prove_inclusion(0, 400, LEAVES)
    with pytest.raises(OutOfRange):
        root_at(321, LEAVES)


class _Store:
    """A consent-log-like store: leaf hashes by range, plus the complete subtrees it keeps."""

    def __init__(self, hashes: Sequence[bytes], keep_from_level: int) -> None:
        self.hashes = hashes
        self.keep_from_level = keep_from_level
        self.leaves_read = 0

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        self.leaves_read += max(0, min(end, len(self.hashes)) - start)
        return self.hashes[start:end]

    def subtree_hash(self, level: int, index: int) -> bytes | None:
        if level < self.keep_from_level:
            return None
        return _mth(self.hashes[index << level : (index + 1) << level])


def test_a_store_with_subtree_hashes_gives_the_same_proofs_with_less_reading() -> None:
    store = _Store(LEAVES, keep_from_level=4)
    assert prove_inclusion(200, 300, store) == prove_inclusion(200, 300, LEAVES)
    assert prove_consistency(77, 300, store) == prove_consistency(77, 300, LEAVES)
    assert root_at(300, store) == ROOTS[300]
    assert store.leaves_read < 3 * 16 * 8  # only partial subtrees below level 4 are read


def test_a_stored_subtree_hash_of_the_wrong_length_is_refused() -> None:
    class Broken(_Store):
        def subtree_hash(self, level: int, index: int) -> bytes | None:
            return b"x"

    with pytest.raises(BadHash):
        prove_inclusion(0, 8, Broken(LEAVES, 0))


# --- the published vectors -------------------------------------------------------------------


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def test_transparency_dev_vectors(vectors: Path) -> None:
    """All 196 probes: success exactly when ``wantErr`` is false."""
    base = vectors / "merkle/testdata"
    files = sorted(base.rglob("*.json"))
    wrong = []
    for path in files:
        case = json.loads(path.read_text())
        try:
            if "leafIdx" in case:
                check_inclusion(
                    case["leafIdx"],
                    case["treeSize"],
                    _b64(case["leafHash"]),
                    [_b64(p) for p in case["proof"] or []],
                    _b64(case["root"]),
                )
            else:
                check_consistency(
                    case["size1"],
                    case["size2"],
                    _b64(case["root1"]),
                    _b64(case["root2"]),
                    [_b64(p) for p in case["proof"] or []],
                )
            failed = False
        except (BadInclusionProof, BadConsistencyProof):
            failed = True
        if failed != case["wantErr"]:
            wrong.append(str(path.relative_to(base)))
    assert len(files) == 196
    assert wrong == []


_hashes = st.binary(min_size=0, max_size=40)


@settings(max_examples=300)
@given(
    st.integers(-5, 2**70), st.integers(-5, 2**70), _hashes, st.lists(_hashes, max_size=70), _hashes
)
def test_inclusion_checker_raises_only_its_error_on_junk(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> None:
    try:
        check_inclusion(index, size, leaf, proof, root)
    except BadInclusionProof:
        pass


@settings(max_examples=300)
@given(
    st.integers(-5, 2**70), st.integers(-5, 2**70), _hashes, _hashes, st.lists(_hashes, max_size=70)
)
def test_consistency_checker_raises_only_its_error_on_junk(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> None:
    try:
        check_consistency(size1, size2, root1, root2, proof)
    except BadConsistencyProof:
        pass
