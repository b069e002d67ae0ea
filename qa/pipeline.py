"""One question's way through the system: retrieve -> read -> rank, deduplicate, abstain.

`__init__` stores configuration only; `warm_up` loads the embedder, the index and the readers once; `run`
is then cheap and safe to call from several threads (every model is used read-only).

The index and what derives from it (retriever, abbreviations) live in one immutable `IndexSnapshot`, held by a
single attribute: `swap_index`/`reload_index` replace it in one assignment while questions are being answered,
and each question takes the snapshot once at its start, so it never mixes two indexes. An old snapshot is freed
when the last question holding it finishes.
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
from index.store import CorpusIndex, build_index, current_version, load_index
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
    index_fingerprint: str | None = None  # the manifest fingerprint of the index that answered


@dataclass(frozen=True, slots=True)
class IndexSnapshot:
    """One loaded index with its retriever and abbreviation map: everything a question reads, swapped as one."""

    index: CorpusIndex
    retriever: Retriever
    abbreviations: dict[str, set[str]]

    @property
    def fingerprint(self) -> str:
        return self.index.manifest.fingerprint


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
        self._snapshot: IndexSnapshot | None = None
        self._readers: dict[ReaderKind, Reader] = {}
        self._lock = threading.Lock()
        self._swap_lock = threading.Lock()

    def warm_up(self, build_if_missing: bool = False, say: Callable[[str], None] = lambda _m: None) -> None:
        faiss.omp_set_num_threads(self.settings.faiss_threads)
        self.embedder.warm_up()
        if build_if_missing:
            ensure_index(self.settings, self.embedder, say)
        self.swap_index(self.load_current_index())
        self.reader(self.settings.reader)

    def load_current_index(self) -> CorpusIndex:
        """The index CURRENT names now, verified against its manifest and this pipeline's settings."""
        return load_index(
            Path(self.settings.index_dir),
            self.settings.index_config(),
            self.embedder.model_name,
            self.embedder.fingerprint,
        )

    def make_snapshot(self, index: CorpusIndex) -> IndexSnapshot:
        """Everything derived from `index`, built before the swap so requests never see it half-made."""
        abbreviations = (
            abbreviation_map(d.text for d in index.documents.values()) if self.settings.expand_abbreviations else {}
        )
        return IndexSnapshot(index, Retriever(index, self.embedder, self.settings.fusion_config()), abbreviations)

    def swap_index(self, index: CorpusIndex | IndexSnapshot) -> IndexSnapshot | None:
        """Serve `index` (or a snapshot made earlier) from now on, without a restart; returns the snapshot it
        replaces (None on first load)."""
        snapshot = index if isinstance(index, IndexSnapshot) else self.make_snapshot(index)
        with self._swap_lock:
            old, self._snapshot = self._snapshot, snapshot
        return old

    def reload_index(self) -> tuple[IndexSnapshot | None, IndexSnapshot]:
        """Load the index CURRENT names now and swap it in; (previous, current). A damaged index raises and the
        previous one keeps serving. Unchanged when CURRENT still names the version being served."""
        with self._swap_lock:  # one reload at a time; questions never wait on this lock
            old = self._snapshot
            version = current_version(Path(self.settings.index_dir))
            if old is not None and version is not None and old.index.path == version:
                return old, old
            snapshot = self.make_snapshot(self.load_current_index())
            self._snapshot = snapshot
        return old, snapshot

    @property
    def snapshot(self) -> IndexSnapshot:
        """The index being served now; take it once per question and pass it along."""
        snapshot = self._snapshot
        if snapshot is None:
            raise RuntimeError("QAPipeline.warm_up() must run before use")
        return snapshot

    @property
    def index(self) -> CorpusIndex:
        return self.snapshot.index

    @property
    def retriever(self) -> Retriever:
        return self.snapshot.retriever

    def reader(self, kind: ReaderKind | str) -> Reader:
        kind = parse_enum(ReaderKind, kind, "reader")
        with self._lock:
            if kind not in self._readers:
                reader = build_reader(kind, self.settings, self.embedder)
                reader.warm_up()
                self._readers[kind] = reader
            return self._readers[kind]

    def retrieve(
        self, question: str, top_k: int, mode: RetrievalMode, snapshot: IndexSnapshot | None = None
    ) -> list[RetrievedPassage]:
        """Retrieval with the question's abbreviations expanded for BM25 (dense vectors need no help)."""
        snap = snapshot or self.snapshot
        lexical_query = expand_query(question, snap.abbreviations) if snap.abbreviations else None
        return snap.retriever.run(question, top_k, mode, lexical_query=lexical_query)

    def expand_passages(
        self, passages: Sequence[RetrievedPassage], snapshot: IndexSnapshot | None = None
    ) -> list[RetrievedPassage]:
        """Read the whole of each short top document, not only its retrieved chunks.

        An abstract is one argument: the number asked for often sits one sentence away from the words that
        retrieval matched. Long documents (full papers) keep only their retrieved chunks.
        """
        n_docs = self.settings.expand_documents
        if n_docs <= 0 or not passages:
            return list(passages)
        index = (snapshot or self.snapshot).index
        best: dict[str, RetrievedPassage] = {}
        for p in passages:
            if p.chunk.doc_id not in best:
                best[p.chunk.doc_id] = p
        out: list[RetrievedPassage] = []
        seen: set[str] = set()
        for rank, (doc_id, top) in enumerate(best.items()):
            doc = index.documents.get(doc_id)
            if rank < n_docs and doc is not None and len(doc.text) <= self.settings.expand_max_chars:
                for chunk in index.chunks_of(doc_id):
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
        snapshot: IndexSnapshot | None = None,
    ) -> list[Answer]:
        """Read given passages (the oracle-retrieval path of the evaluation uses this directly)."""
        snap = snapshot or self.snapshot
        n = max_answers or self.settings.max_answers
        candidates = self.reader(reader or self.settings.reader).run(
            question, self.expand_passages(passages, snap), snap.index.documents, n * 4
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
        snapshot: IndexSnapshot | None = None,
    ) -> QAResult:
        """Answer one question from one index snapshot (the current one unless given: a batch passes one)."""
        q = validate_question(question, self.settings.question_max_chars)
        mode = parse_enum(RetrievalMode, retriever or self.settings.retriever, "retriever")
        reader_kind = parse_enum(ReaderKind, reader or self.settings.reader, "reader")
        snap = snapshot or self.snapshot
        t0 = time.perf_counter()
        passages = self.retrieve(q, top_k or self.settings.top_k, mode, snap)
        t1 = time.perf_counter()
        answers = self.read(q, passages, reader_kind, max_answers, min_score, snap)
        t2 = time.perf_counter()
        return QAResult(
            question=q,
            answers=answers,
            passages=passages,
            no_answer=not answers,
            timings_ms={"retrieve": (t1 - t0) * 1000, "read": (t2 - t1) * 1000, "total": (t2 - t0) * 1000},
            index_fingerprint=snap.fingerprint,
        )
