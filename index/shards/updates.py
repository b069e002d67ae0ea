"""PubMed update files applied to a sharded index: new and revised citations upserted, `DeleteCitation`s
removed, each change on the shard that owns the document only.

A daily update file is a `PubmedArticleSet` of `PubmedArticle`s (new citations, and revisions of existing ones
under the same PMID) followed by one `DeleteCitation` list of PMIDs. Applying it:

1. reads it with the single-node PubMed reader (`index.ingest.load_corpus`) plus the `DeleteCitation` list;
2. sorts the changes by owning shard (`PartitionMap.shard_of`); a revision identical to what is indexed changes
   nothing, so it is not re-embedded;
3. rewrites the owning shards only (their kept chunks keep their exact vectors; new and revised ones are
   chunked and embedded), links every other shard's files unchanged into the new version, and updates the BM25
   collection statistics by the change; shards not touched keep scores from the statistics they were built
   with until `refresh_statistics` rescores them (no embedding: a few seconds a shard), after which the BM25
   side again ranks exactly as a single index of the updated corpus;
4. records the file (name and SHA-256) in the manifest and publishes the version atomically, only if CURRENT
   still names the version it started from.

Applying a file already recorded changes nothing; a file older (by name) than the last one applied is refused,
since PubMed's updates only make sense in order. Deletes of PMIDs the index does not hold are counted, not
errors (an index may hold a subset of PubMed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from defusedxml import ElementTree as SafeET

from index.chunking import Chunker
from index.documents import Chunk, Document
from index.errors import CorpusError, QAError
from index.ingest import CorpusFormat, InvalidRecordPolicy, corpus_fingerprint
from index.manifest import CorpusInfo
from index.shards.layout import (
    QUANTIZER_NAME,
    AppliedUpdate,
    ShardData,
    ShardedManifest,
    finish_version,
    link_shard,
    new_temp_version,
    now_utc,
    read_shard_content,
    read_sharded_manifest,
    shard_vectors,
    shared_digests,
    write_shard,
)
from index.shards.lexical import STATS_NAME, CollectionStats, shard_stats
from index.store import VERSIONS_DIR, IndexConfig, embedding_text, publish_version


class UpdateFileError(QAError, ValueError):
    """An update file cannot be applied (unreadable, out of order, or reissued with other content)."""


@dataclass(frozen=True, slots=True)
class UpdateFile:
    name: str
    sha256: str
    upserts: list[Document]
    deletes: list[str]


@dataclass(slots=True)
class UpdateOutcome:
    name: str
    applied: bool  # False: the file was applied before, nothing changed
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    absent_deletes: list[str] = field(default_factory=list)
    shards: list[int] = field(default_factory=list)
    version: Path | None = None


def read_update_file(path: Path, on_invalid: InvalidRecordPolicy = InvalidRecordPolicy.RAISE) -> UpdateFile:
    """A PubMed update file's citations and `DeleteCitation` PMIDs (a `.gz` is read unpacked)."""
    from index.shards.build import read_corpus_file

    path = Path(path)
    raw = path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if path.name.lower().endswith(".gz"):
        import gzip

        raw = gzip.decompress(raw)
    try:
        root = SafeET.fromstring(raw)
    except Exception as err:
        raise UpdateFileError(f"{path}: not a readable PubMed XML file ({type(err).__name__}: {err})") from err
    if root.tag != "PubmedArticleSet":
        raise UpdateFileError(f"{path}: expected a PubmedArticleSet, found <{root.tag}>")
    deletes = [p.text.strip() for p in root.findall("DeleteCitation/PMID") if p.text and p.text.strip()]
    upserts: list[Document] = []
    if root.findall("PubmedArticle"):
        upserts = read_corpus_file(str(path), CorpusFormat.PUBMED_XML.value, InvalidRecordPolicy(on_invalid).value)
    return UpdateFile(path.name, sha, upserts, deletes)


def apply_update_files(
    index_dir: Path,
    files: Sequence[Path],
    embedder,
    config: IndexConfig | None = None,
    refresh_statistics: bool = False,
    say: Callable[[str], None] = lambda _m: None,
    on_invalid: InvalidRecordPolicy = InvalidRecordPolicy.RAISE,
) -> list[UpdateOutcome]:
    """Apply `files` in name order (PubMed numbers them), one published version each."""
    return [
        apply_update(index_dir, read_update_file(f, on_invalid), embedder, config, refresh_statistics, say)
        for f in sorted(map(Path, files), key=lambda p: p.name)
    ]


