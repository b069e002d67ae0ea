"""Choose the reader's abstention threshold and retrieval weight on several dev sets at once.

Each question is read once per passage configuration, keeping every candidate answer (the pipeline's own
reader, passages and `combine_with_retrieval`); the sweep then replays the pipeline's final step
(`combine_with_retrieval` then `rank_answers`) for every (weight, threshold) pair, so a chosen setting gives
exactly the answers `/ask` gives.

Three ways to ask a question of a gold set:
- `retrieved`: as the service does (retrieve, expand, read);
- `oracle`: the gold document's chunks only (SQuAD v2.0 dev: the paragraph, half of them unanswerable);
- `without-gold`: retrieval with the gold documents taken out, so the question has no answer in what is read
  (dropped when a gold answer string occurs in a document that is still read): what a user asking about
  something the corpus does not hold meets. Its correct outcome is "no answer found".

Scores follow SQuAD 2.0: an unanswerable question scores 1 when the system abstains, else 0; an answerable
one scores its EM/F1, 0 when it abstains. Plain F1 scores a wrong answer and an abstention on an answerable
question alike (0); every row also counts the wrong answers, and `--wrong-answer-cost` chooses on a utility that
charges for them (`WRONG_ANSWER_COST`).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from eval.datasets import Example
from eval.runner import EvalRunner
from index.passages import RetrievedPassage
from qa.answers import Answer
from qa.coverage import document_coverage, weigh_by_coverage
from qa.metrics import exact_match, f1_score
from qa.ranking import combine_with_retrieval, document_ranks, rank_answers
from qa.readers.base import ReaderKind
from qa.readers.combined import combine_candidates
from runtimes.models import files_digest

CANDIDATES_FORMAT = "biomed-qa-candidates/1"
"""The version of `write_candidates`' file (read back only by the same format)."""
WRONG_ANSWER_COST = 0.0
"""What a wrong answer costs in the utility the setting is chosen on: an answer with F1 > 0 earns its F1, a right
abstention on an unanswerable question earns 1, an abstention on an answerable one 0, and an answer with F1 0
(or any answer to an unanswerable question) costs this much. 0 is SQuAD 2.0 F1, the metric issue 11's targets use;
1 is "effective reliability" Phi_1 (Whitehead et al. 2022, Reliable Visual Question Answering). Measured on the
shipped reader's five dev sets at top_k 3 (run 10 with swapped questions; `qa calibrate --from-candidates
var/cal/trained-candidates.json.gz --reader transformers --wrong-answer-cost 1`): at 1 the chosen setting gives 78
wrong answers and 521 abstentions where 0 gives 138 and 374, but mean F1 0.692 against 0.712 and seed_dev F1 0.635
against 0.723 (15 abstentions of 45): the default stays 0 and every row reports its wrong answers."""
WITHOUT_GOLD_EXTRA = 20
"""Passages retrieved beyond top_k before the gold documents' passages are dropped."""


class Condition(StrEnum):
    RETRIEVED = "retrieved"
    ORACLE = "oracle"
    WITHOUT_GOLD = "without-gold"


@dataclass(slots=True)
class QuestionCandidates:
    """One question's reading: candidate answers before ranking and abstention, with the document ranks."""

    id: str
    golds: tuple[str, ...]  # empty: the correct outcome is no answer
    candidates: list[Answer]
    doc_ranks: dict[str, int]
    heuristic: list[Answer] | None = None  # the heuristic reader's candidates on the same passages
    n_candidates: int = 12
    doc_coverage: dict[str, float] = field(default_factory=dict)  # the question's coverage by each candidate's document

    def candidates_at(self, heuristic_weight: float | None, coverage_exponent: float = 0.0) -> list[Answer]:
        """The reader's candidates, or the combined reader's at this heuristic weight (`CombinedReader.run`),
        weighed by question coverage as `QAPipeline.read` weighs them."""
        candidates = self.candidates
        if heuristic_weight is not None and self.heuristic is not None:
            candidates = combine_candidates(self.candidates, self.heuristic, heuristic_weight, self.n_candidates)
        return weigh_by_coverage(candidates, self.doc_coverage, coverage_exponent)

    @property
    def answerable(self) -> bool:
        return bool(self.golds)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "golds": list(self.golds),
            "candidates": [a.to_json() for a in self.candidates],
            "doc_ranks": self.doc_ranks,
            "heuristic": None if self.heuristic is None else [a.to_json() for a in self.heuristic],
            "n_candidates": self.n_candidates,
            "doc_coverage": self.doc_coverage,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> QuestionCandidates:
        heuristic = obj.get("heuristic")
        return cls(
            id=obj["id"],
            golds=tuple(obj["golds"]),
            candidates=[Answer.from_json(a) for a in obj["candidates"]],
            doc_ranks={k: int(v) for k, v in obj["doc_ranks"].items()},
            heuristic=None if heuristic is None else [Answer.from_json(a) for a in heuristic],
            n_candidates=int(obj["n_candidates"]),
            doc_coverage={k: float(v) for k, v in obj["doc_coverage"].items()},
        )


