"""Deduplicate, rank and abstain: shared by every reader so they differ only in how they read."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from index.sentences import split_sentences
from qa.answers import Answer
from qa.coverage import coverage_factor

_NORM = re.compile(r"\W+")


def answer_key(answer: Answer) -> str:
    return _NORM.sub(" ", answer.text.lower()).strip()


def sentence_key(answer: Answer) -> tuple[str, int]:
    """The document and start offset of the sentence the answer stands in (chunks are cut at sentence
    boundaries, so every passage holding the sentence gives the same key)."""
    span = answer.span_in_passage
    for start, end in split_sentences(answer.passage.text):
        if start <= span.start < end:
            return answer.doc_id, answer.passage.start + start
    return answer.doc_id, answer.start


def rank_answers(
    answers: Iterable[Answer], max_answers: int, min_score: float, secondary_ratio: float = 0.0
) -> list[Answer]:
    """Best first; one answer per normalised text (the same fact from overlapping chunks or documents), one per
    overlapping document span, and one per sentence: the other values of the sentence that holds a better
    answer belong to another arm, group or time point ("16.4 months with STRIDE and 13.8 months with
    sorafenib") and are not answers to the same question. Nothing under `min_score`, and no answer after the
    first under `secondary_ratio` times the first's score: a runner-up far below the best is most often another
    fact of the passage (the rate of the adverse event beside the survival asked for), not a second answer."""
    ordered = sorted(answers, key=lambda a: (-a.score, a.doc_id, a.start, a.end))
    kept: list[Answer] = []
    seen_text: set[str] = set()
    seen_sentences: set[tuple[str, int]] = set()
    for ans in ordered:
        if ans.score < min_score or (kept and ans.score < secondary_ratio * kept[0].score):
            break
        key = answer_key(ans)
        if key in seen_text:
            continue
        if any(k.doc_id == ans.doc_id and k.start < ans.end and ans.start < k.end for k in kept):
            continue
        sentence = sentence_key(ans)
        if sentence in seen_sentences:
            continue
        seen_text.add(key)
        seen_sentences.add(sentence)
        kept.append(ans)
        if len(kept) >= max_answers:
            break
    return kept


def document_ranks(doc_ids_in_rank_order: Sequence[str]) -> dict[str, int]:
    """1-based rank of each document by its best retrieved passage."""
    ranks: dict[str, int] = {}
    for doc_id in doc_ids_in_rank_order:
        ranks.setdefault(doc_id, len(ranks) + 1)
    return ranks


def combine_with_retrieval(answers: Iterable[Answer], doc_rank: dict[str, int], weight: float) -> list[Answer]:
    """BERTserini-style interpolation of reader and retrieval evidence.

    The retrieval side is 1/rank of the answer's document: rank is comparable across dense, BM25 and fused
    retrieval, whose raw scores live on unrelated scales. A document not retrieved at all counts as last + 1.
    """
    if weight <= 0:
        return list(answers)
    out = []
    for a in answers:
        r = retrieval_evidence(a.doc_id, doc_rank)
        out.append(a.with_score(interpolate(a.reader_score, r, weight), retrieval=r))
    return out


def retrieval_evidence(doc_id: str, doc_rank: dict[str, int]) -> float:
    """1/rank of the document; one not retrieved at all counts as last + 1."""
    return 1.0 / doc_rank.get(doc_id, len(doc_rank) + 1)


def interpolate(reader_score: float, retrieval: float, weight: float) -> float:
    """The final score: the reader's and the retrieval evidence, mixed by `weight`."""
    return (1.0 - weight) * reader_score + weight * retrieval


def reachable(
    doc_ids: Iterable[str],
    doc_rank: dict[str, int],
    doc_coverage: dict[str, float],
    exponent: float,
    weight: float,
    threshold: float,
    reader_max: float = 1.0,
) -> set[str]:
    """The documents an answer could reach `threshold` from: an answer's final score is
    `combine_with_retrieval(weigh_by_coverage(reader score))`, and a reader score of at most `reader_max` bounds it.
    A document whose bound stays under the threshold gives no answer the pipeline would list, so its passages
    need not be read. The bound goes through the same functions as an answer's score (`coverage_factor`,
    `retrieval_evidence`, `interpolate`), and rounding is monotone, so no answer that reaches the threshold is ever
    from a document left out."""
    out = set()
    for d in doc_ids:
        bound = reader_max
        if exponent > 0:
            bound = bound * coverage_factor(doc_coverage, d, exponent)
        if weight > 0:
            bound = interpolate(bound, retrieval_evidence(d, doc_rank), weight)
        if bound >= threshold:
            out.add(d)
    return out
