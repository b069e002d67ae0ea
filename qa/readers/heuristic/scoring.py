"""A candidate's score in [0, 1]: a weighted sum of evidence terms (`ReaderWeights`) times shape factors.

Only the `ReaderWeights.within_document` share was measured (docs/evaluation.md, "Reader weights": two dev sets).
The shape factors below were set by hand when their rule was written (the commit in brackets); neither git history
nor the README records a measurement of them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from qa.question import AnswerType
from qa.readers.heuristic.alignment import head_related, series_distance
from qa.readers.heuristic.candidates import Candidate
from qa.readers.heuristic.context import QuestionContext
from qa.readers.heuristic.respectively import qualifier_conflict
from qa.readers.heuristic.sentences import (
    ARTICLES,
    SEPARATORS,
    cached_stems,
    clause_final,
    distance,
    first_stem,
    is_content,
    is_named,
)

ROMAN_OR_NUMBER = re.compile(r"(?:[IVX]+[abc]?|\d+(?:\.\d+)?)", re.IGNORECASE)
INTERVAL_WORDS = frozenset({"ci", "interval", "iqr", "range", "interquartile"})


@dataclass(frozen=True, slots=True)
class ReaderWeights:
    """Evidence weights (sum to 1) and the distance scale; chosen on dev data, see docs/evaluation.md."""

    proximity: float = 0.45
    sentence: float = 0.2
    document: float = 0.25
    dense: float = 0.1
    distance_scale: float = 5.0
    # Share of a key term's weight that depends on how rare it is among the document's own sentences: the words
    # that name the document's topic ("desmoid tumor") say little about *where* in it the answer stands.
    within_document: float = 0.5


DEFAULT_WEIGHTS = ReaderWeights()  # the reader's default (a frozen instance, shared)


# Evidence: a passage's dense similarity counts from DENSE_FLOOR up, in full at DENSE_FLOOR + DENSE_SPAN (76f0aa6).
DENSE_FLOOR = 0.2
DENSE_SPAN = 0.5

# Shape, every candidate: 1 - REPEAT_PENALTY * (share of its content words the question already has)^2 (76f0aa6).
REPEAT_PENALTY = 0.85
# Phrases and lists: ends in a participle, an adverb or an article rather than a noun (76f0aa6).
NON_NOUN_END_FACTOR = 0.3
# Phrases and lists: starts with the question's head noun ("inhibitors X and Y") (76f0aa6).
LEADING_HEAD_FACTOR = 0.6
# Lists: per word cut off the last item that is not a question word (c701636).
LIST_TRIM_FACTOR = 0.9
# Phrases: per content word beyond the first (76f0aa6).
PHRASE_LENGTH_FACTOR = 0.93
# Phrases: only the head noun itself (76f0aa6).
HEAD_ONLY_FACTOR = 0.1
# Phrases: only numerals ("phase III") (e9fcc33).
NUMERAL_ONLY_FACTOR = 0.3
# Phrases: a numeral cut from the word before it ("III REFLECT" out of "phase III REFLECT") (e1c21d0).
LEADING_NUMERAL_FACTOR = 0.8
# Entity phrases: no word looks like a name (76f0aa6).
UNNAMED_ENTITY_FACTOR = 0.85
# Entity phrases: SPECIFICITY_FLOOR + SPECIFICITY_WEIGHT * mean relative IDF of the content words (e9fcc33).
SPECIFICITY_FLOOR = 0.75
SPECIFICITY_WEIGHT = 0.25
# Entity phrases: per lowercase word leading a name ("multicentric REFLECT") (76f0aa6).
LOWERCASE_LEAD_FACTOR = 0.85
# Phrases, head-noun questions: tied to the head noun (HEAD_RELATED_FACTOR) or not (HEAD_UNRELATED_FACTOR) (76f0aa6).
HEAD_RELATED_FACTOR = 1.3
HEAD_UNRELATED_FACTOR = 0.85
# Numbers: words looked back at for confidence-interval and p-value markers (76f0aa6).
MARKER_LOOKBACK = 4
# Numbers: a confidence-interval (or range) bound, not the estimate (76f0aa6).
INTERVAL_BOUND_FACTOR = 0.4
# Numbers: a p-value (76f0aa6).
P_VALUE_FACTOR = 0.2
# Numbers: the second half of "12.1 v 10.3 months", where the whole comparison is the better span (76f0aa6).
COMPARISON_SECOND_FACTOR = 0.6
# Numbers: a time point other than the question's ("3-year" for "5-year") stands before the value (611cc80).
TIME_POINT_CONFLICT_FACTOR = 0.5
# Asides: a phrase or list in the aside of a key term other than the head noun restates what the question names
# ("atezolizumab, a PD-L1 inhibitor,"), unless the question asks for a description (76f0aa6).
DESCRIBES_OWNER_FACTOR = 0.7
# Asides: a key term inside the same aside within this many tokens makes it the candidate's own context (76f0aa6).
ASIDE_KEYWORD_REACH = 4
# Asides, owner not a key term: a clause-final bracket (a result, "... than B (25.2 vs 13.5 months).") or any
# other aside (76f0aa6).
CLAUSE_FINAL_ASIDE_FACTOR = 0.9
OTHER_ASIDE_FACTOR = 0.75


def bracket_factor(cand: Candidate, keywords: set[str], head: frozenset[str], describes_owner: bool) -> float:
    """A bracketed aside belongs to the word before it: "donafenib (0.2 g) or sorafenib (0.4 g)".

    A name or phrase in an aside of a question word ("atezolizumab, a PD-L1 inhibitor,") restates what
    the question already names, so it is discounted unless the question asks what something is.
    """
    sent = cand.sent
    gid = sent.group[cand.i]
    if not gid:
        return 1.0
    first = sent.group.index(gid)
    owner = first - 1
    while owner >= 0 and sent.words[owner] in SEPARATORS:
        owner -= 1
    if owner >= 0 and sent.stems[owner] & keywords:
        # "kinases (VEGFR 1-3, ...)" after the head noun lists instances: that is the answer.
        return DESCRIBES_OWNER_FACTOR if describes_owner and not (sent.stems[owner] & head) else 1.0
    near_inside = any(
        sent.group[t] == gid
        and (sent.stems[t] & keywords)
        and distance(sent, t, cand.i if t < cand.i else cand.j) <= ASIDE_KEYWORD_REACH
        for t in range(len(sent.words))
        if not (cand.i <= t <= cand.j)
    )
    if near_inside:
        return 1.0
    return CLAUSE_FINAL_ASIDE_FACTOR if clause_final(sent, gid) else OTHER_ASIDE_FACTOR


def score(
    cand: Candidate,
    fit: float,
    q: QuestionContext,
    doc_cov: float,
    dense: float | None,
    w: ReaderWeights,
) -> tuple[float, dict[str, float]]:
    """The candidate's score (evidence * fit * shape, shape capped at 1) and its parts."""
    sent = cand.sent
    analysis = q.analysis
    series = q.series.get((id(sent), cand.kind), [])
    corpus_idf, idf_max = q.idf, q.idf_max
    prox_sum = sent_sum = 0.0
    for variants, idf in q.groups:
        best = 0.0
        found = False
        for t, stems in enumerate(sent.stems):
            if not (stems & variants):
                continue
            found = True
            if cand.i <= t <= cand.j:
                continue  # the candidate repeating a question word is not evidence for itself
            best = max(best, math.exp(-series_distance(cand, t, series) / w.distance_scale))
        if found:
            sent_sum += idf
        prox_sum += idf * best
    prox = prox_sum / q.total_idf
    sent_cov = sent_sum / q.total_idf
    dense_term = sent_cov if dense is None else min(1.0, max(0.0, (dense - DENSE_FLOOR) / DENSE_SPAN))
    evidence = w.proximity * prox + w.sentence * sent_cov + w.document * doc_cov + w.dense * dense_term

    shape = 1.0
    idx = range(cand.i, cand.j + 1)
    content = [t for t in idx if is_content(sent.words[t])]
    if content:
        repeated = sum(1 for t in content if cached_stems(sent.words[t]) & q.novelty) / len(content)
        shape *= 1.0 - REPEAT_PENALTY * repeated**2  # an answer may share a word with the question, not be it
    if cand.kind in {"phrase", "list"}:
        last = sent.words[cand.j].lower()
        if (last.endswith(("ed", "ing", "ly")) and "-" not in last) or last in ARTICLES:
            shape *= NON_NOUN_END_FACTOR  # phrases end in a noun
        if q.head and (cached_stems(sent.words[cand.i]) & q.head) and cand.i != cand.j:
            shape *= LEADING_HEAD_FACTOR  # "inhibitors X and Y": the head noun introduces the answer, not part of it
        if cand.kind == "list":
            # "... and atrial fibrillation": cutting the last item short needs a reason (question words)
            shape *= LIST_TRIM_FACTOR ** sum(1 for t in cand.trimmed if not (sent.stems[t] & (q.novelty | q.head)))
        if cand.kind == "phrase":
            shape *= PHRASE_LENGTH_FACTOR ** max(0, len(content) - 1)
            if all(cached_stems(sent.words[t]) <= q.head for t in content):
                shape *= HEAD_ONLY_FACTOR  # only the head noun itself
            named = [is_named(sent, t) for t in content]
            if all(ROMAN_OR_NUMBER.fullmatch(sent.words[t]) for t in content):
                shape *= NUMERAL_ONLY_FACTOR  # "phase III": a numeral is not a thing
            elif ROMAN_OR_NUMBER.fullmatch(sent.words[cand.i]) and cand.i > 0 and is_content(sent.words[cand.i - 1]):
                shape *= LEADING_NUMERAL_FACTOR  # "III REFLECT" out of "phase III REFLECT": it belongs to "phase"
            if analysis.answer_type is AnswerType.ENTITY:
                if not any(named):
                    shape *= UNNAMED_ENTITY_FACTOR
                # Specific (rare) words name things; "treatment" or "mechanism" rarely answer "which ...?"
                spec = sum(min(1.0, corpus_idf.get(first_stem(sent.words[t]), idf_max) / idf_max) for t in content)
                shape *= SPECIFICITY_FLOOR + SPECIFICITY_WEIGHT * spec / len(content)
                lead = 0
                while lead < len(named) - 1 and not named[lead] and any(named[lead + 1 :]):
                    lead += 1
                shape *= LOWERCASE_LEAD_FACTOR**lead  # "multicentric REFLECT": drop the lowercase modifier
        if q.head and cand.kind == "phrase":
            # "Which kinase ...?": the answer names a kind of kinase ("AMP-activated protein kinase"), or is a
            # name standing next to the word ("the REFLECT trial", "kinase (AMPK)").
            named_cand = any(is_named(sent, t) for t in content)
            related = head_related(cand, q.head, q.novelty, len(content), named_cand)
            shape *= HEAD_RELATED_FACTOR if related else HEAD_UNRELATED_FACTOR
    describes = cand.kind in {"phrase", "list"} and analysis.answer_type is not AnswerType.DESCRIPTION
    shape *= bracket_factor(cand, q.keywords, q.head, describes_owner=describes)
    if analysis.answer_type.numeric:
        before = [x.lower() for x in sent.words[max(0, cand.i - MARKER_LOOKBACK) : cand.i]]
        if not (q.keywords & {"ci", "interv", "rang"}) and set(before) & INTERVAL_WORDS:
            shape *= INTERVAL_BOUND_FACTOR  # a confidence-interval bound, not the estimate
        if "p" in before[-2:] and before[-1] in {"p", "=", "<", ">"}:
            shape *= P_VALUE_FACTOR  # a p-value
        if before[-2:] and before[-1] in {"v", "vs", "versus"} and before[-2][:1].isdigit():
            shape *= COMPARISON_SECOND_FACTOR  # the second half of "12.1 v 10.3 months": the comparison is better
        shape *= q.respectively.get((id(sent), cand.i), 1.0)
        if q.time_points and qualifier_conflict(cand, q.time_points):
            shape *= TIME_POINT_CONFLICT_FACTOR
    total = evidence * fit * min(shape, 1.0)
    details = {"proximity": prox, "sentence": sent_cov, "document": doc_cov, "fit": fit, "shape": shape}
    return total, details
