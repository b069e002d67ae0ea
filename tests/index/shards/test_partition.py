from __future__ import annotations

import pytest

from index.shards.partition import N_PARTITIONS, PartitionMap, partition_of


def test_partition_is_a_stable_hash_not_pythons_salted_one():
    # sha256("21645374")[:8] as a big-endian integer, mod 4096: fixed across processes and machines.
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"21645374").digest()[:8], "big") % N_PARTITIONS
    assert partition_of("21645374") == expected
    assert partition_of("21645374", 7) == int.from_bytes(hashlib.sha256(b"21645374").digest()[:8], "big") % 7


def test_uniform_map_balances_partitions_and_documents():
    pmap = PartitionMap.uniform(3)
    sizes = [len(pmap.partitions_of(s)) for s in range(3)]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == N_PARTITIONS
    ids = [f"PMID{i}" for i in range(30_000)]
    per_shard = [len(p) for p in pmap.split(ids)]
    assert sum(per_shard) == len(ids)
    assert max(per_shard) / min(per_shard) < 1.05


def test_resharding_moves_only_whole_partitions_and_as_few_as_possible():
    old = PartitionMap.uniform(3)
    new = old.resharded(4)
    moved = old.moved(new)
    # Going 3 -> 4 shards, the new shard needs a quarter of the partitions and nothing else has to move.
    assert len(moved) == N_PARTITIONS // 4
    assert all(new.assignment[p] == 3 for p in moved)
    ids = [f"doc-{i}" for i in range(5_000)]
    for doc_id in ids:
        p = partition_of(doc_id)
        assert new.shard_of(doc_id) == (3 if p in set(moved) else old.shard_of(doc_id))
    back = new.resharded(3)
    assert len(new.moved(back)) == N_PARTITIONS // 4


def test_map_round_trips_and_refuses_broken_maps():
    pmap = PartitionMap.uniform(5, n_partitions=64)
    assert PartitionMap.from_json(pmap.to_json()) == pmap
    with pytest.raises(ValueError, match="without a partition"):
        PartitionMap(3, (0, 1, 0, 1))
    with pytest.raises(ValueError, match="outside"):
        PartitionMap(2, (0, 1, 2))
    with pytest.raises(ValueError, match="lists 2 partitions"):
        PartitionMap.from_json({"n_shards": 2, "n_partitions": 3, "assignment": [0, 1]})
