"""The rule-based reader on small invented abstracts: what each rule is for, checked where it could fail."""

from __future__ import annotations

from dataclasses import replace

import pytest

from index.documents import Chunk, Document
from index.passages import RetrievedPassage
from qa.question import analyse
from qa.readers.heuristic import HeuristicReader, _QuestionContext

DOCS = {
    d.id: d
    for d in [
        Document(
            "t1",
            "METHODS: Patients were randomised to zanubrutinib (160 mg twice daily) or ibrutinib (420 mg once daily). "
            "RESULTS: In total, 652 patients were enrolled across 113 sites. "
            "Median progression-free survival was 28.1 months (95% CI, 22.4 to 31.0) with zanubrutinib and "
            "19.9 months (95% CI, 16.1 to 23.4) with ibrutinib (hazard ratio, 0.65; P=0.002). "
            "The overall response rate (ORR) was 83.5% with zanubrutinib versus 74.2% with ibrutinib.",
        ),
        Document(
            "t2",
            "Grade 3 events occurred in 42% and 51% of the younger and older cohorts, respectively. "
            "The most common adverse events were neutropenia, hypertension, and atrial fibrillation. "
            "Zanubrutinib is a Bruton tyrosine kinase (BTK) inhibitor.",
        ),
    ]
}


# Time points and "respectively" across sentences; kept apart so DOCS's corpus statistics stay as they were.
TIME_DOCS = {
    d.id: d
    for d in [
        Document(
            "t3",
            "Median OS was 31.2 and 18.4 months in treatment-naive and pretreated patients, respectively. "
            "The 2-year OS rates were 61% in the treatment-naive and 47% in the pretreated groups; "
            "4-year OS rates were 33% and 21%, respectively.",
        ),
        Document(
            "t5",
            "The 1-year and 5-year relative survival rates of these patients are 83.2% and 64.3%, respectively.",
        ),
    ]
}


def passages(*doc_ids: str) -> list[RetrievedPassage]:
    out = []
    for rank, doc_id in enumerate(doc_ids or DOCS, start=1):
        doc = DOCS[doc_id]
        out.append(RetrievedPassage(Chunk.from_document(doc, 0, len(doc.text), 0), 1.0 / rank, rank))
    return out


@pytest.fixture(scope="module")
def reader() -> HeuristicReader:
    r = HeuristicReader()
    r.warm_up()
    return r


def top(reader: HeuristicReader, question: str, *doc_ids: str) -> str:
    answers = reader.run(question, passages(*doc_ids), DOCS, 5)
    for a in answers:  # the invariant every reader keeps
        assert DOCS[a.doc_id].text[a.start : a.end] == a.text
        assert a.passage.text[a.span_in_passage.start : a.span_in_passage.end] == a.text
        assert 0.0 <= a.score <= 1.0
    return answers[0].text if answers else ""


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What was median progression-free survival with zanubrutinib?", "28.1 months"),
        ("What was median progression-free survival with ibrutinib?", "19.9 months"),
        ("How many patients were enrolled?", "652"),
        ("How many sites took part?", "113"),
        ("What was the hazard ratio for progression?", "0.65"),
        ("What dose of ibrutinib was given?", "420 mg"),
        ("What was the overall response rate with zanubrutinib?", "83.5%"),
    ],
)
def test_typed_answers_near_the_question_words(reader: HeuristicReader, question: str, expected: str) -> None:
    assert top(reader, question, "t1") == expected


def test_confidence_interval_bounds_and_p_values_are_not_answers(reader: HeuristicReader) -> None:
    answers = reader.run("What was median progression-free survival with zanubrutinib?", passages("t1"), DOCS, 20)
    texts = [a.text for a in answers]
    assert texts[0] == "28.1 months"
    for bad in ("22.4", "31.0", "0.002", "22.4 to 31.0"):
        assert bad not in texts[:2]


def test_respectively_aligns_values_with_groups(reader: HeuristicReader) -> None:
    assert top(reader, "What proportion of the older cohort had grade 3 events?", "t2") == "51%"
    assert top(reader, "What proportion of the younger cohort had grade 3 events?", "t2") == "42%"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # the time point picks the clause; the groups named one sentence earlier pick the value
        ("What was the 4-year overall survival rate in pretreated patients?", "21%"),
        ("What was the 4-year overall survival rate in treatment-naive patients?", "33%"),
        ("What was the 2-year overall survival rate in pretreated patients?", "47%"),
        ("What was the 2-year overall survival rate in treatment-naive patients?", "61%"),
        # coordinated time points are the items themselves
        ("What is the 1-year survival rate of these patients?", "83.2%"),
        ("What is the 5-year survival rate of these patients?", "64.3%"),
    ],
)
def test_respectively_without_items_inherits_them_and_time_points_must_agree(
    reader: HeuristicReader, question: str, expected: str
) -> None:
    doc = TIME_DOCS["t3" if "overall" in question else "t5"]
    got = reader.run(question, [RetrievedPassage(Chunk.from_document(doc, 0, len(doc.text), 0), 1.0, 1)], TIME_DOCS)
    assert got and got[0].text == expected


