"""Run one configuration of the pipeline over a gold set and score every question.

Answers come from `QAPipeline.run` itself (or `QAPipeline.read` on the gold document, for oracle retrieval),
so the evaluation measures the system as it answers users. Document rankings for the retrieval metrics come
from the same retriever, read deeper: chunks collapse to documents by first occurrence, and the list is
extended past the system's usual depth only when that depth names fewer than 10 documents.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from common.errors import QAError
from eval.cache import DEFAULT_CACHE_DIR, cached_index_dir
from eval.datasets import Example, GoldSet
from eval.metrics import (
    RETRIEVAL_DEPTH,
    RETRIEVAL_MEASURES,
    NoAnswerScores,
    latency_summary,
    mean,
    no_answer_scores,
    retrieval_scores,
)
from index.documents import Chunk, Document
from index.embedder import Embedder
from index.errors import IndexCorruptError, IndexMismatchError
from index.retriever import RetrievalMode, RetrievedPassage
from qa.metrics import exact_match, f1_score
from qa.pipeline import QAPipeline, build_embedder, validate_question
from qa.readers.base import ReaderKind
from qa.settings import Settings

ORACLE = "oracle"


@dataclass(frozen=True, slots=True)
class RunConfig:
    """What one run varies. `reader=None`: retrieval only. `oracle`: the reader gets the gold documents."""

    retriever: RetrievalMode = RetrievalMode.HYBRID
    reader: ReaderKind | None = ReaderKind.HEURISTIC
    oracle: bool = False

    @property
    def name(self) -> str:
        source = ORACLE if self.oracle else self.retriever.value
        return source if self.reader is None else f"{source} + {self.reader.value}"


@dataclass(slots=True)
class QuestionRecord:
    """One question's outcome. Answer fields are None when no reader ran (retrieval-only gold sets)."""

    example: Example
    predicted: str | None
    score: float | None
    exact_match: float | None
    f1: float | None
    retrieved_doc_ids: list[str]  # documents in rank order, at most 10
    read_doc_ids: list[str]  # documents of the passages handed to reading, in order (before unreachable skips)
    latency_ms: float
    read: bool
    retrieval: dict[str, float] | None = None  # per-question retrieval metrics; None when not judged

    @property
    def abstained(self) -> bool | None:
        return self.predicted is None if self.read else None

    @property
    def gold_doc_rank(self) -> int | None:
        """1-based rank of the first relevant document among `retrieved_doc_ids`."""
        gold = set(self.example.gold_doc_ids)
        return next((r for r, d in enumerate(self.retrieved_doc_ids, start=1) if d in gold), None)

    @property
    def gold_read(self) -> bool:
        """Whether a gold document was among the passages the reader read: a miss without it is retrieval's."""
        return bool(set(self.example.gold_doc_ids) & set(self.read_doc_ids))

    @property
    def is_miss(self) -> bool:
        """Read: not an exact match. Retrieval only: the first-ranked document is not relevant."""
        if self.read:
            return (self.exact_match or 0.0) < 1.0
        return self.retrieval is not None and self.retrieval["mrr@10"] < 1.0


@dataclass(slots=True)
class RunResult:
    config: RunConfig
    records: list[QuestionRecord]
    answer: dict[str, Any]
    no_answer: NoAnswerScores
    retrieval: dict[str, float | None]
    latency_ms: dict[str, float | None]
    details: dict[str, Any] = field(default_factory=dict)


def document_ranking(passages: Sequence[RetrievedPassage], exclude: str | None = None) -> list[str]:
    """Documents by their best chunk: the order of first occurrence in the chunk ranking."""
    ranked = dict.fromkeys(p.chunk.doc_id for p in passages)
    ranked.pop(exclude, None)
    return list(ranked)


