"""RFC 6962 / RFC 9162 §2.1 Merkle trees: hashing, an append-only tree head, and proofs.

The hashing is the one every transparency-log tool shares: a leaf is ``SHA-256(0x00 || entry)``,
an inner node ``SHA-256(0x01 || left || right)``, the empty tree ``SHA-256("")``, and a tree of
``n > 1`` leaves splits at the largest power of two below ``n`` (RFC 9162 §2.1.1).

Two doors:

* ``MerkleTree`` appends leaves and gives the root at any size, holding only the right edge of
  the tree (one hash per set bit of the size, so at most 64 hashes whatever the log's length).
* ``prove_inclusion`` / ``prove_consistency`` build proofs from a ``HashSource`` (a sequence of
  leaf hashes, or a store that returns leaf hashes of a range); ``check_inclusion`` /
  ``check_consistency`` verify them (RFC 9162 §2.1.3.2 and §2.1.4.2) and raise on any mismatch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import Protocol, runtime_checkable

from vault.errors import InvalidInput, VerificationFailed

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()

_LEAF = b"\x00"
_NODE = b"\x01"
# Leaves fetched from a source per call when a subtree is hashed from its leaves: bounds memory.
_CHUNK = 1 << 14


class BadInclusionProof(VerificationFailed):
    code = "merkle.bad_inclusion_proof"
    en = "The proof does not show that this entry is in the log. The log or the entry was changed."
    nl = (
        "Het bewijs laat niet zien dat dit item in het logboek staat. "
        "Het logboek of het item is gewijzigd."
    )


class BadConsistencyProof(VerificationFailed):
    code = "merkle.bad_consistency_proof"
    en = "The newer log does not extend the older one. Entries may have been changed or removed."
    nl = (
        "Het nieuwere logboek is geen voortzetting van het oudere. "
        "Er zijn misschien items gewijzigd of verwijderd."
    )


class OutOfRange(InvalidInput):
    code = "merkle.out_of_range"
    en = "The position or size asked for is outside the log. Check the numbers and try again."
    nl = (
        "De gevraagde positie of grootte valt buiten het logboek. "
        "Controleer de getallen en probeer het opnieuw."
    )


class BadHash(InvalidInput):
    code = "merkle.bad_hash"
    en = "A hash in the log is not 32 bytes long. The stored log is damaged."
    nl = "Een hash in het logboek is geen 32 bytes lang. Het opgeslagen logboek is beschadigd."


def hash_leaf(entry: bytes) -> bytes:
    """The leaf hash ``SHA-256(0x00 || entry)`` (RFC 9162 §2.1.1)."""
    return sha256(_LEAF + entry).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """The inner-node hash ``SHA-256(0x01 || left || right)`` (RFC 9162 §2.1.1)."""
    return sha256(_NODE + left + right).digest()


class MerkleTree:
    """An append-only Merkle tree that keeps only its right edge.

    Invariant: ``_edge[j]`` is the root of the j-th complete subtree, left to right, in the
    binary decomposition of ``size`` (largest first), so ``len(_edge) == size.bit_count()``.
    Appending merges equal-sized neighbours like a binary counter carries: one node hash per
    leaf on average. Memory is O(log size). Proofs need the leaves: see ``prove_inclusion``.
    """

    __slots__ = ("_edge", "_size")

    def __init__(self) -> None:
        self._edge: list[bytes] = []
        self._size = 0

    @classmethod
    def from_compact_range(cls, size: int, hashes: Sequence[bytes]) -> MerkleTree:
        """Resume a tree from a stored ``compact_range`` at ``size``.

        Raises ``merkle.out_of_range`` if the number of hashes does not fit the size, and
        ``merkle.bad_hash`` for a hash that is not 32 bytes.
        """
        if size < 0 or len(hashes) != size.bit_count():
            raise OutOfRange(f"a tree of size {size} has {max(size, 0).bit_count()} edge hashes")
        _require_hashes(hashes)
        tree = cls()
        tree._edge = list(hashes)
        tree._size = size
        return tree

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def compact_range(self) -> tuple[bytes, ...]:
        """The right-edge subtree roots, largest first: what ``from_compact_range`` needs."""
        return tuple(self._edge)

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf by its hash. Raises ``merkle.bad_hash`` if it is not 32 bytes."""
        if len(leaf_hash) != HASH_SIZE:
            raise BadHash("RFC 9162 §2.1.1: SHA-256 hashes are 32 bytes")
        self._push(leaf_hash)

    def append_entry(self, entry: bytes) -> bytes:
        """Append one entry (its leaf hash is computed here) and return that leaf hash."""
        leaf_hash = sha256(_LEAF + entry).digest()
        self._push(leaf_hash)
        return leaf_hash

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaves by their hashes. Raises ``merkle.bad_hash`` for a bad one."""
        edge, size = self._edge, self._size
        push, pop = edge.append, edge.pop
        try:
            for node in leaf_hashes:
                if len(node) != HASH_SIZE:
                    raise BadHash("RFC 9162 §2.1.1: SHA-256 hashes are 32 bytes")
                carry = size
                while carry & 1:
                    node = sha256(_NODE + pop() + node).digest()
                    carry >>= 1
                push(node)
                size += 1
        finally:
            self._size = size

    def extend_entries(self, entries: Iterable[bytes]) -> None:
        """Append many entries, hashing each as a leaf. This is the hot path of a log replay."""
        edge, size = self._edge, self._size
        push, pop = edge.append, edge.pop
        try:
            for entry in entries:
                node = sha256(_LEAF + entry).digest()
                carry = size
                while carry & 1:
                    node = sha256(_NODE + pop() + node).digest()
                    carry >>= 1
                push(node)
                size += 1
        finally:
            self._size = size

    def root(self) -> bytes:
        """The tree head at the current size: ``MTH(D[0:size])`` (RFC 9162 §2.1.1)."""
        if not self._edge:
            return EMPTY_ROOT
        node = self._edge[-1]
        for left in reversed(self._edge[:-1]):
            node = sha256(_NODE + left + node).digest()
        return node

    def _push(self, node: bytes) -> None:
        edge = self._edge
        carry = self._size
        while carry & 1:
            node = sha256(_NODE + edge.pop() + node).digest()
            carry >>= 1
        edge.append(node)
        self._size += 1


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    """``MTH`` over the given leaf hashes (RFC 9162 §2.1.1). Raises ``merkle.bad_hash``."""
    tree = MerkleTree()
    tree.extend(leaf_hashes)
    return tree.root()


# --- producing proofs ---------------------------------------------------------------------


class LeafHashSource(Protocol):
    """Where the producers read stored leaf hashes from (e.g. a table of the consent log)."""

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        """The leaf hashes of leaves ``start`` up to (not including) ``end``, in order."""
        ...


@runtime_checkable
class SubtreeHashSource(Protocol):
    """A source that may also hold the roots of complete subtrees, to avoid rehashing them."""

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        """As ``LeafHashSource.leaf_hashes``."""
        ...

    def subtree_hash(self, level: int, index: int) -> bytes | None:
        """The root over leaves ``[index * 2**level, (index + 1) * 2**level)``, or None."""
        ...


HashSource = LeafHashSource | Sequence[bytes]


class _SequenceSource:
    """Adapts a plain sequence of leaf hashes to ``LeafHashSource``."""

    __slots__ = ("_hashes",)

    def __init__(self, hashes: Sequence[bytes]) -> None:
        self._hashes = hashes

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        return self._hashes[start:end]


def prove_inclusion(index: int, size: int, source: HashSource) -> tuple[bytes, ...]:
    """The audit path ``PATH(index, D[0:size])``, leaf level first (RFC 9162 §2.1.3.1).

    Raises ``merkle.out_of_range`` unless ``0 <= index < size``, and ``merkle.bad_hash`` if the
    source returns too few hashes or one that is not 32 bytes.
    """
    if not 0 <= index < size:
        raise OutOfRange(f"RFC 9162 §2.1.3.1: leaf {index} is not in a tree of size {size}")
    leaves = _as_source(source)
    path: list[bytes] = []
    low, high = 0, size
    while high - low > 1:
        split = low + _largest_power_below(high - low)
        if index < split:
            path.append(_range_hash(leaves, split, high))
            high = split
        else:
            path.append(_range_hash(leaves, low, split))
            low = split
    path.reverse()
    return tuple(path)


def prove_consistency(size1: int, size2: int, source: HashSource) -> tuple[bytes, ...]:
    """The consistency proof ``PROOF(size1, D[0:size2])`` (RFC 9162 §2.1.4.1).

    An empty proof when the sizes are equal. Raises ``merkle.out_of_range`` unless
    ``0 < size1 <= size2`` (a proof from the empty tree proves nothing), and
    ``merkle.bad_hash`` if the source returns too few hashes or a bad one.
    """
    if not 0 < size1 <= size2:
        raise OutOfRange(f"RFC 9162 §2.1.4.1: no proof from size {size1} to size {size2}")
    leaves = _as_source(source)
    path: list[bytes] = []
    low, high, complete = 0, size2, True
    # Walk down SUBPROOF: the old tree is always the prefix [low, size1) of [low, high).
    while size1 != high:
        split = low + _largest_power_below(high - low)
        if size1 <= split:
            path.append(_range_hash(leaves, split, high))
            high = split
        else:
            path.append(_range_hash(leaves, low, split))
            low, complete = split, False
    if not complete:
        path.append(_range_hash(leaves, low, high))
    path.reverse()
    return tuple(path)


def root_at(size: int, source: HashSource) -> bytes:
    """``MTH(D[0:size])`` read from a source. Raises ``merkle.out_of_range`` / ``bad_hash``."""
    if size < 0:
        raise OutOfRange(f"a tree cannot have size {size}")
    return _range_hash(_as_source(source), 0, size) if size else EMPTY_ROOT


def _as_source(source: HashSource) -> LeafHashSource:
    if isinstance(source, Sequence):
        return _SequenceSource(source)
    return source


def _largest_power_below(n: int) -> int:
    """The largest power of two strictly less than ``n`` (n > 1): the RFC 9162 split point."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_hash(source: LeafHashSource, start: int, end: int) -> bytes:
    """``MTH(D[start:end])`` where ``start`` is a multiple of the largest subtree in the range.

    That holds for every range the proofs ask for, so the range splits into complete
    subtrees, largest first, whose roots fold from the right.
    """
    roots: list[bytes] = []
    offset = start
    for level in range((end - start).bit_length() - 1, -1, -1):
        if (end - start) >> level & 1:
            roots.append(_subtree_hash(source, level, offset >> level))
            offset += 1 << level
    node = roots.pop()
    while roots:
        node = sha256(_NODE + roots.pop() + node).digest()
    return node


