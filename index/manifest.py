"""The manifest: what an index was built from, and the digests that prove its files are intact."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    name: str
    fingerprint: str
    dimension: int
    max_seq_length: int


class CorpusInfo(BaseModel):
    fingerprint: str
    n_documents: int
    n_chunks: int
    source: str | None = None


class FileInfo(BaseModel):
    sha256: str
    size: int


class Manifest(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    format_version: int = FORMAT_VERSION
    created_at: str
    model: ModelInfo
    chunking: dict[str, Any]
    dense: dict[str, Any]
    lexical: dict[str, Any]
    corpus: CorpusInfo
    files: dict[str, FileInfo]

    @property
    def fingerprint(self) -> str:
        """Identity of what the index answers from: model, chunking, index kinds and corpus content."""
        payload = json.dumps(
            [self.model.fingerprint, self.chunking, self.dense, self.lexical, self.corpus.fingerprint], sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def file_digest(path: Path) -> FileInfo:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return FileInfo(sha256=h.hexdigest(), size=path.stat().st_size)
