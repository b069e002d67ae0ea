"""Gold sets in four formats, read into one shape: questions with gold answers and graded relevant documents.

Every format also yields the corpus its questions are asked of, so an evaluation never depends on an index
built from something else. Refusals name the file and the record, as the corpus loader's do.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from common.errors import QAError
from index.documents import Document
from index.ingest import load_corpus


class GoldError(QAError):
    """A gold file or record cannot be used; the message names the file and the record."""


class GoldFormat(StrEnum):
    AUTO = "auto"
    JSONL = "jsonl"
    SQUAD = "squad"
    PUBMEDQA = "pubmedqa"
    BEIR = "beir"


@dataclass(frozen=True, slots=True)
class Example:
    """One gold question. `answers` empty and `answerable` false: not answerable from the corpus.

    `relevant` maps document id to graded relevance (0 = judged not relevant); an example with no judgement at
    all is left out of the retrieval metrics.
    """

    id: str
    question: str
    answers: tuple[str, ...] = ()
    relevant: dict[str, int] = field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    @property
    def gold_doc_ids(self) -> list[str]:
        """Relevant documents, most relevant first (ties in given order)."""
        ranked = sorted(self.relevant.items(), key=lambda kv: -kv[1])
        return [doc_id for doc_id, rel in ranked if rel > 0]


@dataclass(slots=True)
class GoldSet:
    """Questions plus the corpus they are asked of. `retrieval_only`: no span answers, so no reader runs."""

    path: Path
    format: GoldFormat
    examples: list[Example]
    documents: list[Document]
    corpus_source: str
    retrieval_only: bool = False
    ignore_identical_ids: bool = False  # BEIR's convention: a document that is the query itself never counts

    @property
    def name(self) -> str:
        return self.path.name


def _fail(where: str, reason: str) -> GoldError:
    return GoldError(f"{where}: {reason}")


def detect_format(path: Path) -> GoldFormat:
    """A folder is BEIR, `.jsonl` the project's format; a JSON file is told apart by its structure."""
    if path.is_dir():
        if (path / "corpus.jsonl").is_file():
            return GoldFormat.BEIR
        raise _fail(str(path), "a folder must be a BEIR data set (corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        return GoldFormat.JSONL
    obj = _read_json(path)
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        return GoldFormat.SQUAD
    if isinstance(obj, dict) and obj and all(isinstance(v, dict) and "QUESTION" in v for v in obj.values()):
        return GoldFormat.PUBMEDQA
    raise _fail(str(path), "cannot tell the gold format; pass --format jsonl, squad, pubmedqa or beir")


def _read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        raise _fail(str(path), f"invalid JSON ({err.msg} at line {err.lineno})") from err


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise _fail(where, f"invalid JSON ({err.msg} at column {err.colno})") from err
            if not isinstance(obj, dict):
                raise _fail(where, f"expected a JSON object, got {type(obj).__name__}")
            yield where, obj


def _as_id(value: Any, where: str, what: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"missing or empty {what}")
    return value


def _str_list(value: Any, where: str, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, f"'{what}' must be a list of strings")
    return value


def _question(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, "missing or empty 'question'")
    return value


def _check_unique(examples: list[Example], where: str) -> None:
    seen: set[str] = set()
    for ex in examples:
        if ex.id in seen:
            raise _fail(where, f"duplicate question id {ex.id!r}")
        seen.add(ex.id)


def load_jsonl_gold(path: Path, corpus: Path) -> GoldSet:
    """The project's format: one `{"id","question","answers","doc_ids"}` per line over a separate corpus."""
    documents = load_corpus(corpus).documents
    known = {d.id for d in documents}
    examples = []
    for where, obj in _jsonl_rows(path):
        ex_id = _as_id(obj.get("id"), where, "'id'")
        answers = _str_list(obj.get("answers", []), where, "answers")
        doc_ids = _str_list(obj.get("doc_ids", []), where, "doc_ids")
        missing = [d for d in doc_ids if d not in known]
        if missing:
            raise _fail(where, f"question {ex_id!r} cites documents not in the corpus {corpus}: {missing}")
        examples.append(
            Example(ex_id, _question(obj.get("question"), where), tuple(answers), dict.fromkeys(doc_ids, 1))
        )
    if not examples:
        raise _fail(str(path), "no questions")
    _check_unique(examples, str(path))
    return GoldSet(path, GoldFormat.JSONL, examples, documents, corpus_source=str(corpus))


def load_squad(path: Path) -> GoldSet:
    """SQuAD v1.1/v2.0: each paragraph is one document (id `document_id` where given, as COVID-QA has) and the
    gold document of its questions; v2.0 `is_impossible` questions have no gold answer."""
    obj = _read_json(path)
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise _fail(str(path), "not SQuAD: expected an object with a 'data' list")
    documents: dict[str, Document] = {}
    examples = []
    for i, article in enumerate(obj["data"]):
        title = article.get("title")
        title = title.replace("_", " ") if isinstance(title, str) and title.strip() else None
        for j, para in enumerate(article.get("paragraphs", [])):
            where = f"{path}: data[{i}].paragraphs[{j}]"
            context = para.get("context")
            if not isinstance(context, str) or not context.strip():
                raise _fail(where, "missing or empty 'context'")
            if para.get("document_id") is not None:
                doc_id = _as_id(para["document_id"], where, "'document_id'")
            else:
                doc_id = f"{title or f'article-{i}'}:{j}"
            if doc_id in documents and documents[doc_id].text != context:
                raise _fail(where, f"document id {doc_id!r} is used for two different contexts")
            documents[doc_id] = Document(doc_id, context, title)
            for k, qa in enumerate(para.get("qas", [])):
                qwhere = f"{where}.qas[{k}]"
                answers = [] if qa.get("is_impossible") else [a.get("text") for a in qa.get("answers", [])]
                answers = _str_list(answers, qwhere, "answers[].text")
                examples.append(
                    Example(
                        _as_id(qa.get("id"), qwhere, "'id'"),
                        _question(qa.get("question"), qwhere),
                        tuple(answers),
                        {doc_id: 1},
                    )
                )
    if not examples:
        raise _fail(str(path), "no questions")
    _check_unique(examples, str(path))
    return GoldSet(path, GoldFormat.SQUAD, examples, list(documents.values()), corpus_source=str(path))


def load_pubmedqa(path: Path) -> GoldSet:
    """PubMedQA (`ori_pqal.json`): retrieval only. Each PMID's abstract sections, joined, are one document; the
    question's own PMID is its one relevant document. QUESTION is the article title, so it is not used as one."""
    obj = _read_json(path)
    if not isinstance(obj, dict) or not obj:
        raise _fail(str(path), "not PubMedQA: expected an object keyed by PMID")
    documents, examples = [], []
    for pmid, item in obj.items():
        where = f"{path}: PMID {pmid}"
        if not isinstance(item, dict):
            raise _fail(where, "expected an object")
        contexts = _str_list(item.get("CONTEXTS"), where, "CONTEXTS")
        text = "\n".join(c.strip() for c in contexts if c.strip())
        if not text:
            raise _fail(where, "empty CONTEXTS")
        documents.append(Document(pmid, text))
        examples.append(Example(pmid, _question(item.get("QUESTION"), where), (), {pmid: 1}))
    return GoldSet(path, GoldFormat.PUBMEDQA, examples, documents, corpus_source=str(path), retrieval_only=True)


def load_beir(path: Path, split: str = "test") -> GoldSet:
    """A BEIR folder, scored as BEIR does: every query with a judgement in `qrels/<split>.tsv`, graded
    relevance as given, and a document whose id is the query's own id is ignored."""
    qrels_path = path / "qrels" / f"{split}.tsv"
    for needed in (path / "corpus.jsonl", path / "queries.jsonl", qrels_path):
        if not needed.is_file():
            raise _fail(str(path), f"BEIR folder lacks {needed.relative_to(path)}")
    documents = []
    for where, obj in _jsonl_rows(path / "corpus.jsonl"):
        doc_id = _as_id(obj.get("_id"), where, "'_id'")
        title = obj.get("title") if isinstance(obj.get("title"), str) and obj["title"].strip() else None
        text = obj.get("text") if isinstance(obj.get("text"), str) else ""
        if not text.strip():  # title-only records exist in BEIR; their title is then the whole text
            if title is None:
                raise _fail(where, f"document {doc_id!r} has neither text nor title")
            text, title = title, None
        documents.append(Document(doc_id, text, title))
    queries = {}
    for where, obj in _jsonl_rows(path / "queries.jsonl"):
        queries[_as_id(obj.get("_id"), where, "'_id'")] = _question(obj.get("text"), where)
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="\t")
        for lineno, row in enumerate(rows, start=1):
            if lineno == 1 and row and not row[-1].lstrip("-").isdigit():
                continue  # the header line
            if len(row) != 3:
                raise _fail(f"{qrels_path}:{lineno}", "expected query-id, corpus-id, score")
            try:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
            except ValueError as err:
                raise _fail(f"{qrels_path}:{lineno}", f"score {row[2]!r} is not an integer") from err
    missing = sorted(q for q in qrels if q not in queries)
    if missing:
        raise _fail(str(qrels_path), f"judged queries missing from queries.jsonl: {missing[:5]}")
    examples = [Example(qid, queries[qid], (), rel) for qid, rel in qrels.items()]
    if not examples:
        raise _fail(str(qrels_path), "no judged queries")
    return GoldSet(
        path,
        GoldFormat.BEIR,
        examples,
        documents,
        corpus_source=str(path),
        retrieval_only=True,
        ignore_identical_ids=True,
    )


def load_gold(path: str | Path, fmt: GoldFormat | str = GoldFormat.AUTO, corpus: str | Path | None = None) -> GoldSet:
    """Load any supported gold set; `corpus` (JSONL gold only) defaults to the built-in abstracts."""
    path = Path(path)
    if not path.exists():
        raise GoldError(f"{path}: gold file not found")
    fmt = GoldFormat(fmt)
    if fmt is GoldFormat.AUTO:
        fmt = detect_format(path)
    if corpus is not None and fmt is not GoldFormat.JSONL:
        raise GoldError(f"--corpus applies to JSONL gold only; a {fmt.value} gold set carries its own corpus")
    if fmt is GoldFormat.JSONL:
        from qa.settings import BUILTIN_CORPUS

        return load_jsonl_gold(path, Path(corpus) if corpus is not None else BUILTIN_CORPUS)
    if fmt is GoldFormat.SQUAD:
        return load_squad(path)
    if fmt is GoldFormat.PUBMEDQA:
        return load_pubmedqa(path)
    if not path.is_dir():
        raise GoldError(f"{path}: format beir needs a folder")
    return load_beir(path)
