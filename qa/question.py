"""Question analysis: the expected answer type, the head noun, and the key terms to look for.

Rules read the *form* of the question (wh-word, head noun, unit words), never its topic: they must hold for
questions nobody has written yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from index.lexical import tokenize
from qa.english import FUNCTION_WORDS


class AnswerType(StrEnum):
    PERCENT = "percent"
    DURATION = "duration"
    DOSE = "dose"
    DATE = "date"
    YEAR = "year"
    COUNT = "count"
    RATIO = "ratio"
    NUMBER = "number"
    EXPANSION = "expansion"
    LIST = "list"
    ENTITY = "entity"
    DESCRIPTION = "description"

    @property
    def numeric(self) -> bool:
        return self in NUMERIC_TYPES


NUMERIC_TYPES = frozenset(
    {
        AnswerType.PERCENT,
        AnswerType.DURATION,
        AnswerType.DOSE,
        AnswerType.DATE,
        AnswerType.YEAR,
        AnswerType.COUNT,
        AnswerType.RATIO,
        AnswerType.NUMBER,
    }
)

_AUX = frozenset(
    "is are was were be been being do does did has have had can could may might will would should shall must".split()
)
_DETERMINERS = frozenset("the a an this that these those its their his her our".split())
_WH = frozenset("what which who whom whose where when how why".split())
_NUMBER_WORDS = frozenset("two three four five six seven eight nine ten".split())


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# Ordered: the first matching rule decides.
_TYPE_RULES: list[tuple[re.Pattern[str], AnswerType]] = [
    (_rx(r"\bstand(s)? for\b|\babbreviat|\bacronym\b|\bshort for\b"), AnswerType.EXPANSION),
    (_rx(r"^\s*how many\b|\bnumber of\b(?!.*\brate\b)"), AnswerType.COUNT),
    (_rx(r"\b(percentage|percent|proportion|fraction|share)\b|%"), AnswerType.PERCENT),
    (_rx(r"(?<![-\w])(doses?|dosage|dosing)\b(?!-)|\bhow much\b.*\b(given|administered)\b"), AnswerType.DOSE),
    (_rx(r"\b(what|which|since what|in what) year\b|\byear of\b"), AnswerType.YEAR),
    (_rx(r"^\s*when\b|\b(date|day)\b|\b(what|which) month\b"), AnswerType.DATE),
    (_rx(r"\b(hazard|odds|risk|rate) ratios?\b|\bmargin\b|\bratio\b"), AnswerType.RATIO),
    (_rx(r"\brate\b"), AnswerType.PERCENT),
    (
        _rx(r"\bhow long\b|\bduration\b|\bmedian\b.*\b(survival|follow-up|time|os|pfs|dfs|efs|duration)\b"),
        AnswerType.DURATION,
    ),
    (_rx(r"\b(survival|follow-up|time to)\b.*\b(months?|years?|weeks?)\b"), AnswerType.DURATION),
    (
        _rx(r"^\s*how (old|large|big|high|low|much)\b|\b(value|level|score|concentration|mean|median|average)\b"),
        AnswerType.NUMBER,
    ),
]


@dataclass(frozen=True, slots=True)
class QuestionAnalysis:
    text: str
    answer_type: AnswerType
    head: tuple[str, ...]  # surface words of the head phrase ("cell", "lines")
    head_stems: frozenset[str]
    keywords: tuple[str, ...]  # stems, in question order, without duplicates
    acronyms: tuple[str, ...]  # surface tokens written in capitals ("TTUP") for expansion questions


def _words(text: str) -> list[str]:
    return re.findall(r"[\w%/.-]+", text)


def head_phrase(question: str) -> list[str]:
    """Words naming what is asked for: "Which HCC cell lines were used" -> [HCC, cell, lines]."""
    words = [w.strip(".-") for w in _words(question)]
    words = [w for w in words if w]
    i = 0
    while i < len(words) and words[i].lower() not in _WH:
        i += 1
    i += 1
    # "What was the X" / "What were the most common X": skip the auxiliary and the determiner.
    if i < len(words) and words[i].lower() in _AUX:
        i += 1
    while i < len(words) and (
        words[i].lower() in _DETERMINERS or words[i].lower() in {"type", "kind", "class", "sort"}
    ):
        i += 1
        if i < len(words) and words[i].lower() == "of":
            i += 1
    if i < len(words) and words[i].lower() in {"many", "much"}:
        i += 1
    head: list[str] = []
    while i < len(words):
        w = words[i]
        lw = w.lower()
        if lw in _AUX or lw in {"of", "in", "with", "for", "to", "on", "by", "that", "from", "at", "when", "used"}:
            break
        nxt = words[i + 1].lower() if i + 1 < len(words) else ""
        if head and lw.endswith("ed") and len(lw) > 4 and (not nxt or nxt in FUNCTION_WORDS):
            break  # "Which inhibitors blocked the ..." (but "most frequently reported adverse event")
        head.append(w)
        i += 1
        if len(head) >= 5:
            break
    return head


def _is_plural(word: str) -> bool:
    w = word.lower()
    return len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is", "sis"))


def classify(question: str, head: list[str]) -> AnswerType:
    for pattern, kind in _TYPE_RULES:
        if pattern.search(question):
            return kind
    q = question.lower().strip()
    if head and (_is_plural(head[-1]) or head[0].lower() in _NUMBER_WORDS):
        return AnswerType.LIST
    if re.match(r"^\s*what (kind|type|class|sort) of\b", q) and re.search(r"\b(is|are)\b\s+\S+\s*\??$", q):
        return AnswerType.DESCRIPTION
    if re.match(r"^\s*what (is|are)\b", q):
        return AnswerType.DESCRIPTION
    return AnswerType.ENTITY


def analyse(question: str) -> QuestionAnalysis:
    head = head_phrase(question)
    kind = classify(question, head)
    stems: list[str] = []
    for word in re.findall(r"\w+", question.lower()):
        if word in FUNCTION_WORDS:
            continue
        for s in tokenize(word):
            if s not in stems:
                stems.append(s)
    head_stems = frozenset(tokenize(head[-1])) if head else frozenset()
    acronyms = tuple(w for w in _words(question) if sum(c.isupper() for c in w) >= 2)
    return QuestionAnalysis(question, kind, tuple(head), head_stems, tuple(stems), acronyms)