def select_examples(examples: Sequence[Example], limit: int | None, seed: int) -> list[Example]:
    """A seeded sample of `limit` questions, kept in file order (the first N of a file are often one document's)."""
    if limit is None or limit >= len(examples):
        return list(examples)
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def code_version() -> dict[str, Any]:
    """The commit the code runs from, and whether tracked files differ from it: which system a number is of."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "--short", "HEAD") or None,
        "git_dirty": bool(status) if status is not None else None,
    }


def seed_everything(seed: int) -> None:
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    torch.manual_seed(seed)


def summarize(records: Sequence[QuestionRecord]) -> tuple[dict[str, Any], NoAnswerScores, dict[str, float | None]]:
    """Overall answer, abstention and retrieval metrics from per-question records."""
    read = [r for r in records if r.read]
    answerable = [r for r in read if r.example.answerable]
    answer = {
        "exact_match": mean(r.exact_match or 0.0 for r in answerable),
        "f1": mean(r.f1 or 0.0 for r in answerable),
        "n_answerable": len(answerable),
        # SQuAD v2.0's headline numbers: every read question, an unanswerable one right when abstained on.
        "exact_match_all": mean(r.exact_match or 0.0 for r in read),
        "f1_all": mean(r.f1 or 0.0 for r in read),
    }
    no_answer = no_answer_scores((bool(r.abstained), not r.example.answerable) for r in read)
    judged = [r.retrieval for r in records if r.retrieval is not None]
    retrieval: dict[str, float | None] = {m: mean(s[m] for s in judged) for m in RETRIEVAL_MEASURES}
    retrieval["n"] = len(judged)
    return answer, no_answer, retrieval


def check_gold_documents(gold: Sequence[Document], indexed: Mapping[str, Document], index_dir: Path) -> None:
    """Refuse a prebuilt index that lacks gold documents or holds other text under their ids: its retrieval
    figures would not be the gold set's."""
    missing = [d.id for d in gold if d.id not in indexed]
    changed = [d.id for d in gold if d.id in indexed and (indexed[d.id].text, indexed[d.id].title) != (d.text, d.title)]
    if missing or changed:
        raise IndexMismatchError(
            f"the index in {index_dir} does not hold the gold set's corpus: {len(missing)} gold documents missing "
            f"(e.g. {missing[:3]}), {len(changed)} with other text (e.g. {changed[:3]}); build it from the same "
            "corpus, or drop --index-dir"
        )


