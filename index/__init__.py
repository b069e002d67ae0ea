"""Corpus side of the system: documents, chunks, embeddings and the on-disk index.

Knows nothing of readers or HTTP (see docs/design.md): `qa` and `eval` depend on it, never the reverse.
"""
