"""Corpus statistics: IDF, abbreviations learned from the documents, and sentence profiles, cached per mapping."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from index.abbreviations import find_abbreviations
from index.documents import Document
from index.lexical import smoothed_idf, tokenize
from index.sentences import split_sentences
from qa.readers.heuristic.sentences import DocProfile, cached_stems, profile_sentence


@dataclass(slots=True)
class Corpus:
    idf: dict[str, float]
    n_docs: int
    short_to_long: dict[str, set[frozenset[str]]]  # "OS" -> {{overall, surviv}}
    long_to_short: list[tuple[frozenset[str], str]]
    profiles: dict[str, DocProfile] = field(default_factory=dict)

    @property
    def max_idf(self) -> float:
        """The IDF of a word no document uses."""
        return smoothed_idf(self.n_docs, 0)

    def term_idf(self, stem: str) -> float:
        # A word the corpus never uses is as informative as the rarest one.
        return self.idf.get(stem, self.max_idf)

    def profile(self, doc: Document) -> DocProfile:
        """The document's sentence profiles, computed on first use."""
        prof = self.profiles.get(doc.id)
        if prof is None:
            sents = [profile_sentence(doc, s, e, self.short_to_long) for s, e in split_sentences(doc.text)]
            stems = frozenset(st for s in sents for ws in s.stems for st in ws)
            prof = DocProfile(sents, stems)
            self.profiles[doc.id] = prof
        return prof


def build_corpus(documents: Mapping[str, Document]) -> Corpus:
    df: dict[str, int] = {}
    short_to_long: dict[str, set[frozenset[str]]] = {}
    for doc in documents.values():
        for st in set(tokenize(doc.text)):
            df[st] = df.get(st, 0) + 1
        for ab in find_abbreviations(doc.text):
            long = frozenset(s for w in re.findall(r"\w+", ab.long.lower()) for s in cached_stems(w))
            if long:
                short_to_long.setdefault(ab.short, set()).add(long)
    n = len(documents)
    idf = {t: smoothed_idf(n, c) for t, c in df.items()}
    long_to_short = [(long, short) for short, longs in short_to_long.items() for long in longs]
    return Corpus(idf, n, short_to_long, long_to_short)


class CorpusCache:
    """The statistics of the last documents mapping handed in, recomputed when another mapping comes."""

    def __init__(self) -> None:
        self._corpus: Corpus | None = None
        # The mapping the statistics were computed from, held so that its identity cannot be reused: keyed by id()
        # alone, a new mapping (a swapped index, a test's dict) allocated where a freed one was got stale statistics.
        self._documents: Mapping[str, Document] | None = None
        self._lock = threading.Lock()

    def get(self, documents: Mapping[str, Document]) -> Corpus:
        with self._lock:
            if self._corpus is not None and self._documents is documents and self._corpus.n_docs == len(documents):
                return self._corpus
            self._corpus = build_corpus(documents)
            self._documents = documents
            return self._corpus
