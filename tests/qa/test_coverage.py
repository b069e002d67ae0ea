"""Question coverage: the IDF-weighted share of the question's terms that the answer's document holds."""

from __future__ import annotations

import math

import pytest

from index.documents import Document
from index.lexical import LexicalIndex, tokenize
from qa.answers import make_answer
from qa.coverage import (
    EVERYDAY_TERM_WEIGHT,
    DocumentTerms,
    coverage,
    document_coverage,
    everyday_words,
    question_idf,
    question_terms,
    weigh_by_coverage,
)

DOCS = {
    "a": Document("a", "Sorafenib improved overall survival in hepatocellular carcinoma: median 10.7 months."),
    "b": Document("b", "Lenvatinib was noninferior to sorafenib; median overall survival 13.6 months."),
    "c": Document("c", "Regorafenib after sorafenib: median overall survival 10.6 months."),
}


@pytest.fixture(scope="module")
def lexical() -> LexicalIndex:
    return LexicalIndex.build([d.text for d in DOCS.values()])


def answer(doc_id: str, text: str, score: float):
    doc = DOCS[doc_id]
    start = doc.text.index(text)
    return make_answer("q", doc.text, doc_id, f"{doc_id}#0", 0, len(doc.text), start, start + len(text), "t", score)


def test_document_frequencies_count_chunks_per_term(lexical) -> None:
    terms = ["sorafenib", "lenvatinib", "surviv", "tivozanib"]
    brute = {t: sum(t in set(tokenize(d.text)) for d in DOCS.values()) for t in terms}
    assert lexical.document_frequencies(terms) == {t: n for t, n in brute.items() if n}
    assert lexical.n_chunks == 3


def test_a_term_no_chunk_holds_weighs_most_and_common_terms_little(lexical) -> None:
    idf = question_idf("What was the median overall survival with tivozanib?", lexical)
    assert idf["tivozanib"] == pytest.approx(math.log(4 / 0.5))
    assert idf["tivozanib"] > idf["surviv"] > 0
    # Every document holds median, overall and survival, none tivozanib: coverage is what those common words weigh.
    cov = document_coverage(
        "What was the median overall survival with tivozanib?", ["a", "b"], DocumentTerms(DOCS), lexical
    )
    expected = (idf["median"] + idf["overal"] + idf["surviv"]) / sum(idf.values())
    assert cov == {"a": pytest.approx(expected), "b": pytest.approx(expected)} and expected < 0.3


def test_everyday_words_are_whole_words_of_the_bundled_vocabulary() -> None:
    words = everyday_words()
    assert {"stand", "kind", "median", "survival", "still"} <= words
    assert not {"sorafenib", "tivozanib", "lenvatinib", "ttup", "cldn6"} & words
    assert all(w.isalpha() and not w.startswith("#") for w in words) and len(words) > 15_000


def test_everyday_words_weigh_less_and_nothing_when_the_corpus_never_uses_them(lexical) -> None:
    plain = question_idf("What does sorafenib stand for in median survival?", lexical, 1.0, 1.0)
    idf = question_idf("What does sorafenib stand for in median survival?", lexical)
    assert idf["sorafenib"] == plain["sorafenib"] > 0  # not an everyday word: full IDF
    assert idf["median"] == pytest.approx(EVERYDAY_TERM_WEIGHT * plain["median"])  # everyday, in the corpus
    assert idf["stand"] == 0.0 and plain["stand"] == pytest.approx(math.log(4 / 0.5))  # everyday, never used
    # the wording "stand for" no longer counts against the document that names the drug and the survival
    assert coverage(idf, set(tokenize(DOCS["a"].text))) == pytest.approx(1.0)
    assert coverage(plain, set(tokenize(DOCS["a"].text))) < 0.5
    # an unknown drug name still weighs as the rarest term: the tivozanib question stays uncovered
    unknown = question_idf("What was the median overall survival with tivozanib?", lexical)
    assert unknown["tivozanib"] == pytest.approx(math.log(4 / 0.5))


def test_the_document_that_names_the_drug_covers_the_question(lexical) -> None:
    cov = document_coverage(
        "What was the median overall survival with lenvatinib?", ["a", "b", "a"], DocumentTerms(DOCS), lexical
    )
    assert list(cov) == ["a", "b"]
    assert cov["b"] == pytest.approx(1.0) and cov["a"] < 0.5
    assert coverage({}, set()) == 1.0  # a question of stopwords only is not penalised


def test_weighing_multiplies_reader_score_and_score_and_exponent_zero_is_off() -> None:
    answers = [answer("a", "10.7 months", 0.8), answer("b", "13.6 months", 0.6)]
    same = weigh_by_coverage(answers, {"a": 0.5, "b": 1.0}, 0.0)
    assert same == answers
    weighed = weigh_by_coverage(answers, {"a": 0.5, "b": 1.0}, 2.0)
    assert [a.score for a in weighed] == pytest.approx([0.2, 0.6])
    assert [a.reader_score for a in weighed] == pytest.approx([0.2, 0.6])
    assert weighed[0].details["coverage"] == 0.5
    assert (weighed[0].text, weighed[0].start, weighed[0].end) == (answers[0].text, answers[0].start, answers[0].end)


def test_question_words_are_not_terms() -> None:
    assert question_terms("What was the median overall survival with lenvatinib?") == [
        "lenvatinib",
        "median",
        "overal",
        "surviv",
    ]
    assert question_terms("Which of these did they use, and how many?") == []


def test_document_terms_are_tokenised_once_and_the_cache_is_bounded() -> None:
    terms = DocumentTerms(DOCS, max_cached=2)
    first = terms("a")
    assert first == frozenset(tokenize(DOCS["a"].text))
    assert terms("a") is first  # from the cache, not tokenised again
    terms("b"), terms("c")  # "a" is now the least recently used of three: out
    assert terms("a") is not first and terms("a") == first
    assert "a" in terms and "zzz" not in terms
