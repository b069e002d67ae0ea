"""One question's way through the system: retrieve -> read -> rank, deduplicate, abstain.

`__init__` stores configuration only; `warm_up` loads the embedder, the index and the readers once; `run`
is then cheap and safe to call from several threads (every model is used read-only).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import faiss

from index.embedder import Embedder
from index.errors import IndexNotFoundError, QAError
from index.ingest import load_corpus
from index.retriever import RetrievalMode, RetrievedPassage, Retriever
from index.store import CorpusIndex, build_index, load_index
from qa.abbreviations import abbreviation_map, expand_query
from qa.answers import Answer
from qa.ranking import combine_with_retrieval, document_ranks, rank_answers
from qa.readers.base import Reader, ReaderKind
from qa.settings import Settings, parse_enum


class QuestionError(QAError, ValueError):
    """The question itself is unusable (empty, too long, not text)."""


class ReaderUnavailableError(QAError):
    """The asked-for reader is not configured on this service."""


@dataclass(slots=True)
class QAResult:
    question: str
    answers: list[Answer]
    passages: list[RetrievedPassage]
    no_answer: bool
    timings_ms: dict[str, float] = field(default_factory=dict)


def validate_question(question: object, max_chars: int) -> str:
    if not isinstance(question, str):
        raise QuestionError(f"question must be a string, got {type(question).__name__}")
    q = question.strip()
    if not q:
        raise QuestionError("question is empty")
    if len(q) > max_chars:
        raise QuestionError(f"question is {len(q)} characters long; the limit is {max_chars}")
    return q


def build_reader(kind: ReaderKind, settings: Settings, embedder: Embedder) -> Reader:
    if kind is ReaderKind.HEURISTIC:
        from qa.readers.heuristic import HeuristicReader

        return HeuristicReader(embedder=embedder, max_answer_tokens=settings.max_answer_tokens)
    from qa.readers.transformers_reader import TransformersReader

    if not settings.reader_model:
        raise ReaderUnavailableError("the transformers reader needs a model: set QA_READER_MODEL or --reader-model")
    return TransformersReader(model=settings.reader_model, max_answer_tokens=settings.max_answer_tokens)


def ensure_index(settings: Settings, embedder: Embedder, say: Callable[[str], None] = lambda _m: None) -> None:
    """Build the configured corpus's index when none exists yet (first run of the demo, say)."""
    try:
        from index.store import read_manifest

        read_manifest(Path(settings.index_dir))
    except IndexNotFoundError:
        say(f"no index at {settings.index_dir}: building it from {settings.corpus_path}")
        docs = load_corpus(settings.corpus_path).documents
        build_index(
            docs,
            embedder,
            Path(settings.index_dir),
            settings.index_config(),
            source=str(settings.corpus_path),
            show_progress=True,
            on_stage=say,
        )


