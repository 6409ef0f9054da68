# SPDX-License-Identifier: Apache-2.0
"""RFC 6962 / RFC 9162 Merkle tree hashing and the compact range that verifies a log's root.

A monitor never asks the log for a consistency proof: it keeps the roots of the perfect subtrees
that make up ``[0, size)`` (at most 64 hashes), appends the hash of every entry it fetches, and
compares the root it computes with the signed one (certspotter's collapsed tree). A log that
rewrites history cannot produce both the old verified range and a new signed root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: The root of the empty tree (RFC 9162 2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """``SHA-256(0x00 || MerkleTreeLeaf)``: the domain-separated hash of one entry."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree_root(hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of a list of leaf (or subtree) hashes, split at the largest power of
    two below the length as RFC 6962 2.1 says."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(tree_root(hashes[:k]), tree_root(hashes[k:]))


@dataclass
class CompactRange:
    """The subtree roots covering ``[0, size)``, largest (leftmost) first.

    ``hashes[i]`` covers a perfect subtree whose size is the i-th set bit of ``size`` from the top,
    so the list always has ``size.bit_count()`` entries.
    """

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def append(self, leaf_hash: bytes) -> None:
        """Adds the next leaf, merging equal-sized subtrees as a binary counter carries."""
        self.extend((leaf_hash,))

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Adds leaves in order: each merges with as many subtrees on its left as the new size
        has trailing zero bits (the hot loop of a catch-up run, hence the local names)."""
        hashes, size, sha256 = self.hashes, self.size, hashlib.sha256
        for h in leaf_hashes:
            size += 1
            carry = size
            while not carry & 1:
                h = sha256(b"\x01" + hashes.pop() + h).digest()
                carry >>= 1
            hashes.append(h)
        self.size = size

    def root(self) -> bytes:
        """The Merkle Tree Hash of ``[0, size)``: fold the subtree roots from the right."""
        if not self.hashes:
            return EMPTY_ROOT
        root = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            root = node_hash(h, root)
        return root

    def copy(self) -> CompactRange:
        return CompactRange(self.size, list(self.hashes))

    def to_json(self) -> dict[str, object]:
        return {"size": self.size, "hashes": [h.hex() for h in self.hashes]}

    @classmethod
    def from_json(cls, value: dict[str, object]) -> CompactRange:
        size = int(value["size"])  # type: ignore[call-overload]
        hashes = [bytes.fromhex(h) for h in value["hashes"]]  # type: ignore[attr-defined]
        if len(hashes) != size.bit_count() or any(len(h) != 32 for h in hashes):
            raise ValueError(f"compact range of size {size} has {len(hashes)} hashes")
        return cls(size, hashes)

    @classmethod
    def from_last_leaf_proof(
        cls, size: int, last_leaf_hash: bytes, audit_path: Sequence[bytes]
    ) -> CompactRange:
        """The range of ``[0, size)`` from the inclusion proof of leaf ``size - 1``.

        The audit path of a tree's last leaf is exactly the compact range of ``[0, size - 1)``,
        right to left (RFC 6962 2.1.1, PATH(m, D[n]) with m = n - 1), so appending the leaf gives
        the whole range; the caller then compares its root with the signed one.
        """
        prefix = size - 1
        if len(audit_path) != prefix.bit_count():
            raise ValueError(
                f"an audit path for leaf {prefix} of {size} has {prefix.bit_count()} hashes, "
                f"got {len(audit_path)}"
            )
        rng = cls(prefix, list(reversed(audit_path)))
        rng.append(last_leaf_hash)
        return rng


def subtrees(size: int) -> list[tuple[int, int]]:
    """``(start, length)`` of the perfect subtrees covering ``[0, size)``, left first."""
    out, start = [], 0
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            out.append((start, 1 << bit))
            start += 1 << bit
    return out