def test_topic_words_weigh_less_for_locating_the_answer_inside_a_document(reader: HeuristicReader) -> None:
    # "xylitoma" names the document's topic in three of four sentences; "nausea" stands in one
    doc = Document(
        "t6",
        "We randomly assigned 120 patients with recurrent xylitoma to drug Q or placebo. "
        "Xylitoma has no standard treatment. Progression of xylitoma was assessed every 3 months. "
        "The most common adverse event was nausea.",
    )
    docs = {"t6": doc}
    corpus = reader._corpus_for(docs)
    prof = reader._profile(corpus, doc)
    question = "Was xylitoma or nausea reported?"
    groups = reader._keyword_groups(corpus, analyse(question))
    q = _QuestionContext(analyse(question), groups, sum(w for _, w in groups), set(), set(), frozenset())
    weights = {min(v): w for v, w in reader._locating_weights(q, prof).groups}
    corpus_idf = {min(v): w for v, w in groups}
    assert corpus_idf["xylitoma"] == pytest.approx(corpus_idf["nausea"])  # one document: same corpus IDF
    # but one locates the answer and the other does not: 4 sentences, in 1 and in 3 of them, half the weight
    # depending on it: (0.5 + 0.5 * log(5 / 1.5) / log(10)) / (0.5 + 0.5 * log(5 / 3.5) / log(10))
    assert weights["nausea"] / weights["xylitoma"] == pytest.approx(1.3184, abs=1e-3)
    flat = HeuristicReader(weights=replace(reader.weights, within_document=0.0))
    assert flat._locating_weights(q, prof) is q  # switched off: corpus IDF alone


def test_a_numeral_belongs_to_the_word_before_it(reader: HeuristicReader) -> None:
    doc = Document("t7", "Approval of lenvatinib rested on the phase III ZENITH trial in unresectable disease.")
    chunk = Chunk.from_document(doc, 0, len(doc.text), 0)
    got = reader.run(
        "Which trial was the basis for the approval of lenvatinib?", [RetrievedPassage(chunk, 1.0, 1)], {"t7": doc}
    )
    assert got and got[0].text == "ZENITH"


def test_respectively_without_any_stated_items_changes_nothing(reader: HeuristicReader) -> None:
    doc = Document("t4", "The 4-year OS rates were 33% and 21%, respectively, in this cohort of patients.")
    docs = {"t4": doc}
    got = reader.run(
        "What was the 4-year overall survival rate in pretreated patients?",
        [RetrievedPassage(Chunk.from_document(doc, 0, len(doc.text), 0), 1.0, 1)],
        docs,
        5,
    )
    by_text = {a.text: a.score for a in got}
    assert by_text["33%"] == pytest.approx(by_text["21%"], rel=0.2)  # no group named: neither is preferred


def test_list_question_returns_the_whole_coordination(reader: HeuristicReader) -> None:
    assert (
        top(reader, "What were the most common adverse events?", "t2")
        == "neutropenia, hypertension, and atrial fibrillation"
    )


def test_abbreviation_in_text_matches_long_form_in_question(reader: HeuristicReader) -> None:
    # the document says "ORR" later; the question spells it out
    assert top(reader, "What was the overall response rate with ibrutinib?", "t1") == "74.2%"


def test_no_passages_or_no_key_terms_give_no_answer(reader: HeuristicReader) -> None:
    assert reader.run("How many patients?", [], DOCS, 5) == []
    assert reader.run("what is the?", passages(), DOCS, 5) == []


def test_answers_are_inside_the_cited_passage(reader: HeuristicReader) -> None:
    doc = DOCS["t1"]
    start = doc.text.index("Median")
    chunk = Chunk.from_document(doc, start, len(doc.text), 1)
    answers = reader.run("How many patients were enrolled?", [RetrievedPassage(chunk, 1.0, 1)], DOCS, 10)
    assert all(a.start >= start for a in answers)
    assert "652" not in [a.text for a in answers]


def test_statistics_follow_the_documents_handed_in_not_a_reused_address(reader: HeuristicReader) -> None:
    # Two mappings of the same size, the first freed before the second exists: CPython often gives the second the
    # first one's address, which an id()-keyed cache mistook for the same corpus (stale IDF and sentence profiles).
    question = "What was the response rate?"
    first = Document("same-id", "The response rate was 10%. Nothing else was measured.")
    second = Document("same-id", "Survival improved. The response rate was 55% in this study.")
    for doc in (first, second):
        docs = {doc.id: doc}
        got = reader.run(question, [RetrievedPassage(Chunk.from_document(doc, 0, len(doc.text), 0), 1.0, 1)], docs)
        assert got and got[0].text == ("10%" if doc is first else "55%")
        assert doc.text[got[0].start : got[0].end] == got[0].text
        del docs
