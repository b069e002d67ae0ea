"""Incremental corpus updates: add, replace and delete documents by id without rebuilding from scratch.

Unchanged documents keep their chunks and their exact vectors (`chunk_vectors`: read back from FAISS for flat and
HNSW, from `vectors.npy` for the 8-bit kinds, whose codes decode only approximately); only added or changed
documents are chunked and embedded, which is where a build spends its time. BM25 and FAISS are then rebuilt from
the combined chunks and vectors into a new version folder, of the kind the configuration picks for the new size
(HNSW cannot remove vectors, and 8-bit codes are retrained on the new set exactly as a fresh build trains them),
and published with the same atomic machinery as a full build, only if CURRENT still names the version the update
started from.

Order is deterministic: surviving documents keep their place, a replaced document keeps its place, and new ones
are appended in the order given. A from-scratch build of `UpdateResult.documents` therefore gives the same index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import QAError
from index.chunking import Chunker
from index.documents import Chunk, Document
from index.embedder import Embedder
from index.manifest import Manifest
from index.store import (
    CorpusIndex,
    IndexConfig,
    check_documents,
    chunk_vectors,
    embedding_text,
    load_index,
    publish_index,
)


class UpdateError(QAError, ValueError):
    """The update itself is unusable (an unknown id to delete, an id both added and deleted, ...).

    `field` names the part at fault ("upsert" or "delete"), so an HTTP client is told which list to fix.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class CorpusUpdate:
    """Documents to add or replace (matched by id) and ids to delete."""

    upsert: Sequence[Document] = ()
    delete: Sequence[str] = ()


@dataclass(slots=True)
class UpdateResult:
    manifest: Manifest
    version: Path
    documents: list[Document]
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    embedded_chunks: int = 0
    reused_chunks: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.deleted)


def _shown(ids: Iterable[str], limit: int = 10) -> str:
    ids = list(ids)
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(repr(i) for i in ids[:limit]) + more


def check_update(update: CorpusUpdate, existing: Iterable[str]) -> None:
    """Refuse an ambiguous or impossible update before any work, naming the ids at fault."""
    upsert_ids = [d.id for d in update.upsert]
    dupes = sorted({i for i in upsert_ids if upsert_ids.count(i) > 1})
    if dupes:
        raise UpdateError(f"documents given twice: {_shown(dupes)}", "upsert")
    dupes = sorted({i for i in update.delete if list(update.delete).count(i) > 1})
    if dupes:
        raise UpdateError(f"ids to delete given twice: {_shown(dupes)}", "delete")
    both = sorted(set(upsert_ids) & set(update.delete))
    if both:
        raise UpdateError(f"ids both added and deleted: {_shown(both)}", "delete")
    known = set(existing)
    unknown = [i for i in update.delete if i not in known]
    if unknown:
        raise UpdateError(f"cannot delete unknown document ids: {_shown(unknown)}", "delete")
    check_documents(update.upsert)


def update_for_corpus(index: CorpusIndex, documents: Sequence[Document]) -> CorpusUpdate:
    """The update that turns `index` into an index of `documents`: upsert what is new or changed, delete the rest."""
    wanted = {d.id for d in documents}
    upsert = [d for d in documents if index.documents.get(d.id) != d]
    return CorpusUpdate(upsert=upsert, delete=[i for i in index.documents if i not in wanted])


def apply_update(
    index_dir: Path,
    update: CorpusUpdate,
    embedder: Embedder | None,
    config: IndexConfig | None = None,
    source: str | None = None,
) -> UpdateResult:
    """Apply `update` to the current index in `index_dir` and publish the result as a new version.

    `embedder` may be None for an update that embeds nothing (deletes, metadata-only changes). Raises
    UpdateError for a bad update, IndexConflictError when another build published meanwhile, IndexWriteError
    when the new version cannot be written; in every case the current index is left as it was.
    """
    index_dir = Path(index_dir)
    config = config if config is not None else IndexConfig()
    if embedder is not None:
        embedder.warm_up()
    base = load_index(
        index_dir,
        config,
        embedder.model_name if embedder is not None else "",
        embedder.fingerprint if embedder is not None else None,
    )
    check_update(update, base.documents)
    upserts = {d.id: d for d in update.upsert}
    deleted = set(update.delete)
    result = UpdateResult(base.manifest, base.path, [], deleted=list(update.delete))

    final: list[Document] = []
    for doc_id, old in base.documents.items():
        if doc_id in deleted:
            continue
        new = upserts.get(doc_id)
        if new is None:
            final.append(old)
        elif new == old:
            result.unchanged.append(doc_id)
            final.append(old)
        else:
            result.replaced.append(doc_id)
            final.append(new)
    for doc in update.upsert:
        if doc.id not in base.documents:
            result.added.append(doc.id)
            final.append(doc)
    result.documents = final
    if not result.changed:
        return result
    if not final:
        raise UpdateError("an update cannot delete every document; build a new index instead", "delete")

    def reusable(doc: Document) -> bool:
        """Same text and title give the same chunks and vectors; a metadata change needs no embedding."""
        old = base.documents.get(doc.id)
        return old is not None and old.text == doc.text and old.title == doc.title

    to_embed = [d for d in final if not reusable(d)]
    if to_embed and embedder is None:
        raise UpdateError("adding or changing document text needs the embedding model")
    chunker = Chunker(config.chunking, embedder.count_tokens) if embedder is not None else None
    position = {c.id: i for i, c in enumerate(base.chunks)}
    old_vectors = chunk_vectors(base) if base.dense.ntotal else None

    chunks: list[Chunk] = []
    sources: list[int | None] = []  # position of a reused vector in the old index, None for a new one
    for doc in final:
        if reusable(doc):
            for c in base.chunks_of(doc.id):
                chunks.append(Chunk.from_document(doc, c.start, c.end, c.ordinal))
                sources.append(position[c.id])
        else:
            assert chunker is not None
            for c in chunker.chunk(doc):
                chunks.append(c)
                sources.append(None)
    by_id = {d.id: d for d in final}
    new_positions = [i for i, s in enumerate(sources) if s is None]
    assert embedder is not None or not new_positions
    new_vectors = (
        embedder.encode([embedding_text(by_id[chunks[i].doc_id], chunks[i]) for i in new_positions])
        if embedder is not None and new_positions
        else np.zeros((0, base.manifest.model.dimension), dtype=np.float32)
    )
    vectors = np.zeros((len(chunks), base.manifest.model.dimension), dtype=np.float32)
    reused = [(i, s) for i, s in enumerate(sources) if s is not None]
    if reused:
        assert old_vectors is not None
        vectors[[i for i, _ in reused]] = old_vectors[[s for _, s in reused]]
    if new_positions:
        vectors[new_positions] = new_vectors
    result.embedded_chunks = len(new_positions)
    result.reused_chunks = len(reused)

    result.version, result.manifest = publish_index(
        index_dir,
        final,
        chunks,
        vectors,
        base.manifest.model,
        config,
        source=source if source is not None else base.manifest.corpus.source,
        expect_current=base.path.name,
    )
    return result