class EvalRunner:
    """Evaluates configurations of the QA pipeline on one gold set; `warm_up` builds or reuses its index."""

    def __init__(
        self,
        gold: GoldSet,
        settings: Settings,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        seed: int = 0,
        limit: int | None = None,
        embedder: Embedder | None = None,
        show_progress: bool = False,
        say: Callable[[str], None] = lambda _m: None,
        index_dir: Path | None = None,
    ) -> None:
        """`index_dir`: evaluate this prebuilt index (sharded or not) instead of one built in `cache_dir`; it
        must hold every gold document, unchanged."""
        self.index_dir = None if index_dir is None else Path(index_dir)
        self.gold = gold
        self.settings = settings
        self.cache_dir = Path(cache_dir)
        self.seed = seed
        self.limit = limit
        self.show_progress = show_progress
        self.say = say
        self.examples = select_examples(gold.examples, limit, seed)
        self._embedder = embedder
        self._pipeline: QAPipeline | None = None
        self._chunks_by_doc: dict[str, list[Chunk]] = {}

    def warm_up(self) -> None:
        embedder = self._embedder or build_embedder(self.settings)
        embedder.warm_up(self.say)
        self._embedder = embedder
        for attempt in range(2):
            index_dir = self.index_dir or cached_index_dir(
                self.gold.documents,
                embedder,
                self.settings.index_config(),
                self.cache_dir,
                self.gold.corpus_source,
                show_progress=self.show_progress,
                say=self.say,
                force_rebuild=attempt > 0,
            )
            # The heuristic reader is always available; each run names its own reader explicitly.
            settings = self.settings.model_copy(update={"index_dir": index_dir, "reader": ReaderKind.HEURISTIC})
            pipeline = QAPipeline(settings, embedder=embedder)
            try:
                pipeline.warm_up(build_if_missing=False)
                break
            except IndexCorruptError as err:
                if attempt or self.index_dir is not None:
                    raise
                self.say(f"cached index damaged ({err}): rebuilding it")
        if self.index_dir is not None:
            check_gold_documents(self.gold.documents, pipeline.index.documents, self.index_dir)
        self._pipeline = pipeline
        for chunk in pipeline.index.chunks:
            self._chunks_by_doc.setdefault(chunk.doc_id, []).append(chunk)

    @property
    def pipeline(self) -> QAPipeline:
        if self._pipeline is None:
            raise RuntimeError("EvalRunner.warm_up() must run before use")
        return self._pipeline

    def reader_problem(self, kind: ReaderKind | str) -> str | None:
        """Why the reader cannot run here (None when it can): not configured, not installed, model not found."""
        try:
            self.pipeline.reader(kind)
        except (QAError, ImportError, OSError, ValueError) as err:
            return f"{type(err).__name__}: {err}"
        return None

    def configs(self, compare: bool, retriever: RetrievalMode, reader: ReaderKind, oracle: bool) -> list[RunConfig]:
        """The runs asked for: one, or every retriever (and oracle retrieval) with every reader."""
        if self.gold.retrieval_only:
            modes = list(RetrievalMode) if compare else [retriever]
            return [RunConfig(m, None) for m in modes]
        if not compare:
            return [RunConfig(retriever, reader, oracle)]
        readers = [reader, *(k for k in ReaderKind if k is not reader)]
        return [RunConfig(m, k) for k in readers for m in RetrievalMode] + [
            RunConfig(retriever, k, oracle=True) for k in readers
        ]

    def oracle_passages(self, example: Example) -> list[RetrievedPassage]:
        """Every chunk of every gold document, in document order: perfect retrieval."""
        chunks = [c for doc_id in example.gold_doc_ids for c in self._chunks_by_doc.get(doc_id, [])]
        return [RetrievedPassage(chunk=c, score=1.0, rank=r) for r, c in enumerate(chunks, start=1)]

    def _deep_ranking(self, question: str, mode: RetrievalMode, exclude: str | None) -> list[str]:
        """The first 10 documents: the system's own depth first, deeper retrieval only to fill the list."""
        total = len(self.pipeline.index.chunks)
        depth = max(self.settings.top_k, self.settings.fusion_candidates)
        ranked = document_ranking(self.pipeline.retriever.run(question, depth, mode), exclude)
        while len(ranked) < RETRIEVAL_DEPTH and depth < total:
            depth = min(depth * 4, total)
            deeper = document_ranking(self.pipeline.retriever.run(question, depth, mode), exclude)
            ranked += [d for d in deeper if d not in ranked]
        return ranked[:RETRIEVAL_DEPTH]

    def _one(self, example: Example, config: RunConfig) -> QuestionRecord:
        q = validate_question(example.question, self.settings.question_max_chars)
        exclude = example.id if self.gold.ignore_identical_ids else None
        if config.reader is None:
            t0 = time.perf_counter()
            ranked = self._deep_ranking(q, config.retriever, exclude)
            latency = (time.perf_counter() - t0) * 1000
            return QuestionRecord(example, None, None, None, None, ranked, [], latency, read=False)
        if config.oracle and example.gold_doc_ids:
            passages = self.oracle_passages(example)
            t0 = time.perf_counter()
            answers = self.pipeline.read(q, passages, reader=config.reader)
            latency = (time.perf_counter() - t0) * 1000
            ranked = document_ranking(passages, exclude)[:RETRIEVAL_DEPTH]
        else:  # oracle retrieval cannot hand over a document the gold set does not name: retrieve as usual
            t0 = time.perf_counter()
            result = self.pipeline.run(q, retriever=config.retriever, reader=config.reader)
            latency = (time.perf_counter() - t0) * 1000
            passages, answers = result.passages, result.answers
            ranked = self._deep_ranking(q, config.retriever, exclude)
        top = answers[0] if answers else None
        predicted = top.text if top is not None else None
        return QuestionRecord(
            example,
            predicted,
            float(top.score) if top is not None else None,
            exact_match(predicted, example.answers),
            f1_score(predicted, example.answers),
            ranked,
            document_ranking(passages),
            latency,
            read=True,
        )

    def run(self, config: RunConfig) -> RunResult:
        if config.reader is not None and self.gold.retrieval_only:
            raise QAError(f"{self.gold.name} is a retrieval-only gold set: no reader runs on it")
        if config.reader is not None:
            problem = self.reader_problem(config.reader)
            if problem:
                raise QAError(f"reader {config.reader.value!r} unavailable: {problem}")
        seed_everything(self.seed)
        records = []
        for example in tqdm(
            self.examples, desc=config.name, unit="q", disable=not self.show_progress, file=sys.stderr, leave=False
        ):
            try:
                records.append(self._one(example, config))
            except QAError as err:
                raise QAError(f"question {example.id!r}: {err}") from err
        per_query = retrieval_scores(
            {r.example.id: r.example.relevant for r in records}, {r.example.id: r.retrieved_doc_ids for r in records}
        )
        for r in records:
            r.retrieval = per_query.get(r.example.id)
        answer, no_answer, retrieval = summarize(records)
        return RunResult(
            config,
            records,
            answer,
            no_answer,
            retrieval,
            latency_summary([r.latency_ms for r in records]),
            details=self.describe(config),
        )

    def describe(self, config: RunConfig) -> dict[str, Any]:
        """Everything a number depends on, so two reports can be told apart."""
        s = self.settings
        manifest = self.pipeline.index.manifest
        return {
            "name": config.name,
            "retriever": ORACLE if config.oracle else config.retriever.value,
            "reader": config.reader.value if config.reader else None,
            "reader_model": s.reader_model if config.reader is ReaderKind.TRANSFORMERS else None,
            "reader_precision": (
                str(self.pipeline.reader(config.reader).active_precision)
                if config.reader is ReaderKind.TRANSFORMERS
                else None
            ),
            "oracle": config.oracle,
            "top_k": s.top_k,
            "max_answers": s.max_answers,
            "min_answer_score": self.pipeline.min_score(self.pipeline.reader(config.reader)) if config.reader else None,
            "retrieval_weight": (
                self.pipeline.retrieval_weight(self.pipeline.reader(config.reader)) if config.reader else None
            ),
            "coverage_exponent": (
                self.pipeline.coverage_exponent(self.pipeline.reader(config.reader)) if config.reader else None
            ),
            "secondary_ratio": (
                self.pipeline.secondary_ratio(self.pipeline.reader(config.reader)) if config.reader else None
            ),
            "expand_documents": s.expand_documents,
            "max_answer_tokens": s.max_answer_tokens,
            "fusion": {
                "method": s.fusion_method.value,
                "rrf_k": s.rrf_k,
                "dense_weight": s.dense_weight,
                "lexical_weight": s.lexical_weight,
                "candidates": s.fusion_candidates,
            },
            "embedding_model": manifest.model.name,
            "embedding_fingerprint": manifest.model.fingerprint,
            "chunking": manifest.chunking,
            "index_dir": str(self.pipeline.settings.index_dir),
            "index_fingerprint": manifest.fingerprint,
            "corpus": self.gold.corpus_source,
            "n_documents": manifest.corpus.n_documents,
            "n_chunks": manifest.corpus.n_chunks,
            "format": self.gold.format.value,
            "seed": self.seed,
            "limit": self.limit,
            "evaluated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **code_version(),
        }
