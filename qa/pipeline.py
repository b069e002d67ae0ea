"""One question's way through the system: retrieve -> read -> rank, deduplicate, abstain.

`__init__` stores configuration only; `warm_up` loads the embedder, the index and the readers once; `run`
is then cheap and safe to call from several threads (every model is used read-only).

The index and what derives from it (the retriever, with the corpus's abbreviations) live in one immutable
`IndexSnapshot`, held by a
single attribute: `swap_index`/`reload_index` replace it in one assignment while questions are being answered,
and each question takes the snapshot once at its start, so it never mixes two indexes. An old snapshot is freed
when the last question holding it finishes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import faiss

from common.choices import parse_choice
from common.errors import QAError
from index.embedder import Embedder, EmbedderBackend
from index.errors import IndexMismatchError, IndexNotFoundError
from index.ingest import load_corpus
from index.manifest import Manifest
from index.retriever import RetrievalMode, RetrievedPassage, Retriever
from index.shards.layout import is_sharded
from index.shards.search import load_sharded_for
from index.store import CorpusIndex, build_index, current_version, load_index, read_manifest, read_pointer
from qa.answers import Answer, QAResult
from qa.coverage import DocumentTerms, document_coverage, weigh_by_coverage
from qa.ranking import combine_with_retrieval, document_ranks, rank_answers, reachable
from qa.readers.base import READER_SCORE_MAX, Reader, ReaderKind, build_reader, reader_entry
from qa.settings import Settings


class QuestionError(QAError, ValueError):
    """The question itself is unusable (empty, too long, not text); `code` names the problem in pydantic's
    vocabulary (string_type, string_too_short, string_too_long), which the HTTP API reports."""

    def __init__(self, message: str, code: str = "value_error") -> None:
        super().__init__(message)
        self.code = code


class ReaderUnavailableError(QAError):
    """The asked-for reader is not configured on this service."""


class BatchItemError(QAError):
    """One question of a batch is unusable; `item` says which, `error` why (a QuestionError or ValueError)."""

    def __init__(self, item: int, error: Exception) -> None:
        super().__init__(f"question {item}: {error}")
        self.item = item
        self.error = error


@dataclass(frozen=True, slots=True)
class Ask:
    """One question with its own options; None takes the settings' default."""

    question: str
    top_k: int | None = None
    max_answers: int | None = None
    retriever: RetrievalMode | str | None = None
    reader: ReaderKind | str | None = None
    min_score: float | None = None


@dataclass(frozen=True, slots=True)
class _Prepared:
    question: str
    top_k: int
    mode: RetrievalMode
    reader: ReaderKind
    max_answers: int | None
    min_score: float | None


@dataclass(frozen=True, slots=True)
class IndexSnapshot:
    """One loaded index with its retriever (which holds the index's abbreviation map): everything a question
    reads, swapped as one."""

    index: CorpusIndex
    retriever: Retriever
    document_terms: DocumentTerms  # question coverage's per-document term sets, cached with this index

    @property
    def fingerprint(self) -> str:
        return self.index.manifest.fingerprint


def validate_question(question: object, max_chars: int) -> str:
    """The question, trimmed; QuestionError when it is not text, empty (only whitespace) or over `max_chars`.
    Every interface checks questions with this one function (the service before it queues any work)."""
    if not isinstance(question, str):
        raise QuestionError(f"question must be a string, got {type(question).__name__}", "string_type")
    q = question.strip()
    if not q:
        raise QuestionError("question is empty (only whitespace)", "string_too_short")
    if len(q) > max_chars:
        raise QuestionError(f"question is {len(q)} characters long; the limit is {max_chars}", "string_too_long")
    return q


def build_embedder(settings: Settings) -> Embedder:
    """The embedder the settings describe: model, batch size, backend and where ONNX exports are cached."""
    return Embedder(
        settings.embedding_model,
        settings.embedding_batch_size,
        backend=settings.embedding_backend,
        onnx_cache_dir=settings.onnx_cache_path(),
    )


