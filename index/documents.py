"""Documents and chunks: the units that every span in the system points into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CHUNK_ID_SEPARATOR = "#"


@dataclass(frozen=True, slots=True)
class Document:
    """One source text. `text` is the citable body: every offset in the system indexes into it."""

    id: str
    text: str
    title: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "text": self.text}
        if self.title is not None:
            out["title"] = self.title
        if self.meta:
            out["meta"] = self.meta
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Document:
        return cls(id=obj["id"], text=obj["text"], title=obj.get("title"), meta=obj.get("meta") or {})


@dataclass(frozen=True, slots=True)
class Chunk:
    """A contiguous slice of one document: `document.text[start:end] == text` always holds."""

    id: str
    doc_id: str
    start: int
    end: int
    text: str
    ordinal: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "doc_id": self.doc_id, "start": self.start, "end": self.end, "ordinal": self.ordinal}

    @classmethod
    def from_document(cls, doc: Document, start: int, end: int, ordinal: int) -> Chunk:
        return cls(
            id=f"{doc.id}{CHUNK_ID_SEPARATOR}{ordinal}",
            doc_id=doc.id,
            start=start,
            end=end,
            text=doc.text[start:end],
            ordinal=ordinal,
        )

    @staticmethod
    def ordinal_of(chunk_id: str) -> int:
        """The chunk's place in its document, from its id (`<doc_id>#<ordinal>`)."""
        _, sep, ordinal = chunk_id.rpartition(CHUNK_ID_SEPARATOR)
        if not sep or not ordinal.isdigit():
            raise ValueError(f"not a chunk id (<doc_id>{CHUNK_ID_SEPARATOR}<ordinal>): {chunk_id!r}")
        return int(ordinal)
