"""Which shard owns a document: a stable hash of its id picks one of a fixed number of virtual partitions,
and a partition map assigns partitions to shards.

The hash is SHA-256 of the UTF-8 id (Python's `hash()` is salted per process and would move documents between
runs). Re-sharding reassigns whole partitions, so a document's chunks never split and a move is a set of
partition files, not a re-hash of the corpus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

# 4,096 partitions: PubMed's ~36M citations give ~9k documents (~40k chunks) a partition, fine-grained enough to
# balance shards within 1% (the largest of 4,096 equal parts is 1/4,096 of the corpus) and to grow to
# hundreds of shards, while the map stays a 4,096-entry list in the manifest.
N_PARTITIONS = 4096


def partition_of(doc_id: str, n_partitions: int = N_PARTITIONS) -> int:
    """The virtual partition of `doc_id`: the first 8 bytes of its SHA-256, modulo `n_partitions`."""
    digest = hashlib.sha256(doc_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n_partitions


@dataclass(frozen=True, slots=True)
class PartitionMap:
    """`assignment[p]` is the shard that owns partition `p`."""

    n_shards: int
    assignment: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.n_shards < 1:
            raise ValueError(f"a partition map needs at least one shard, got {self.n_shards}")
        if not self.assignment:
            raise ValueError("a partition map needs at least one partition")
        bad = sorted({s for s in self.assignment if not 0 <= s < self.n_shards})
        if bad:
            raise ValueError(f"partition map names shards {bad} outside 0..{self.n_shards - 1}")
        empty = sorted(set(range(self.n_shards)) - set(self.assignment))
        if empty:
            raise ValueError(f"partition map leaves shards {empty} without a partition")

    @classmethod
    def uniform(cls, n_shards: int, n_partitions: int = N_PARTITIONS) -> PartitionMap:
        """Partition p on shard p mod n: every shard gets n_partitions / n_shards partitions (+-1)."""
        if n_shards > n_partitions:
            raise ValueError(f"{n_shards} shards need at least as many partitions, there are {n_partitions}")
        return cls(n_shards, tuple(p % n_shards for p in range(n_partitions)))

    @property
    def n_partitions(self) -> int:
        return len(self.assignment)

    def shard_of(self, doc_id: str) -> int:
        return self.assignment[partition_of(doc_id, self.n_partitions)]

    def partitions_of(self, shard: int) -> list[int]:
        return [p for p, s in enumerate(self.assignment) if s == shard]

    def resharded(self, n_shards: int) -> PartitionMap:
        """A map onto `n_shards` that moves as few partitions as possible: each shard keeps up to its fair share
        (ceil or floor of partitions / shards) of the partitions it has, and only the surplus moves."""
        n_parts = self.n_partitions
        if n_shards > n_parts:
            raise ValueError(f"{n_shards} shards need at least as many partitions, there are {n_parts}")
        base, extra = divmod(n_parts, n_shards)
        quota = [base + (1 if s < extra else 0) for s in range(n_shards)]
        new: list[int | None] = [None] * n_parts
        load = [0] * n_shards
        for p, s in enumerate(self.assignment):
            if s < n_shards and load[s] < quota[s]:
                new[p] = s
                load[s] += 1
        free = iter(s for s in range(n_shards) for _ in range(quota[s] - load[s]))
        return PartitionMap(n_shards, tuple(s if s is not None else next(free) for s in new))

    def moved(self, other: PartitionMap) -> list[int]:
        """Partitions whose shard differs between this map and `other`."""
        if other.n_partitions != self.n_partitions:
            raise ValueError("maps with different partition counts cannot be compared")
        return [p for p, (a, b) in enumerate(zip(self.assignment, other.assignment, strict=True)) if a != b]

    def split(self, doc_ids: Sequence[str]) -> list[list[int]]:
        """Positions of `doc_ids` per shard, each list in the order given."""
        out: list[list[int]] = [[] for _ in range(self.n_shards)]
        for i, doc_id in enumerate(doc_ids):
            out[self.shard_of(doc_id)].append(i)
        return out

    def to_json(self) -> dict[str, object]:
        return {"n_shards": self.n_shards, "n_partitions": self.n_partitions, "assignment": list(self.assignment)}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> PartitionMap:
        assignment = tuple(int(s) for s in obj["assignment"])  # type: ignore[union-attr]
        if len(assignment) != obj.get("n_partitions"):
            raise ValueError(f"partition map lists {len(assignment)} partitions, says {obj.get('n_partitions')}")
        return cls(int(obj["n_shards"]), assignment)  # type: ignore[arg-type]