def check_embedder(manifest: Manifest, embedder: Embedder, index_dir: Path) -> None:
    """Refuse an index another model or backend built, saying which built it and the two ways out."""
    have, want = manifest.model.fingerprint, embedder.fingerprint
    if have == want:
        return
    configured = embedder.backend.value
    rebuild = f"qa index --index-dir {index_dir} --embedding-backend {configured}"
    if manifest.corpus.source:
        rebuild += f" --corpus {manifest.corpus.source}"
    if have.removesuffix("-int8") == want.removesuffix("-int8"):
        built = EmbedderBackend.ONNX_INT8 if have.endswith("-int8") else EmbedderBackend.TORCH
        raise IndexMismatchError(
            f"the index in {index_dir} was built by the {EmbedderBackend.built(have)} embedding backend, and this "
            f"pipeline is configured for {configured} (same model, {manifest.model.name!r}): serve it with "
            f"QA_EMBEDDING_BACKEND={built.value} (or --embedding-backend {built.value}), or rebuild it: {rebuild}"
        )
    raise IndexMismatchError(
        f"the index in {index_dir} was built with embedding model {manifest.model.name!r} (weights {have}) by the "
        f"{EmbedderBackend.built(have)} backend, and this pipeline is configured for {embedder.model_name!r} "
        f"(weights {want}) on {configured}: set QA_EMBEDDING_MODEL and QA_EMBEDDING_BACKEND to match, or rebuild "
        f"it: {rebuild}"
    )


DEFAULT_DIR_ONLY = "default-dir"
"""`warm_up(build_if_missing=DEFAULT_DIR_ONLY)`: build on first run only in the default index directory."""


def is_default_index_dir(index_dir: str | Path) -> bool:
    """Whether `index_dir` is the settings' default (var/index, from the working directory), however spelled."""
    default = Path(Settings.model_fields["index_dir"].default)
    return Path(index_dir).resolve() == default.resolve()


def check_index_dir(index_dir: str | Path) -> None:
    """Raise IndexNotFoundError, naming the folder and how to build an index there, when `index_dir` holds no
    index and is not the default one: only the default is built from the corpus on first run, so a mistyped
    `--index-dir` fails at once instead of getting a demo index of its own. Cheap: it reads no index file."""
    index_dir = Path(index_dir)
    if is_default_index_dir(index_dir) or read_pointer(index_dir) is not None:
        return
    what = "does not exist" if not index_dir.exists() else "holds no index"
    raise IndexNotFoundError(
        f"the index directory {index_dir} {what}; build one with `qa index --index-dir {index_dir} "
        f"[--corpus PATH]` (only the default one, {Settings.model_fields['index_dir'].default}, is built on first run)"
    )


def ensure_index(
    settings: Settings,
    embedder: Embedder,
    say: Callable[[str], None] = lambda _m: None,
    *,
    default_dir_only: bool = False,
) -> None:
    """Build the configured corpus's index when none exists yet (first run of the demo, say). With
    `default_dir_only` (the CLI and `qa serve`), only in the default index directory: any other one without an
    index raises IndexNotFoundError (`check_index_dir`)."""
    index_dir = Path(settings.index_dir)
    if default_dir_only:
        check_index_dir(index_dir)
    if read_pointer(index_dir) is not None:
        return
    say(f"no index at {settings.index_dir}: building it from {settings.corpus_path}")
    docs = load_corpus(settings.corpus_path).documents
    build_index(
        docs,
        embedder,
        index_dir,
        settings.index_config(),
        source=str(settings.corpus_path),
        show_progress=True,
        on_stage=say,
    )


