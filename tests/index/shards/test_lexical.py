"""BM25 shards with global statistics rank exactly as one BM25 index; with their own statistics they do not."""

from __future__ import annotations

from index.lexical import LexicalIndex
from index.shards.lexical import CollectionStats, build_global_lexical, shard_stats
from index.shards.partition import PartitionMap


def _merged(shards, positions, query, k):
    hits = [(positions[s][i], score) for s, sh in enumerate(shards) for i, score in sh.search(query, k)]
    return sorted(hits, key=lambda h: (-h[1], h[0]))[:k]


def test_global_statistics_give_the_single_index_top10_bit_for_bit(pubmedqa_documents, pubmedqa_questions):
    texts = [d.text for d in pubmedqa_documents]
    single = LexicalIndex.build(texts)
    positions = PartitionMap.uniform(4).split([d.id for d in pubmedqa_documents])
    stats = CollectionStats.merge(shard_stats([texts[i] for i in pos]) for pos in positions)
    shards = [build_global_lexical([texts[i] for i in pos], stats, 1.2, 0.75) for pos in positions]
    own_idf = [LexicalIndex.build([texts[i] for i in pos]) for pos in positions]
    same_global = same_local = 0
    questions = pubmedqa_questions[:200]
    for q in questions:
        want = single.search(q, 10)
        same_global += _merged(shards, positions, q, 10) == want
        same_local += [i for i, _ in _merged(own_idf, positions, q, 10)] == [i for i, _ in want]
    assert same_global == len(questions)  # ids and float32 scores identical
    assert same_local < len(questions)  # the per-shard statistics this replaces do disagree


def test_stats_round_trip(tmp_path):
    stats = shard_stats(["overall survival was longer", "survival of patients"])
    stats.save(tmp_path / "s.json")
    assert CollectionStats.load(tmp_path / "s.json") == stats
    assert stats.df["surviv"] == 2 and stats.n_chunks == 2
