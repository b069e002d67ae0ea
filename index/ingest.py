"""Read a corpus (JSONL, PubMed XML, or a folder of .txt files) into Documents.

Every refusal names the file and the line or record, because a corpus of thousands of abstracts is fixed by
someone reading that message, not by someone reading this code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from defusedxml import ElementTree as SafeET  # untrusted XML: no entity expansion, no external fetches

from index.documents import Document
from index.errors import CorpusError


class CorpusFormat(StrEnum):
    AUTO = "auto"
    JSONL = "jsonl"
    PUBMED_XML = "pubmed-xml"
    TEXT_DIR = "text-dir"


class InvalidRecordPolicy(StrEnum):
    RAISE = "raise"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    location: str
    reason: str


@dataclass(slots=True)
class IngestResult:
    documents: list[Document]
    skipped: list[SkippedRecord] = field(default_factory=list)


@dataclass(slots=True)
class _Candidate:
    location: str
    id: Any
    text: Any
    title: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


def detect_format(path: Path) -> CorpusFormat:
    if path.is_dir():
        return CorpusFormat.TEXT_DIR
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return CorpusFormat.JSONL
    if suffix == ".xml":
        return CorpusFormat.PUBMED_XML
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith("{"):
        return CorpusFormat.JSONL
    if head.startswith("<"):
        return CorpusFormat.PUBMED_XML
    raise CorpusError(f"{path}: cannot tell the corpus format; pass --format jsonl, pubmed-xml or text-dir")


def _read_jsonl(path: Path) -> Iterator[_Candidate | SkippedRecord]:
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            loc = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                yield SkippedRecord(loc, f"invalid JSON ({err.msg} at column {err.colno})")
                continue
            if not isinstance(obj, dict):
                yield SkippedRecord(loc, f"expected a JSON object, got {type(obj).__name__}")
                continue
            extra = {k: v for k, v in obj.items() if k not in {"id", "text", "title", "meta"}}
            meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
            yield _Candidate(loc, obj.get("id"), obj.get("text"), obj.get("title"), {**meta, **extra})


def _element_text(elem: Any) -> str:
    return " ".join("".join(elem.itertext()).split())


def _read_pubmed_xml(path: Path) -> Iterator[_Candidate | SkippedRecord]:
    try:
        root = SafeET.parse(str(path)).getroot()
    except SafeET.ParseError as err:
        raise CorpusError(f"{path}: not well-formed XML ({err})") from err
    except Exception as err:  # defusedxml refuses entity tricks with its own exception types
        raise CorpusError(f"{path}: refused XML ({type(err).__name__}: {err})") from err
    if root.tag not in {"PubmedArticleSet", "PubmedArticle"}:
        raise CorpusError(f"{path}: expected a PubmedArticleSet, found <{root.tag}>")
    articles = [root] if root.tag == "PubmedArticle" else root.findall("PubmedArticle")
    for n, art in enumerate(articles, start=1):
        pmid_el = art.find("MedlineCitation/PMID")
        pmid = pmid_el.text.strip() if pmid_el is not None and pmid_el.text else None
        loc = f"{path}: PubmedArticle #{n}" + (f" (PMID {pmid})" if pmid else "")
        title_el = art.find("MedlineCitation/Article/ArticleTitle")
        title = _element_text(title_el) if title_el is not None else None
        parts = []
        for sec in art.findall("MedlineCitation/Article/Abstract/AbstractText"):
            body = _element_text(sec)
            if not body:
                continue
            label = sec.get("Label")
            parts.append(f"{label}: {body}" if label else body)
        meta: dict[str, Any] = {"pmid": pmid} if pmid else {}
        journal = art.find("MedlineCitation/Article/Journal/Title")
        if journal is not None and journal.text:
            meta["journal"] = journal.text.strip()
        year = art.find("MedlineCitation/Article/Journal/JournalIssue/PubDate/Year")
        if year is not None and year.text:
            meta["year"] = year.text.strip()
        yield _Candidate(loc, pmid, "\n".join(parts), title or None, meta)


def _read_text_dir(path: Path) -> Iterator[_Candidate | SkippedRecord]:
    files = sorted(p for p in path.rglob("*.txt") if p.is_file())
    if not files:
        raise CorpusError(f"{path}: folder holds no .txt files")
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            yield SkippedRecord(str(f), f"not UTF-8 text ({err.reason} at byte {err.start})")
            continue
        yield _Candidate(str(f), f.relative_to(path).with_suffix("").as_posix(), text.strip(), None, {"path": f.name})


_READERS = {
    CorpusFormat.JSONL: _read_jsonl,
    CorpusFormat.PUBMED_XML: _read_pubmed_xml,
    CorpusFormat.TEXT_DIR: _read_text_dir,
}


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _validate(records: Iterable[_Candidate | SkippedRecord], policy: InvalidRecordPolicy) -> IngestResult:
    result = IngestResult(documents=[])
    seen: dict[str, str] = {}
    for rec in records:
        if isinstance(rec, _Candidate):
            problem = None
            if isinstance(rec.id, int) and not isinstance(rec.id, bool):
                rec.id = str(rec.id)
            if not isinstance(rec.id, str) or not rec.id.strip():
                problem = "missing or empty 'id' (a non-empty string is required)"
            elif not isinstance(rec.text, str) or not rec.text.strip():
                problem = f"document {rec.id!r} has an empty or missing 'text'"
            elif rec.title is not None and not isinstance(rec.title, str):
                problem = f"document {rec.id!r}: 'title' must be a string"
            elif not _encodable(rec.id) or not _encodable(rec.text) or (rec.title and not _encodable(rec.title)):
                problem = f"document {rec.id!r} holds text that is not valid Unicode (a lone surrogate escape)"
            elif rec.id in seen:
                problem = f"duplicate id {rec.id!r} (first seen at {seen[rec.id]})"
            if problem is None:
                seen[rec.id] = rec.location
                result.documents.append(Document(rec.id, rec.text, rec.title, rec.meta))
                continue
            rec = SkippedRecord(rec.location, problem)
        if policy is InvalidRecordPolicy.RAISE:
            raise CorpusError(f"{rec.location}: {rec.reason}")
        result.skipped.append(rec)
    return result


def load_corpus(
    path: str | Path,
    fmt: CorpusFormat = CorpusFormat.AUTO,
    on_invalid: InvalidRecordPolicy = InvalidRecordPolicy.RAISE,
) -> IngestResult:
    """Load and validate a corpus; invalid records raise, or are skipped and reported when asked."""
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: corpus not found")
    fmt = detect_format(path) if fmt is CorpusFormat.AUTO else CorpusFormat(fmt)
    if fmt is CorpusFormat.TEXT_DIR and not path.is_dir():
        raise CorpusError(f"{path}: format text-dir needs a folder")
    try:
        result = _validate(_READERS[fmt](path), on_invalid)
    except UnicodeDecodeError as err:
        raise CorpusError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    if not result.documents:
        raise CorpusError(
            f"{path}: no usable documents" + (f" ({len(result.skipped)} skipped)" if result.skipped else "")
        )
    return result


def corpus_fingerprint(docs: Iterable[Document]) -> str:
    """Order-independent digest of the corpus content; it keys caches and guards index reuse."""
    digests = sorted(
        hashlib.sha256(json.dumps([d.id, d.title, d.text], ensure_ascii=False).encode()).hexdigest() for d in docs
    )
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()