class QAPipeline:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedder = Embedder(settings.embedding_model, settings.embedding_batch_size)
        self._index: CorpusIndex | None = None
        self._retriever: Retriever | None = None
        self._readers: dict[ReaderKind, Reader] = {}
        self._lock = threading.Lock()
        self._abbreviations: dict[str, set[str]] = {}

    def warm_up(self, build_if_missing: bool = False, say: Callable[[str], None] = lambda _m: None) -> None:
        faiss.omp_set_num_threads(self.settings.faiss_threads)
        self.embedder.warm_up()
        if build_if_missing:
            ensure_index(self.settings, self.embedder, say)
        self._index = load_index(
            Path(self.settings.index_dir),
            self.settings.index_config(),
            self.embedder.model_name,
            self.embedder.fingerprint,
        )
        self._retriever = Retriever(self._index, self.embedder, self.settings.fusion_config())
        self._abbreviations = (
            abbreviation_map(d.text for d in self._index.documents.values())
            if self.settings.expand_abbreviations
            else {}
        )
        self.reader(self.settings.reader)

    @property
    def index(self) -> CorpusIndex:
        if self._index is None:
            raise RuntimeError("QAPipeline.warm_up() must run before use")
        return self._index

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            raise RuntimeError("QAPipeline.warm_up() must run before use")
        return self._retriever

    def reader(self, kind: ReaderKind | str) -> Reader:
        kind = parse_enum(ReaderKind, kind, "reader")
        with self._lock:
            if kind not in self._readers:
                reader = build_reader(kind, self.settings, self.embedder)
                reader.warm_up()
                self._readers[kind] = reader
            return self._readers[kind]

    def retrieve(self, question: str, top_k: int, mode: RetrievalMode) -> list[RetrievedPassage]:
        """Retrieval with the question's abbreviations expanded for BM25 (dense vectors need no help)."""
        lexical_query = expand_query(question, self._abbreviations) if self._abbreviations else None
        return self.retriever.run(question, top_k, mode, lexical_query=lexical_query)

    def expand_passages(self, passages: Sequence[RetrievedPassage]) -> list[RetrievedPassage]:
        """Read the whole of each short top document, not only its retrieved chunks.

        An abstract is one argument: the number asked for often sits one sentence away from the words that
        retrieval matched. Long documents (full papers) keep only their retrieved chunks.
        """
        n_docs = self.settings.expand_documents
        if n_docs <= 0 or not passages:
            return list(passages)
        best: dict[str, RetrievedPassage] = {}
        for p in passages:
            if p.chunk.doc_id not in best:
                best[p.chunk.doc_id] = p
        out: list[RetrievedPassage] = []
        seen: set[str] = set()
        for rank, (doc_id, top) in enumerate(best.items()):
            doc = self.index.documents.get(doc_id)
            if rank < n_docs and doc is not None and len(doc.text) <= self.settings.expand_max_chars:
                for chunk in self.index.chunks_of(doc_id):
                    if chunk.id not in seen:
                        seen.add(chunk.id)
                        out.append(replace(top, chunk=chunk))
        for p in passages:
            if p.chunk.id not in seen:
                seen.add(p.chunk.id)
                out.append(p)
        return out

    def read(
        self,
        question: str,
        passages: Sequence[RetrievedPassage],
        reader: ReaderKind | str | None = None,
        max_answers: int | None = None,
        min_score: float | None = None,
    ) -> list[Answer]:
        """Read given passages (the oracle-retrieval path of the evaluation uses this directly)."""
        n = max_answers or self.settings.max_answers
        candidates = self.reader(reader or self.settings.reader).run(
            question, self.expand_passages(passages), self.index.documents, n * 4
        )
        ranks = document_ranks([p.chunk.doc_id for p in passages])
        candidates = combine_with_retrieval(candidates, ranks, self.settings.retrieval_weight)
        threshold = self.settings.min_answer_score if min_score is None else min_score
        return rank_answers(candidates, n, threshold)

    def run(
        self,
        question: str,
        top_k: int | None = None,
        max_answers: int | None = None,
        retriever: RetrievalMode | str | None = None,
        reader: ReaderKind | str | None = None,
        min_score: float | None = None,
    ) -> QAResult:
        q = validate_question(question, self.settings.question_max_chars)
        mode = parse_enum(RetrievalMode, retriever or self.settings.retriever, "retriever")
        reader_kind = parse_enum(ReaderKind, reader or self.settings.reader, "reader")
        t0 = time.perf_counter()
        passages = self.retrieve(q, top_k or self.settings.top_k, mode)
        t1 = time.perf_counter()
        answers = self.read(q, passages, reader_kind, max_answers, min_score)
        t2 = time.perf_counter()
        return QAResult(
            question=q,
            answers=answers,
            passages=passages,
            no_answer=not answers,
            timings_ms={"retrieve": (t1 - t0) * 1000, "read": (t2 - t1) * 1000, "total": (t2 - t0) * 1000},
        )