def _same(a: Document, b: Document) -> bool:
    return (a.text, a.title, a.meta) == (b.text, b.title, b.meta)


def apply_update(
    index_dir: Path,
    update: UpdateFile,
    embedder,
    config: IndexConfig | None = None,
    refresh_statistics: bool = False,
    say: Callable[[str], None] = lambda _m: None,
) -> UpdateOutcome:
    """Apply one update file to the owning shards and publish the result (see the module docstring)."""
    from index.shards.search import check_sharded_compatible

    config = config or IndexConfig()
    index_dir = Path(index_dir)
    version, manifest = read_sharded_manifest(index_dir)
    check_sharded_compatible(manifest, config)
    if embedder.fingerprint != manifest.model.fingerprint:
        raise UpdateFileError(
            f"{index_dir}: built with embedding model {manifest.model.name!r} (weights {manifest.model.fingerprint}); "
            f"the update would embed with {embedder.model_name!r} (weights {embedder.fingerprint})"
        )
    for done in manifest.updates:
        if done.name == update.name:
            if done.sha256 != update.sha256:
                raise UpdateFileError(
                    f"{update.name}: applied before with other content (sha256 {done.sha256[:12]}, now "
                    f"{update.sha256[:12]}); a reissued update file needs a rebuild"
                )
            say(f"{update.name}: already applied, nothing to do")
            return UpdateOutcome(update.name, applied=False)
    if manifest.updates and update.name < manifest.updates[-1].name:
        raise UpdateFileError(
            f"{update.name}: older than {manifest.updates[-1].name}, the last update applied; PubMed's update "
            "files apply in order"
        )
    pmap = manifest.partition_map
    contents = [read_shard_content(version, info) for info in manifest.shards]
    where = {d.id: (s, i) for s, c in enumerate(contents) for i, d in enumerate(c.documents)}
    outcome = UpdateOutcome(update.name, applied=True)
    upserts: dict[str, Document] = {}
    for doc in update.upserts:  # a PMID revised twice in one file: the later record wins
        upserts[doc.id] = doc
    deletes = set(update.deletes)
    replaced: set[str] = set()
    for doc_id in deletes:
        upserts.pop(doc_id, None)  # DeleteCitation closes the file: it wins over a revision above it
    touched: set[int] = set()
    for doc_id, doc in upserts.items():
        if doc_id in where:
            s, i = where[doc_id]
            if _same(contents[s].documents[i], doc):
                outcome.unchanged.append(doc_id)
                continue
            outcome.replaced.append(doc_id)
            replaced.add(doc_id)
            touched.add(s)
        else:
            outcome.added.append(doc_id)
            touched.add(pmap.shard_of(doc_id))
    for doc_id in sorted(deletes):
        if doc_id in where:
            outcome.deleted.append(doc_id)
            touched.add(where[doc_id][0])
        else:
            outcome.absent_deletes.append(doc_id)
    shards_to_write = set(range(len(contents))) if refresh_statistics else set(touched)
    outcome.shards = sorted(touched)
    say(
        f"{update.name}: {len(outcome.added)} added, {len(outcome.replaced)} revised, {len(outcome.deleted)} "
        f"deleted, {len(outcome.unchanged)} unchanged; shards {outcome.shards}"
    )

    next_seq = manifest.next_seq
    chunker = Chunker(config.chunking, embedder.count_tokens)
    new_data: dict[int, ShardData] = {}
    old_stats = CollectionStats.load(version / STATS_NAME)
    removed_parts, added_parts = [], []
    for s in sorted(touched | shards_to_write):
        c = contents[s]
        vectors = shard_vectors(version, manifest, s)
        by_doc: dict[str, list[int]] = {}
        for local, ch in enumerate(c.chunks):
            by_doc.setdefault(ch.doc_id, []).append(local)
        docs: list[tuple[int, Document]] = []
        chunks: list[Chunk] = []
        rows: list[np.ndarray] = []
        fresh: list[Chunk] = []
        gone: list[str] = []
        for i, doc in enumerate(c.documents):
            if doc.id in deletes or doc.id in replaced:
                gone.extend(embedding_text(doc, c.chunks[j]) for j in by_doc.get(doc.id, []))
                if doc.id in deletes:
                    continue
                doc = upserts[doc.id]
                docs.append((int(c.seqs[i]), doc))
                fresh.extend(chunker.chunk(doc))
                continue
            docs.append((int(c.seqs[i]), doc))
        for doc_id in outcome.added:
            if pmap.shard_of(doc_id) == s:
                docs.append((next_seq, upserts[doc_id]))
                next_seq += 1
                fresh.extend(chunker.chunk(upserts[doc_id]))
        docs.sort(key=lambda t: t[0])
        by_id = {d.id: d for _, d in docs}
        fresh_texts = [embedding_text(by_id[ch.doc_id], ch) for ch in fresh]
        fresh_vectors = embedder.encode(fresh_texts) if fresh else np.zeros((0, vectors.shape[1]), np.float32)
        fresh_by_doc: dict[str, list[int]] = {}
        for k, ch in enumerate(fresh):
            fresh_by_doc.setdefault(ch.doc_id, []).append(k)
        for _, doc in docs:
            if doc.id in fresh_by_doc:
                chunks.extend(fresh[k] for k in fresh_by_doc[doc.id])
                rows.append(fresh_vectors[fresh_by_doc[doc.id]])
            else:
                idx = by_doc.get(doc.id, [])
                chunks.extend(c.chunks[j] for j in idx)
                rows.append(vectors[idx])
        removed_parts.append(shard_stats(gone))
        added_parts.append(shard_stats(fresh_texts))
        all_vectors = np.vstack(rows) if rows else np.zeros((0, vectors.shape[1]), np.float32)
        new_data[s] = ShardData(s, [d for _, d in docs], [q for q, _ in docs], chunks, all_vectors)
    stats = _apply_delta(old_stats, CollectionStats.merge(added_parts), CollectionStats.merge(removed_parts))

    tmp = new_temp_version(index_dir)
    try:
        stats.save(tmp / STATS_NAME)
        if (version / QUANTIZER_NAME).is_file():
            link_shard(version, tmp, _shared_info(manifest, QUANTIZER_NAME))
        from index.dense import DenseIndexType, dense_spec

        # Only the kind matters here: IVF-SQ8 shards are refilled from the shared quantizer the build trained.
        spec = dense_spec(DenseIndexType(manifest.dense["type"]), manifest.corpus.n_chunks)
        infos = []
        for s, info in enumerate(manifest.shards):
            if s in new_data:
                infos.append(write_shard(tmp, new_data[s], spec, stats, config.bm25_k1, config.bm25_b))
            else:
                link_shard(version, tmp, info)
                infos.append(info)
        all_docs = [
            d for s, c in enumerate(contents) for d in (new_data[s].documents if s in new_data else c.documents)
        ]
        n_chunks = sum(i.n_chunks for i in infos)
        updated = manifest.model_copy(
            update={
                "created_at": now_utc(),
                "corpus": CorpusInfo(
                    fingerprint=corpus_fingerprint(all_docs),
                    n_documents=len(all_docs),
                    n_chunks=n_chunks,
                    source=manifest.corpus.source,
                ),
                "shared": shared_digests(tmp),
                "shards": infos,
                "next_seq": next_seq,
                "updates": [
                    *manifest.updates,
                    AppliedUpdate(
                        name=update.name,
                        sha256=update.sha256,
                        upserted=len(outcome.added) + len(outcome.replaced),
                        deleted=len(outcome.deleted),
                        shards=outcome.shards,
                        applied_at=now_utc(),
                    ),
                ],
            }
        )
        name = finish_version(index_dir, tmp, updated)
        tmp = None
    finally:
        if tmp is not None:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    publish_version(index_dir, name, expect_current=version.name)
    outcome.version = index_dir / VERSIONS_DIR / name
    say(f"published {outcome.version}")
    return outcome


def _apply_delta(stats: CollectionStats, added: CollectionStats, removed: CollectionStats) -> CollectionStats:
    df = dict(stats.df)
    for term, n in added.df.items():
        df[term] = df.get(term, 0) + n
    for term, n in removed.df.items():
        left = df.get(term, 0) - n
        if left < 0:
            raise CorpusError(f"BM25 statistics went negative for {term!r}: the index's statistics are damaged")
        if left:
            df[term] = left
        else:
            df.pop(term, None)
    return CollectionStats(
        stats.n_chunks + added.n_chunks - removed.n_chunks,
        stats.total_length + added.total_length - removed.total_length,
        df,
    )


def _shared_info(manifest: ShardedManifest, name: str):
    from index.shards.layout import ShardInfo

    return ShardInfo(shard=-1, n_documents=0, n_chunks=0, files={name: manifest.shared[name]})
