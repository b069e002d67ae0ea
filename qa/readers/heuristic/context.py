"""What one question brings to the scoring: its key terms with their weights, and the words an answer must add."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from index.lexical import smoothed_idf
from qa.question import AnswerType, QuestionAnalysis, analyse
from qa.readers.heuristic.corpus import Corpus
from qa.readers.heuristic.respectively import question_time_points
from qa.readers.heuristic.sentences import DocProfile, cached_stems

# Key terms kept per question, the weightiest first: a question is a handful of them, and a 2,000-character one
# must not buy 2,000 terms of work. A cost bound (f80fea6), not tuned on answers.
MAX_KEY_TERMS = 24


@dataclass(slots=True)
class QuestionContext:
    analysis: QuestionAnalysis
    groups: list[tuple[frozenset[str], float]]
    total_idf: float
    keywords: set[str]
    novelty: set[str]  # words an answer should not merely repeat (question words, long forms of its acronyms)
    head: frozenset[str]
    respectively: dict[tuple[int, int], float] = field(default_factory=dict)
    series: dict[tuple[int, str], list[tuple[int, int]]] = field(default_factory=dict)
    idf: dict[str, float] = field(default_factory=dict)
    idf_max: float = 1.0
    time_points: dict[str, str] = field(default_factory=dict)  # "5-year" in the question -> {"year": "5"}


def keyword_groups(corpus: Corpus, analysis: QuestionAnalysis) -> list[tuple[frozenset[str], float]]:
    """One group per question key term, with the alternatives that count as a match (its abbreviation)."""
    q = set(analysis.keywords)
    groups: list[tuple[frozenset[str], float]] = []
    for stem in analysis.keywords:
        variants = {stem}
        # A short form in the question ("PFS") is matched by the words of its long form, and vice versa.
        for long, short in corpus.long_to_short:
            sstems = cached_stems(short)
            if stem in sstems:
                continue
            if stem in long and long <= q:
                variants |= sstems
        groups.append((frozenset(variants), corpus.term_idf(stem)))
    return groups


def question_context(question: str, corpus: Corpus) -> QuestionContext | None:
    """The question's context over this corpus; None when it has no key term."""
    analysis = analyse(question)
    groups = keyword_groups(corpus, analysis)
    if not groups:
        return None
    if len(groups) > MAX_KEY_TERMS:
        groups = sorted(groups, key=lambda g: -g[1])[:MAX_KEY_TERMS]
    keywords = set(analysis.keywords)
    novelty = keywords - set(analysis.head_stems)
    if analysis.answer_type is not AnswerType.EXPANSION:  # there the long form *is* the answer
        for word in re.findall(r"[\w-]+", question):
            for long in corpus.short_to_long.get(word, ()):
                novelty |= long - set(analysis.head_stems)
    q = QuestionContext(analysis, groups, sum(idf for _, idf in groups), keywords, novelty, analysis.head_stems)
    q.time_points = question_time_points(question)
    q.idf = corpus.idf
    q.idf_max = corpus.max_idf
    return q


def locating_weights(q: QuestionContext, prof: DocProfile, within_document: float) -> QuestionContext:
    """Key-term weights for finding the answer inside one document: corpus IDF times (in part, the share
    `within_document`) the term's IDF over the document's sentences."""
    lam = within_document
    if lam <= 0 or not prof.sentences:
        return q
    n = len(prof.sentences)
    top = smoothed_idf(n, 0)
    groups = []
    for variants, idf in q.groups:
        sf = sum(1 for sent in prof.sentences if any(st & variants for st in sent.stems))
        groups.append((variants, idf * ((1 - lam) + lam * smoothed_idf(n, sf) / top)))
    return replace(q, groups=groups, total_idf=sum(w for _, w in groups) or q.total_idf)
