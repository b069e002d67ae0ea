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


class IndexRecord(BaseModel):
    """What every manifest, single-node or sharded, records about what its index answers from."""

    model_config = ConfigDict(protected_namespaces=())
    created_at: str
    model: ModelInfo
    chunking: dict[str, Any]
    dense: dict[str, Any]
    lexical: dict[str, Any]
    corpus: CorpusInfo

    def identity(self) -> list[Any]:
        """Model, chunking, index kinds and corpus content: what makes two indexes answer alike."""
        return [self.model.fingerprint, self.chunking, self.dense, self.lexical, self.corpus.fingerprint]

    @staticmethod
    def digest(identity: list[Any]) -> str:
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


class Manifest(IndexRecord):
    format_version: int = FORMAT_VERSION
    files: dict[str, FileInfo]

    @property
    def fingerprint(self) -> str:
        """Identity of what the index answers from: model, chunking, index kinds and corpus content."""
        return self.digest(self.identity())


def file_digest(path: Path) -> FileInfo:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return FileInfo(sha256=h.hexdigest(), size=path.stat().st_size)