class QAPipeline:
    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        """`embedder`: an embedder to share (loaded or not) instead of the one the settings describe; an index
        built by another model or backend is still refused at `warm_up`."""
        self.settings = settings
        self.embedder = embedder if embedder is not None else build_embedder(settings)
        self._snapshot: IndexSnapshot | None = None
        self._readers: dict[ReaderKind, Reader] = {}
        self._lock = threading.RLock()  # a reader may be built of others (combined): reentrant
        self._swap_lock = threading.Lock()

    def warm_up(
        self, build_if_missing: bool | Literal["default-dir"] = False, say: Callable[[str], None] = lambda _m: None
    ) -> None:
        """Load the embedder, the index and the configured reader. `build_if_missing`: True builds the configured
        corpus's index wherever there is none; DEFAULT_DIR_ONLY only in the default index directory, and any other
        directory without an index raises IndexNotFoundError before a model loads."""
        default_dir_only = build_if_missing == DEFAULT_DIR_ONLY
        if default_dir_only:
            check_index_dir(self.settings.index_dir)
        faiss.omp_set_num_threads(self.settings.faiss_threads)
        self.embedder.warm_up(say)
        if build_if_missing:
            ensure_index(self.settings, self.embedder, say, default_dir_only=default_dir_only)
        self.swap_index(self.load_current_index())
        self.reader(self.settings.reader)

    def load_current_index(self) -> CorpusIndex:
        """The index CURRENT names now, verified against its manifest and this pipeline's settings."""
        index_dir = Path(self.settings.index_dir)
        if is_sharded(index_dir):  # index/shards: the same checks, and a fan-out over the shards
            check = lambda manifest: check_embedder(manifest, self.embedder, index_dir)  # noqa: E731
            return load_sharded_for(index_dir, self.settings.index_config(), check)
        check_embedder(read_manifest(index_dir)[1], self.embedder, index_dir)
        return load_index(
            Path(self.settings.index_dir),
            self.settings.index_config(),
            self.embedder.model_name,
            self.embedder.fingerprint,
        )

    def make_snapshot(self, index: CorpusIndex) -> IndexSnapshot:
        """Everything derived from `index`, built before the swap so requests never see it half-made."""
        retriever = getattr(index, "retriever_class", Retriever)(
            index, self.embedder, self.settings.fusion_config(), expand_abbreviations=self.settings.expand_abbreviations
        )
        return IndexSnapshot(index, retriever, DocumentTerms(index.documents))

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
        kind = parse_choice(ReaderKind, kind, "reader")
        with self._lock:
            if kind not in self._readers:
                reader = build_reader(kind, self.settings, self.embedder, self.reader)
                reader.warm_up()
                self._readers[kind] = reader
            return self._readers[kind]

    def retrieve(
        self,
        question: str,
        top_k: int,
        mode: RetrievalMode,
        snapshot: IndexSnapshot | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[RetrievedPassage]:
        """The snapshot's retriever on one question (BM25 sees it with the corpus's abbreviations expanded)."""
        return self.retrieve_batch([question], [top_k], [mode], snapshot, timings)[0]

    def retrieve_batch(
        self,
        questions: Sequence[str],
        top_ks: Sequence[int],
        modes: Sequence[RetrievalMode],
        snapshot: IndexSnapshot | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[list[RetrievedPassage]]:
        """`retrieve` for several questions: one encoder call and one FAISS search for all of them."""
        return (snapshot or self.snapshot).retriever.run_batch(questions, top_ks, modes, timings=timings)

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
        chosen = self.reader(reader or self.settings.reader)
        read = self.expand_passages(passages, snap)
        exponent, weight = self.coverage_exponent(chosen), self.retrieval_weight(chosen)
        threshold = self.min_score(chosen) if min_score is None else min_score
        ranks = document_ranks([p.chunk.doc_id for p in passages])
        doc_ids = list(dict.fromkeys(p.chunk.doc_id for p in read))
        coverage = document_coverage(question, doc_ids, snap.document_terms, snap.index.lexical) if exponent > 0 else {}
        if self.settings.skip_unreachable and chosen.independent_passages:
            keep = reachable(doc_ids, ranks, coverage, exponent, weight, threshold, READER_SCORE_MAX)
            read = [p for p in read if p.chunk.doc_id in keep]
        candidates = chosen.run(question, read, snap.index.documents, n * 4) if read else []
        candidates = weigh_by_coverage(candidates, coverage, exponent)
        candidates = combine_with_retrieval(candidates, ranks, weight)
        ranked = rank_answers(candidates, n, threshold, self.secondary_ratio(chosen))
        documents = snap.index.documents
        return [a.with_citation(documents[a.doc_id]) if a.doc_id in documents else a for a in ranked]

    def available_readers(self) -> list[ReaderKind]:
        """The readers this pipeline can use: loaded ones, the heuristic, and the model-based ones when their
        model folder exists (a hub id counts once loaded: nothing here reaches for a hub)."""
        model = Path(self.settings.reader_model).expanduser()
        out = []
        for kind in ReaderKind:
            if kind in self._readers or not reader_entry(kind).uses_model or (model / "config.json").is_file():
                out.append(kind)
        return out

    def min_score(self, reader: Reader) -> float:
        """The abstention threshold in force for `reader`: the setting when given, else the reader's own."""
        return reader.min_score if self.settings.min_answer_score is None else self.settings.min_answer_score

    def coverage_exponent(self, reader: Reader) -> float:
        e = self.settings.coverage_exponent
        return reader.coverage_exponent if e is None else e

    def retrieval_weight(self, reader: Reader) -> float:
        w = self.settings.retrieval_weight
        return reader.retrieval_weight if w is None else w

    def secondary_ratio(self, reader: Reader) -> float:
        r = self.settings.secondary_ratio
        return reader.secondary_ratio if r is None else r

    def _prepare(self, ask: Ask) -> _Prepared:
        return _Prepared(
            question=validate_question(ask.question, self.settings.question_max_chars),
            top_k=ask.top_k or self.settings.top_k,
            mode=parse_choice(RetrievalMode, ask.retriever or self.settings.retriever, "retriever"),
            reader=parse_choice(ReaderKind, ask.reader or self.settings.reader, "reader"),
            max_answers=ask.max_answers,
            min_score=ask.min_score,
        )

    def _answer(self, items: Sequence[_Prepared], snap: IndexSnapshot) -> list[QAResult]:
        t0 = time.perf_counter()
        stages: dict[str, float] = {}
        retrieved = self.retrieve_batch(
            [i.question for i in items], [i.top_k for i in items], [i.mode for i in items], snap, stages
        )
        share = (time.perf_counter() - t0) * 1000 / len(items)
        results = []
        for item, passages in zip(items, retrieved, strict=True):
            r0 = time.perf_counter()
            answers = self.read(item.question, passages, item.reader, item.max_answers, item.min_score, snap)
            read_ms = (time.perf_counter() - r0) * 1000
            timings = {
                "embed": stages.get("embed", 0.0) / len(items),
                "search": stages.get("search", 0.0) / len(items),
                "retrieve": share,
                "read": read_ms,
                "total": share + read_ms,
            }
            results.append(
                QAResult(
                    item.question,
                    answers,
                    passages,
                    not answers,
                    timings,
                    index_fingerprint=snap.fingerprint,
                    missing_shards=list(getattr(passages, "missing_shards", ())),
                )
            )
        return results

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
        item = self._prepare(Ask(question, top_k, max_answers, retriever, reader, min_score))
        return self._answer([item], snapshot or self.snapshot)[0]

    def run_batch(self, asks: Sequence[Ask | str], snapshot: IndexSnapshot | None = None) -> list[QAResult]:
        """Answer several questions from one snapshot, each as `run` would, with retrieval batched (one encoder
        call, one FAISS search). Every question is checked before any work; a bad one raises BatchItemError."""
        items = []
        for i, ask in enumerate(asks):
            try:
                items.append(self._prepare(Ask(ask) if isinstance(ask, str) else ask))
            except ValueError as err:  # QuestionError, or an unknown retriever or reader
                raise BatchItemError(i, err) from err
        return self._answer(items, snapshot or self.snapshot) if items else []
