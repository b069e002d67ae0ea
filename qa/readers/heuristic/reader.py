"""`HeuristicReader`: passages in, typed answer spans scored by the rules of the sibling modules out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from index.documents import Document
from index.embedder import Embedder
from index.passages import RetrievedPassage
from qa.answers import Answer, make_answer
from qa.question import QuestionAnalysis
from qa.readers.heuristic.candidates import FIT, PHRASE_FIT, sentence_candidates
from qa.readers.heuristic.context import QuestionContext, keyword_groups, locating_weights, question_context
from qa.readers.heuristic.corpus import Corpus, CorpusCache
from qa.readers.heuristic.respectively import respectively, stated_items
from qa.readers.heuristic.scoring import DEFAULT_WEIGHTS, ReaderWeights, score
from qa.readers.heuristic.sentences import DocProfile


class HeuristicReader:
    """Answer-type-driven span extraction; see the package docstring."""

    name = "heuristic"
    independent_passages = False
    """Numbers stated "respectively" and series of values are gathered across the passages read together."""
    # Chosen by `qa calibrate --reader heuristic` as the best mean F1 over five dev sets at once (seed_dev and
    # COVID-QA dev, each as retrieved and with the gold documents removed, and a SQuAD 2.0 dev sample; the
    # command is scripts/release_reader.sh's; docs/results/calibration-heuristic.json, 2026-12-04, at the default
    # top_k of 3): mean F1 0.620 (0.612 at top_k 5, where threshold 0.6 and exponent 6 were chosen), against
    # 0.516 for the settings chosen on seed_dev alone (threshold 0.30, the rest off), which answered 22% of
    # seed_dev's questions with the gold abstract removed, 48% of COVID-QA dev's and 70% of the SQuAD 2.0
    # sample's unanswerable ones.
    min_score = 0.65
    """Abstain below this final score (after coverage and retrieval weighting)."""
    retrieval_weight = 0.5
    """BERTserini interpolation with 1/document rank (`qa.ranking.combine_with_retrieval`)."""
    coverage_exponent = 2.0
    """Question coverage of the answer's document (`qa.coverage`), to this power: an answer from a document that
    lacks the question's rarest words (a drug no abstract names) is the heuristic's commonest confident error."""
    secondary_ratio = 1.0
    """A further answer is listed only when it scores as high as the first."""

    def __init__(
        self,
        embedder: Embedder | None = None,
        max_answer_tokens: int = 30,
        weights: ReaderWeights = DEFAULT_WEIGHTS,
    ) -> None:
        self.embedder = embedder
        self.max_answer_tokens = max_answer_tokens
        self.weights = weights
        self._statistics = CorpusCache()

    def warm_up(self) -> None:
        """Nothing heavy: corpus statistics are computed on first use for the documents handed in."""

    def _corpus_for(self, documents: Mapping[str, Document]) -> Corpus:
        return self._statistics.get(documents)

    def _profile(self, corpus: Corpus, doc: Document) -> DocProfile:
        return corpus.profile(doc)

    def _keyword_groups(self, corpus: Corpus, analysis: QuestionAnalysis) -> list[tuple[frozenset[str], float]]:
        return keyword_groups(corpus, analysis)

    def _locating_weights(self, q: QuestionContext, prof: DocProfile) -> QuestionContext:
        return locating_weights(q, prof, self.weights.within_document)

    def run(
        self,
        question: str,
        passages: Sequence[RetrievedPassage],
        documents: Mapping[str, Document],
        max_answers: int = 5,
    ) -> list[Answer]:
        if not passages:
            return []
        corpus = self._corpus_for(documents)
        q = question_context(question, corpus)
        if q is None:
            return []
        analysis = q.analysis
        kind = analysis.answer_type
        fits = FIT.get(kind, {})
        phrase_fits = PHRASE_FIT.get(kind, {})
        scored: dict[tuple[str, int, int], Answer] = {}
        per_doc: dict[str, tuple[float, QuestionContext]] = {}  # document coverage and locating weights
        for p in passages:
            doc = documents.get(p.chunk.doc_id)
            if doc is None:
                continue
            prof = self._profile(corpus, doc)
            if doc.id not in per_doc:  # an expanded abstract comes as several passages: weigh its terms once
                per_doc[doc.id] = (
                    sum(idf for v, idf in q.groups if v & prof.stems) / q.total_idf,
                    self._locating_weights(q, prof),
                )
            doc_cov, qd = per_doc[doc.id]  # qd shares q's respectively/series maps (dataclasses.replace)
            stated: list[set[str]] | None = None  # items of the last "respectively" sentence so far
            for sent in prof.sentences:
                previous = stated
                if kind.numeric and "respectively" in sent.text:
                    stated = stated_items(sent) or stated
                if sent.end <= p.chunk.start or sent.start >= p.chunk.end:
                    continue
                cands = sentence_candidates(sent, fits, phrase_fits, analysis, self.max_answer_tokens)
                if kind.numeric:
                    q.respectively.update(respectively(sent, cands, q.keywords, corpus.idf, previous, q.time_points))
                    for c in cands:
                        if not sent.group[c.i]:
                            q.series.setdefault((id(sent), c.kind), []).append((c.i, c.j))
                    for spans in q.series.values():
                        spans.sort()
                for cand in cands:
                    if not (p.chunk.start <= cand.start and cand.end <= p.chunk.end):
                        continue  # the span must lie inside the passage it is cited from
                    if cand.j - cand.i + 1 > self.max_answer_tokens:
                        continue
                    fit = fits.get(cand.kind) or phrase_fits.get(cand.kind, 0.0)
                    if fit <= 0:
                        continue
                    value, details = score(cand, fit, qd, doc_cov, p.dense_score, self.weights)
                    key = (doc.id, cand.start, cand.end)
                    if key in scored and scored[key].score >= value:
                        continue
                    scored[key] = make_answer(
                        question,
                        doc.text,
                        doc.id,
                        p.chunk.id,
                        p.chunk.start,
                        p.chunk.end,
                        cand.start,
                        cand.end,
                        self.name,
                        min(1.0, value),
                        retrieval_score=p.score,
                        answer_type=kind.value,
                        details=details,
                    )
        ranked = sorted(scored.values(), key=lambda a: (-a.score, a.doc_id, a.start, a.end))
        return ranked[:max_answers]
