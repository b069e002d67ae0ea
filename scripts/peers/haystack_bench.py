#!/usr/bin/env python3
"""Haystack on the benchmark corpus: embed the documents with the local MiniLM folder
(`SentenceTransformersDocumentEmbedder`, from the sentence-transformers-haystack package in Haystack 3), write
them to a document store, then time a query through a Pipeline (text embedder -> embedding retriever) and
directly (the two components' `run`). Runs in var/peers/haystack or var/peers/haystack-faiss (setup.sh).

Variants: `memory` (InMemoryDocumentStore, brute-force cosine) and `faiss` (faiss-haystack's FAISSDocumentStore,
which needs numpy<2 and so its own environment).
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import args, read_docs, time_queries, write


def _embedders():
    try:
        from haystack_integrations.components.embedders.sentence_transformers import (
            SentenceTransformersDocumentEmbedder,
            SentenceTransformersTextEmbedder,
        )
    except ImportError:  # Haystack 2.x kept them in the core package
        from haystack.components.embedders import (
            SentenceTransformersDocumentEmbedder,
            SentenceTransformersTextEmbedder,
        )
    return SentenceTransformersDocumentEmbedder, SentenceTransformersTextEmbedder


def _store(variant: str):
    if variant == "faiss":
        from haystack_integrations.components.retrievers.faiss import FAISSEmbeddingRetriever
        from haystack_integrations.document_stores.faiss import FAISSDocumentStore

        store = FAISSDocumentStore(embedding_dim=384)
        return store, FAISSEmbeddingRetriever(document_store=store)
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    store = InMemoryDocumentStore(embedding_similarity_function="cosine")
    return store, InMemoryEmbeddingRetriever(document_store=store)


def main() -> None:
    a = args(__doc__, ["memory", "faiss"])
    from haystack import Document, Pipeline

    DocEmbedder, TextEmbedder = _embedders()
    docs = read_docs(a.docs)
    questions = json.loads(a.questions.read_text(encoding="utf-8"))
    doc_embedder = DocEmbedder(model=a.model, normalize_embeddings=True, progress_bar=False)
    doc_embedder.warm_up()
    doc_embedder.run([Document(content=d["text"]) for d in docs[:8]])  # model load and set-up: not indexing
    store, retriever = _store(a.variant)
    t0 = time.perf_counter()
    embedded = doc_embedder.run([Document(id=d["id"], content=d["text"]) for d in docs])["documents"]
    store.write_documents(embedded)
    index_s = time.perf_counter() - t0

    import torch

    torch.set_num_threads(1)  # queries with one thread, as every framework in the comparison answers them
    text_embedder = TextEmbedder(model=a.model, normalize_embeddings=True, progress_bar=False)
    text_embedder.warm_up()
    pipe = Pipeline()
    pipe.add_component("embedder", TextEmbedder(model=a.model, normalize_embeddings=True, progress_bar=False))
    pipe.add_component("retriever", retriever)
    pipe.connect("embedder.embedding", "retriever.query_embedding")
    pipe.warm_up()

    def direct(q: str) -> object:
        emb = text_embedder.run(text=q)["embedding"]
        return retriever.run(query_embedding=emb, top_k=a.top_k)

    via_pipeline = time_queries(
        lambda q: pipe.run({"embedder": {"text": q}, "retriever": {"top_k": a.top_k}}), questions, a.queries
    )
    write(
        a.out,
        {
            "framework": "haystack",
            "version": version("haystack-ai"),
            "variant": a.variant,
            "documents": len(docs),
            "count": store.count_documents(),
            "index_s": round(index_s, 3),
            "query_threads": torch.get_num_threads(),
            "query_ms": via_pipeline,
            "query_direct_ms": time_queries(direct, questions, a.queries),
            "query_embed_ms": time_queries(lambda q: text_embedder.run(text=q), questions, a.queries),
        },
    )


if __name__ == "__main__":
    main()