def _subtree_hash(source: LeafHashSource, level: int, index: int) -> bytes:
    if isinstance(source, SubtreeHashSource):
        stored = source.subtree_hash(level, index)
        if stored is not None:
            _require_hashes((stored,))
            return stored
    start, end = index << level, (index + 1) << level
    tree = MerkleTree()
    for chunk_start in range(start, end, _CHUNK):
        chunk_end = min(chunk_start + _CHUNK, end)
        hashes = source.leaf_hashes(chunk_start, chunk_end)
        if len(hashes) != chunk_end - chunk_start:
            raise OutOfRange(f"the log holds fewer than {chunk_end} leaves")
        tree.extend(hashes)
    return tree.root()


def _require_hashes(hashes: Iterable[bytes]) -> None:
    for node in hashes:
        if len(node) != HASH_SIZE:
            raise BadHash("RFC 9162 §2.1.1: SHA-256 hashes are 32 bytes")


# --- checking proofs ----------------------------------------------------------------------


def check_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Verify that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with head ``root``.

    RFC 9162 §2.1.3.2. Returns nothing; raises ``merkle.bad_inclusion_proof`` on any mismatch,
    including an index outside the tree and any hash that is not 32 bytes.
    """
    if not 0 <= index < size:
        raise BadInclusionProof(f"RFC 9162 §2.1.3.2 step 1: index {index} >= tree size {size}")
    if not _all_hash_sized((leaf_hash, root, *proof)):
        raise BadInclusionProof("RFC 9162 §2.1.1: every hash is 32 bytes")
    node, fn, sn = leaf_hash, index, size - 1
    for sibling in proof:
        if sn == 0:
            raise BadInclusionProof("RFC 9162 §2.1.3.2 step 5.1: the proof is too long")
        if fn & 1 or fn == sn:
            node = sha256(_NODE + sibling + node).digest()
            # A right-edge node with no right sibling: climb until it is a right child.
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            node = sha256(_NODE + node + sibling).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise BadInclusionProof("RFC 9162 §2.1.3.2 step 6: the proof is too short")
    if node != root:
        raise BadInclusionProof("RFC 9162 §2.1.3.2 step 6: the computed root differs")


def check_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Verify that the tree ``(size2, root2)`` extends the tree ``(size1, root1)``.

    RFC 9162 §2.1.4.2. Returns nothing; raises ``merkle.bad_consistency_proof`` on any
    mismatch. Like transparency-dev/merkle, a proof from the empty tree (``size1 == 0``) is
    refused: it would prove nothing.
    """
    if not 0 < size1 <= size2:
        raise BadConsistencyProof(f"RFC 9162 §2.1.4.2: no proof from size {size1} to {size2}")
    if size1 == size2:
        # Nothing to hash: the trees are the same tree (transparency-dev compares the roots as
        # given, whatever their length, and its vectors expect that).
        if proof or root1 != root2:
            raise BadConsistencyProof("RFC 9162 §2.1.4.2: equal sizes need equal roots, no proof")
        return
    if not _all_hash_sized((root1, root2, *proof)):
        raise BadConsistencyProof("RFC 9162 §2.1.1: every hash is 32 bytes")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # step 2: a complete old tree is its own first node
        path.insert(0, root1)
    if not path:
        raise BadConsistencyProof("RFC 9162 §2.1.4.2 step 1: the proof is empty")
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    old = new = path[0]
    for node in path[1:]:
        if sn == 0:
            raise BadConsistencyProof("RFC 9162 §2.1.4.2 step 6.1: the proof is too long")
        if fn & 1 or fn == sn:
            old = sha256(_NODE + node + old).digest()
            new = sha256(_NODE + node + new).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            new = sha256(_NODE + new + node).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise BadConsistencyProof("RFC 9162 §2.1.4.2 step 7: the proof is too short")
    if old != root1 or new != root2:
        raise BadConsistencyProof("RFC 9162 §2.1.4.2 step 7: a computed root differs")


def _all_hash_sized(hashes: Iterable[bytes]) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)
