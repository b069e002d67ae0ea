"""BM25 over stemmed chunk tokens (bm25s), saved as JSON and .npy files: never pickle."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from index.errors import IndexCorruptError

_TOKEN = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(STOPWORDS_EN)
# British -ise/-isation spellings fold onto -ize ("randomised" == "randomized"); applied to queries and documents alike.
_BRITISH = re.compile(r"(?<=\w{3})is(e|ed|es|ing|ation|ations)$")


DF_SMOOTHING = 0.5
"""Added to a document (or sentence) frequency in IDF = log((n + 1) / (df + 0.5)); a word never seen gets
log((n + 1) / 0.5), as informative as the rarest one. Usual BM25-style smoothing, set in the heuristic reader's
first version (76f0aa6) and shared by question coverage."""


def smoothed_idf(n: int, df: int | float) -> float:
    """IDF of a term held by `df` of `n` units (documents, chunks or sentences)."""
    return math.log((n + 1) / (df + DF_SMOOTHING))


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def _kept_words(text: str) -> list[str]:
    return [w for w in _TOKEN.findall(text.lower()) if w not in _STOP and (len(w) > 1 or w.isdigit())]


def _terms(words: list[str]) -> list[str]:
    return _stemmer().stemWords([_BRITISH.sub(r"iz\1", w) for w in words])


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without stopwords or lone letters, Snowball-stemmed; digits are kept."""
    return _terms(_kept_words(text))


def words_and_terms(text: str) -> list[tuple[str, str]]:
    """Each word `tokenize` keeps, lower-cased, beside the term it becomes."""
    words = _kept_words(text)
    return list(zip(words, _terms(words), strict=True))


@dataclass
class LexicalIndex:
    """BM25 scores of every chunk; `bm25` is None when the corpus has no indexable token at all."""

    bm25: bm25s.BM25 | None
    n_chunks: int
    k1: float = 1.2
    b: float = 0.75

    @classmethod
    def build(cls, texts: list[str], k1: float = 1.2, b: float = 0.75) -> LexicalIndex:
        tokens = [tokenize(t) for t in texts]
        if not any(tokens):  # bm25s raises on a vocabulary of stopwords only
            return cls(None, len(texts), k1, b)
        bm25 = bm25s.BM25(k1=k1, b=b)
        bm25.index(tokens, show_progress=False)
        return cls(bm25, len(texts), k1, b)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        if self.bm25 is None or k <= 0:
            return []
        vocab = self.bm25.vocab_dict
        q = [t for t in tokenize(query) if t in vocab]
        if not q:
            return []
        scores = self.bm25.get_scores(q)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        # Ties break on chunk order, so the same query always ranks the same way.
        top = sorted(top.tolist(), key=lambda i: (-float(scores[i]), i))
        return [(i, float(scores[i])) for i in top if scores[i] > 0]

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        """How many chunks hold each term (terms as `tokenize` makes them; absent ones are left out)."""
        if self.bm25 is None:
            return {}
        vocab, indptr = self.bm25.vocab_dict, self.bm25.scores["indptr"]  # one column of the score matrix a term
        cols = {t: vocab[t] for t in terms if t in vocab and vocab[t] + 1 < len(indptr)}
        return {t: int(indptr[c + 1] - indptr[c]) for t, c in cols.items()}

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self.bm25 is not None:
            self.bm25.save(str(folder), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, n_chunks: int, k1: float, b: float) -> LexicalIndex:
        if not folder.is_dir() or not any(folder.iterdir()):
            return cls(None, n_chunks, k1, b)
        try:
            bm25 = bm25s.BM25.load(str(folder), allow_pickle=False, load_corpus=False)
        except Exception as err:
            raise IndexCorruptError(
                f"{folder}: BM25 index unreadable ({type(err).__name__}: {err}); rebuild with `qa index`"
            ) from err
        if bm25.scores["num_docs"] != n_chunks:
            raise IndexCorruptError(
                f"{folder}: BM25 index has {bm25.scores['num_docs']} chunks, manifest says {n_chunks}"
            )
        return cls(bm25, n_chunks, k1, b)
