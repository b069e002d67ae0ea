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
stemmed, without stopwords), and a term no chunk uses weighs as much as the rarest one: the drug name the corpus
has never seen is the strongest sign that it cannot answer.

Not every word says what a question is about. Everyday English words ("stand for", "what kind", "affect",
"still") are phrasing: an abstract that answers the question often words it otherwise. A word is everyday when
it is a whole word of the bundled reader's WordPiece vocabulary (BERT uncased: 30,522 pieces drawn from English
Wikipedia and books), which few drug, gene or trial names are. Such a word weighs `EVERYDAY_TERM_WEIGHT` of its
IDF, and nothing when no chunk of the corpus uses it (then it is the question's wording, not a missing topic).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from index.documents import Document
from index.lexical import smoothed_idf, tokenize, words_and_terms
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


EVERYDAY_TERM_WEIGHT = 0.5
"""Share of its IDF an everyday word of the question weighs (0 when the corpus never uses it). Chosen by
`python -m eval.bench.coverage_separation` (docs/results/coverage-separation.json) on three sets at once, by
the AUC with which coverage tells each question's gold document from the best-ranked other one (seed_dev /
COVID-QA dev / PubMedQA): plain IDF 0.939 / 0.775 / 0.952; 0.25 0.967 / 0.783 / 0.944; 0.5 0.973 / 0.780 /
0.956; 0.75 0.975 / 0.779 / 0.958. 0.5 and 0.75 tie on the mean (0.903, 0.904); 0.5 leaves fewer gold
documents under 0.8 coverage, where a calibrated exponent cuts hardest (5 / 33 / 105 against 5 / 40 / 119; plain
IDF 15 / 42 / 127)."""

VOCABULARY_FILE = Path(__file__).resolve().parent / "data" / "reader" / "tokenizer.json"
"""The bundled reader's tokenizer: its WordPiece vocabulary defines everyday words, whichever reader reads."""


@lru_cache(maxsize=1)
def everyday_words() -> frozenset[str]:
    """Whole alphabetic words of the bundled reader's WordPiece vocabulary (continuation pieces "##..." and
    special tokens left out)."""
    vocab = json.loads(VOCABULARY_FILE.read_text(encoding="utf-8"))["model"]["vocab"]
    return frozenset(w for w in vocab if w.isalpha() and w.isascii())


def _content_terms(question: str) -> dict[str, bool]:
    """The question's distinct content terms, as the index tokenises them, each with whether an everyday word of
    the question gives it."""
    function = _function_stems()
    vocabulary = everyday_words()
    terms: dict[str, bool] = {}
    for word, term in words_and_terms(question):
        if term not in function:
            terms[term] = terms.get(term, False) or word in vocabulary
    return terms


def question_terms(question: str) -> list[str]:
    """The question's distinct content terms, as the index tokenises them."""
    return sorted(_content_terms(question))


def question_idf(
    question: str,
    stats: TermStatistics,
    everyday_weight: float = EVERYDAY_TERM_WEIGHT,
    unseen_everyday_weight: float = 0.0,
) -> dict[str, float]:
    """The question's content terms and their weights: IDF over the index's chunks, times `everyday_weight` for a
    term from an everyday word the corpus uses and `unseen_everyday_weight` for one it never uses (1.0 and 1.0:
    plain IDF)."""
    terms = _content_terms(question)
    df = stats.document_frequencies(sorted(terms))
    n = stats.n_chunks
    out = {}
    for t, everyday in sorted(terms.items()):
        seen = df.get(t, 0) > 0
        factor = (everyday_weight if seen else unseen_everyday_weight) if everyday else 1.0
        out[t] = factor * smoothed_idf(n, df.get(t, 0))
    return out


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


def coverage_factor(doc_coverage: Mapping[str, float], doc_id: str, exponent: float) -> float:
    """What an answer's score from `doc_id` is multiplied by: its document's coverage ** exponent (a document
    without a coverage counts as fully covering)."""
    return doc_coverage.get(doc_id, 1.0) ** exponent


def weigh_by_coverage(answers: Sequence[Answer], doc_coverage: Mapping[str, float], exponent: float) -> list[Answer]:
    """Multiply each answer's reader score (and score) by its document's coverage ** exponent; the coverage is kept
    in the answer's details. Exponent 0 returns the answers unchanged."""
    if exponent <= 0:
        return list(answers)
    out = []
    for a in answers:
        factor = coverage_factor(doc_coverage, a.doc_id, exponent)
        c = doc_coverage.get(a.doc_id, 1.0)
        out.append(
            replace(
                a,
                score=a.score * factor,
                reader_score=a.reader_score * factor,
                details={**a.details, "coverage": round(c, 6)},
            )
        )
    return out