def weights_digest(model: str | Path) -> str | None:
    """sha256 (16 hex) of a reader folder's weight files, None for a hub id: what the candidates were read with.
    Unlike the folder's whole digest it ignores calibration.json, which calibrating from the candidates rewrites."""
    folder = Path(model)
    files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")) if folder.is_dir() else []
    if not files:
        return None
    return files_digest(files, folder)


def write_candidates(path: Path, sets: dict[str, list[QuestionCandidates]], meta: dict[str, Any]) -> None:
    """Every set's candidates and how they were read (`meta`), gzipped JSON: `qa calibrate --from-candidates`
    sweeps them again without reading a question (seconds instead of the reading's minutes)."""
    doc = {
        "format": CANDIDATES_FORMAT,
        "meta": meta,
        "sets": {name: [q.to_json() for q in qs] for name, qs in sets.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        json.dump(doc, fh)
    tmp.replace(path)


def load_candidates(path: Path) -> tuple[dict[str, list[QuestionCandidates]], dict[str, Any]]:
    """`write_candidates`' file read back; a ValueError names the file when it is not one."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            doc = json.load(fh)
        if doc.get("format") != CANDIDATES_FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, expected {CANDIDATES_FORMAT!r}")
        sets = {name: [QuestionCandidates.from_json(q) for q in qs] for name, qs in doc["sets"].items()}
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a candidates file written by qa calibrate --save-candidates ({err})") from err
    return sets, doc["meta"]


def collect(
    runner: EvalRunner,
    condition: Condition,
    reader: ReaderKind = ReaderKind.TRANSFORMERS,
    examples: Sequence[Example] | None = None,
    on_progress: Callable[[int], None] = lambda _n: None,
    with_heuristic: bool = False,
) -> list[QuestionCandidates]:
    """Read every example under `condition`; `runner` is warmed up on the example's gold set. With
    `with_heuristic`, the heuristic reader's candidates on the same passages are kept too (for the combined
    reader's sweep)."""
    pipeline = runner.pipeline
    n_candidates = pipeline.settings.max_answers * 4  # what `QAPipeline.read` asks the reader for
    top_k = pipeline.settings.top_k
    documents = pipeline.index.documents
    out: list[QuestionCandidates] = []
    for ex in runner.examples if examples is None else examples:
        golds = tuple(ex.answers)
        on_progress(1)
        if condition is Condition.ORACLE:
            passages = runner.oracle_passages(ex)
            if not passages:
                continue
            read = pipeline.expand_passages(passages)
        else:
            depth = top_k + (WITHOUT_GOLD_EXTRA if condition is Condition.WITHOUT_GOLD else 0)
            passages = pipeline.retrieve(ex.question, depth, pipeline.settings.retriever)
            if condition is Condition.WITHOUT_GOLD:
                gold_docs = set(ex.gold_doc_ids)
                if not gold_docs:
                    continue
                kept = [p for p in passages if p.chunk.doc_id not in gold_docs][:top_k]
                passages = [RetrievedPassage(chunk=p.chunk, score=p.score, rank=r) for r, p in enumerate(kept, start=1)]
            read = pipeline.expand_passages(passages)
            if condition is Condition.WITHOUT_GOLD:
                texts = [documents[d].text.lower() for d in {p.chunk.doc_id for p in read}]
                if any(g.lower() in t for g in golds for t in texts):
                    continue  # the answer is still in what is read: not a question without an answer
                golds = ()
        candidates = pipeline.reader(reader).run(ex.question, read, documents, n_candidates)
        heuristic = (
            pipeline.reader(ReaderKind.HEURISTIC).run(ex.question, read, documents, n_candidates)
            if with_heuristic
            else None
        )
        ranks = document_ranks([p.chunk.doc_id for p in passages])
        doc_ids = [a.doc_id for a in (*candidates, *(heuristic or ()))]
        coverage = document_coverage(ex.question, doc_ids, pipeline.snapshot.document_terms, pipeline.index.lexical)
        out.append(QuestionCandidates(ex.id, golds, candidates, ranks, heuristic, n_candidates, coverage))
    return out


def _ranked(
    question: QuestionCandidates,
    weight: float,
    heuristic_weight: float | None,
    coverage_exponent: float,
    max_answers: int,
    threshold: float,
    secondary_ratio: float = 0.0,
) -> list[Answer]:
    """The pipeline's last steps (`QAPipeline.read`) replayed on the kept candidates."""
    candidates = question.candidates_at(heuristic_weight, coverage_exponent)
    ranked = combine_with_retrieval(candidates, question.doc_ranks, weight)
    return rank_answers(ranked, max_answers, threshold, secondary_ratio)


def top_answer(
    question: QuestionCandidates, weight: float, heuristic_weight: float | None = None, coverage_exponent: float = 0.0
) -> Answer | None:
    """The answer the pipeline ranks first before the threshold: `rank_answers` always keeps its first candidate,
    so with a threshold the pipeline answers this one exactly when its score reaches the threshold."""
    ranked = _ranked(question, weight, heuristic_weight, coverage_exponent, 1, float("-inf"))
    return ranked[0] if ranked else None


def decide(
    question: QuestionCandidates,
    weight: float,
    threshold: float,
    heuristic_weight: float | None = None,
    coverage_exponent: float = 0.0,
) -> Answer | None:
    """The pipeline's final step for one question: the top answer, or None (abstain)."""
    top = top_answer(question, weight, heuristic_weight, coverage_exponent)
    return top if top is not None and top.score >= threshold else None


@dataclass(frozen=True, slots=True)
class _Reading:
    """One question's top answer at fixed weights, scored once for every threshold of the sweep."""

    answerable: bool
    score: float | None  # the top answer's score; None: no candidate at all
    em: float
    f1: float


def _read(question: QuestionCandidates, top: Answer | None) -> _Reading:
    if top is None:
        return _Reading(question.answerable, None, 0.0, 0.0)
    if not question.answerable:
        return _Reading(False, top.score, 0.0, 0.0)
    return _Reading(True, top.score, exact_match(top.text, question.golds), f1_score(top.text, question.golds))


def _summary(
    readings: Sequence[_Reading], threshold: float, wrong_answer_cost: float = WRONG_ANSWER_COST
) -> dict[str, Any]:
    """SQuAD 2.0-style EM/F1 over all questions, split by answerable or not, abstention precision/recall, the
    wrong answers (F1 0, or any answer to an unanswerable question) and the utility that charges for them."""
    em = f1 = has_em = has_f1 = 0.0
    n = n_has = n_no = abstained = abstained_right = wrong_on_unanswerable = wrong = 0
    for r in readings:
        answered = r.score is not None and r.score >= threshold
        n += 1
        if r.answerable:
            n_has += 1
            e, f = (r.em, r.f1) if answered else (0.0, 0.0)
            has_em, has_f1, em, f1 = has_em + e, has_f1 + f, em + e, f1 + f
            wrong += answered and r.f1 == 0.0
        else:
            n_no += 1
            em, f1 = em + (not answered), f1 + (not answered)
            wrong_on_unanswerable += answered
            wrong += answered
        if not answered:
            abstained += 1
            abstained_right += not r.answerable
    return {
        "questions": n,
        "answerable": n_has,
        "unanswerable": n_no,
        "em": round(em / n, 4) if n else None,
        "f1": round(f1 / n, 4) if n else None,
        "has_answer_em": round(has_em / n_has, 4) if n_has else None,
        "has_answer_f1": round(has_f1 / n_has, 4) if n_has else None,
        "no_answer_precision": round(abstained_right / abstained, 4) if abstained else None,
        "no_answer_recall": round(abstained_right / n_no, 4) if n_no else None,
        "answered_unanswerable": round(wrong_on_unanswerable / n_no, 4) if n_no else None,
        "abstained": abstained,
        "wrong": wrong,
        "utility": round((f1 - wrong_answer_cost * wrong) / n, 4) if n else None,
    }


def score(
    questions: Iterable[QuestionCandidates],
    weight: float,
    threshold: float,
    heuristic_weight: float | None = None,
    coverage_exponent: float = 0.0,
) -> dict[str, Any]:
    """SQuAD 2.0-style EM/F1 over all questions, split by answerable or not, and abstention precision/recall."""
    readings = [_read(q, top_answer(q, weight, heuristic_weight, coverage_exponent)) for q in questions]
    return _summary(readings, threshold)


def sweep(
    sets: dict[str, list[QuestionCandidates]],
    weights: Sequence[float],
    thresholds: Sequence[float],
    heuristic_weights: Sequence[float | None] = (None,),
    coverage_exponents: Sequence[float] = (0.0,),
    wrong_answer_cost: float = WRONG_ANSWER_COST,
) -> list[dict[str, Any]]:
    """Every (heuristic weight, coverage exponent, retrieval weight, threshold): each set's scores and their mean
    F1 and mean utility (every set counts the same). A heuristic weight of None is the reader alone; an exponent
    of 0, no coverage. Each question is ranked once per (heuristic weight, exponent, retrieval weight);
    thresholds only cut."""
    rows = []
    for hw in heuristic_weights:
        for ce in coverage_exponents:
            for w in weights:
                readings = {name: [_read(q, top_answer(q, w, hw, ce)) for q in qs] for name, qs in sets.items()}
                for t in thresholds:
                    per_set = {name: _summary(r, t, wrong_answer_cost) for name, r in readings.items()}
                    f1s = [s["f1"] for s in per_set.values() if s["f1"] is not None]
                    utilities = [s["utility"] for s in per_set.values() if s["utility"] is not None]
                    rows.append(
                        {
                            "heuristic_weight": hw,
                            "coverage_exponent": ce,
                            "retrieval_weight": w,
                            "threshold": t,
                            "mean_utility": round(sum(utilities) / len(utilities), 4),
                            "mean_f1": round(sum(f1s) / len(f1s), 4),
                            "sets": per_set,
                        }
                    )
    return rows


def listed(
    question: QuestionCandidates,
    row: dict[str, Any],
    max_answers: int,
    secondary_ratio: float,
) -> list[Answer]:
    """Every answer the pipeline lists for the question at a sweep row's settings and this secondary ratio."""
    return _ranked(
        question,
        row["retrieval_weight"],
        row["heuristic_weight"],
        row["coverage_exponent"],
        max_answers,
        row["threshold"],
        secondary_ratio,
    )


def _listing_summary(questions: Sequence[QuestionCandidates], lists: Sequence[list[Answer]]) -> dict[str, Any]:
    """How right the listed answers are, each counting the same: per question the mean F1 of what is listed
    (an answerable question with nothing listed scores 0, an unanswerable one 1 when nothing is listed, else 0),
    and the answers after the first on their own."""
    list_f1 = 0.0
    secondary_f1: list[float] = []
    listed_n = answered = 0
    for q, answers in zip(questions, lists, strict=True):
        if answers:
            answered += 1
            listed_n += len(answers)
        if not q.answerable:
            list_f1 += not answers
            continue
        f1s = [f1_score(a.text, q.golds) for a in answers]
        list_f1 += sum(f1s) / len(f1s) if f1s else 0.0
        secondary_f1 += f1s[1:]
    n = len(questions)
    return {
        "list_f1": round(list_f1 / n, 4) if n else None,
        "answers_per_answered": round(listed_n / answered, 3) if answered else None,
        "secondary_listed": listed_n - answered,
        "secondary_f1": round(sum(secondary_f1) / len(secondary_f1), 4) if secondary_f1 else None,
    }


def secondary_sweep(
    sets: dict[str, list[QuestionCandidates]],
    row: dict[str, Any],
    ratios: Sequence[float],
    max_answers: int,
) -> list[dict[str, Any]]:
    """At a chosen row's ranking and threshold (the top answer and abstention stay as they are), every secondary
    ratio: each set's listing scores and their mean list F1 (every set counts the same)."""
    out = []
    for ratio in ratios:
        per_set = {
            name: _listing_summary(qs, [listed(q, row, max_answers, ratio) for q in qs]) for name, qs in sets.items()
        }
        f1s = [s["list_f1"] for s in per_set.values() if s["list_f1"] is not None]
        out.append({"secondary_ratio": ratio, "mean_list_f1": round(sum(f1s) / len(f1s), 4), "sets": per_set})
    return out


def best_secondary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Highest mean list F1; ties go to the higher ratio (list fewer answers when it costs nothing)."""
    return max(rows, key=lambda r: (r["mean_list_f1"], r["secondary_ratio"]))


def best(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Highest mean utility (`WRONG_ANSWER_COST`), then mean F1; ties go to the lower weights and exponent, then
    the higher threshold (abstain when unsure)."""
    return max(
        rows,
        key=lambda r: (
            r["mean_utility"],
            r["mean_f1"],
            -(r["heuristic_weight"] or 0.0),
            -r["coverage_exponent"],
            -r["retrieval_weight"],
            r["threshold"],
        ),
    )
