"""Does the cited document speak of what the question asks about? Question-term coverage as abstention evidence.

An extractive reader scores a span against the passage it is given; asked about a drug or trial that no document
mentions ("What was the median progression-free survival with tivozanib?"), it still finds the best-looking
survival figure of some other trial, often with a high score. What it cannot see is that the question's most
specific word is absent from the whole document. Coverage measures that: the share of the question's terms,
weighted by their IDF over the index, that occur in the answer's document,

    coverage = sum(idf(t) for t in question terms found in the document) / sum(idf(t) for t in question terms)

and an answer's reader score is multiplied by coverage ** exponent before it is interpolated with the retrieval
rank and compared with the threshold. The exponent is calibrated per reader with the threshold, on several dev
sets at once (`qa calibrate`): 0 turns the factor off. Terms are the index's own (`index.lexical.tokenize`:
stemmed, without stopwords), and a term no chunk uses weighs as much as the rarest one: the word the corpus has
never seen is the strongest sign that it cannot answer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Protocol

from index.documents import Document
from index.lexical import smoothed_idf, tokenize
from qa.answers import Answer
from qa.english import FUNCTION_WORDS


class TermStatistics(Protocol):
    """What coverage needs from an index's lexical side: its chunk count and each term's chunk frequency."""

    n_chunks: int

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]: ...


@lru_cache(maxsize=1)
def _function_stems() -> frozenset[str]:
    """Closed-class words as the index stems them: BM25's stopword list keeps "what", "which", "how", "does"...,
    which a question always has and an abstract rarely, so they would weigh as much as an unknown drug name."""
    return frozenset(tokenize(" ".join(FUNCTION_WORDS)))


def question_terms(question: str) -> list[str]:
    """The question's distinct content terms, as the index tokenises them."""
    return sorted(set(tokenize(question)) - _function_stems())


def question_idf(question: str, stats: TermStatistics) -> dict[str, float]:
    """The question's content terms and their IDF over the index's chunks."""
    terms = question_terms(question)
    df = stats.document_frequencies(terms)
    n = stats.n_chunks
    return {t: smoothed_idf(n, df.get(t, 0)) for t in terms}


def coverage(idf: Mapping[str, float], document_terms: set[str] | frozenset[str]) -> float:
    """IDF-weighted share of the question's terms found in the document; 1.0 for a question without terms."""
    total = sum(idf.values())
    if total <= 0:
        return 1.0
    return sum(w for t, w in idf.items() if t in document_terms) / total


DOCUMENT_TERMS_CACHED = 4096
"""Documents whose term sets one index snapshot keeps. Measured here: tokenising a median COVID-QA paper (23,000
characters) takes 6 ms, the longest (52,000) 14 ms, an abstract 0.6 ms; a question reads up to five documents, and
the top documents of related questions recur. 4,096 abstracts' term sets take a few MB."""


class DocumentTerms:
    """Each document's index terms, tokenised on first use and kept (least recently used out) for the life of the
    index snapshot that owns it, so a paper is not re-stemmed for every question that cites it."""

    def __init__(self, documents: Mapping[str, Document], max_cached: int = DOCUMENT_TERMS_CACHED) -> None:
        self.documents = documents
        self.max_cached = max_cached
        self._cache: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, doc_id: str) -> bool:
        return doc_id in self.documents

    def __call__(self, doc_id: str) -> frozenset[str]:
        with self._lock:
            terms = self._cache.get(doc_id)
            if terms is not None:
                self._cache.move_to_end(doc_id)
                return terms
        terms = frozenset(tokenize(self.documents[doc_id].text))  # outside the lock: other questions go on
        with self._lock:
            self._cache[doc_id] = terms
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        return terms


def document_coverage(
    question: str, doc_ids: Iterable[str], terms: DocumentTerms, stats: TermStatistics
) -> dict[str, float]:
    """Coverage of the question by each of the given documents (each distinct document once)."""
    idf = question_idf(question, stats)
    return {d: coverage(idf, terms(d)) for d in dict.fromkeys(doc_ids) if d in terms}


def weigh_by_coverage(answers: Sequence[Answer], doc_coverage: Mapping[str, float], exponent: float) -> list[Answer]:
    """Multiply each answer's reader score (and score) by its document's coverage ** exponent; the coverage is kept
    in the answer's details. Exponent 0 returns the answers unchanged."""
    if exponent <= 0:
        return list(answers)
    out = []
    for a in answers:
        c = doc_coverage.get(a.doc_id, 1.0)
        factor = c**exponent
        out.append(
            replace(
                a,
                score=a.score * factor,
                reader_score=a.reader_score * factor,
                details={**a.details, "coverage": round(c, 6)},
            )
        )
    return out
