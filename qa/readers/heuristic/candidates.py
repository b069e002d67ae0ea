"""Answer-type patterns and candidate spans: typed numbers, noun phrases, coordinations, abbreviation long forms.

How well each candidate class fits each expected answer type (`FIT`, `PHRASE_FIT`) was set by hand in the first
version (76f0aa6), as were the length bounds below; neither git history nor the README records a measurement of them.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from index.abbreviations import find_abbreviations
from qa.question import AnswerType, QuestionAnalysis
from qa.readers.heuristic.sentences import ARTICLES, Sentence, is_content

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_NUM = r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?"
_RANGE = rf"{_NUM}(?:\s?(?:-|–|to)\s?\d+(?:\.\d+)?)?"
_TIME_UNIT = r"(?:months?|mo|years?|yrs?|weeks?|wks?|days?|hours?|hrs?)"
_DOSE_UNIT = r"(?:mg|g|µg|μg|mcg|ng|mL|ml|IU|U|mmol|Gy|mg/kg|mg/m2|mg/m²)"
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|sixty|seventy|"
    "eighty|ninety|hundred"
)
_FRACTION = (
    r"\b(?:(?:one|two|three|four|a)[- ])?(?:half|halves|third|thirds|quarter|quarters|fourth|fifth|sixth|"
    r"seventh|eighth|ninth|tenth|tenths|hundredth)\b"
)

# Candidate classes: (name, pattern). Order matters only for readability; every match is a candidate.
NUMERIC_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("percent", re.compile(rf"{_NUM}\s?%")),
    ("fraction", re.compile(_FRACTION, re.IGNORECASE)),
    ("duration_cmp", re.compile(rf"{_NUM}\s?(?:v|vs\.?|versus)\s?{_NUM}\s?{_TIME_UNIT}\b")),
    ("duration", re.compile(rf"{_RANGE}\s?{_TIME_UNIT}\b")),
    ("dose", re.compile(rf"{_RANGE}\s?{_DOSE_UNIT}(?:/(?:kg|m2|m²|day|d|dose))?(?![\w%])")),
    (
        "date",
        re.compile(
            rf"\b\d{{1,2}} (?:{_MONTHS}) \d{{4}}\b|\b(?:{_MONTHS}) \d{{1,2}}, \d{{4}}\b|\b(?:{_MONTHS}) \d{{4}}\b"
        ),
    ),
    ("year", re.compile(r"(?<![\w.-])(?:19|20)\d{2}(?![\w%.-])")),
    ("integer", re.compile(r"(?<![\w.,/:-])\d+(?:,\d{3})*(?![\w%.,/:-]|\.\d|,\d)")),
    # Spelled-out counts ("Eighty patients"); a bare "one" is far more often a pronoun than a count.
    ("integer_word", re.compile(rf"\b(?!one\b)(?:{_NUMBER_WORDS})(?:[- ](?:{_NUMBER_WORDS}))?\b", re.IGNORECASE)),
    ("decimal", re.compile(r"(?<![\w.,/-])\d+\.\d+(?![\w%]|\.\d)")),
]
# Classes that carry a unit: a bare number inside one of them is not a second candidate.
UNIT_KINDS = frozenset({"percent", "duration", "duration_cmp", "dose", "date"})

# How well a candidate class fits an expected answer type (absent = does not fit); set by hand (76f0aa6).
FIT: dict[AnswerType, dict[str, float]] = {
    AnswerType.PERCENT: {"percent": 1.0, "fraction": 0.9, "decimal": 0.3},
    AnswerType.DURATION: {"duration": 1.0, "duration_cmp": 0.95, "decimal": 0.35, "integer": 0.2},
    AnswerType.DOSE: {"dose": 1.0, "decimal": 0.2, "integer": 0.15},
    AnswerType.DATE: {"date": 1.0, "year": 0.6},
    AnswerType.YEAR: {"year": 1.0, "date": 0.6},
    AnswerType.COUNT: {"integer": 1.0, "integer_word": 0.8, "year": 0.2, "decimal": 0.1},
    AnswerType.RATIO: {"decimal": 1.0, "integer": 0.3, "percent": 0.2},
    AnswerType.NUMBER: {
        "decimal": 0.8,
        "integer": 0.8,
        "percent": 0.8,
        "duration": 0.8,
        "dose": 0.8,
        "duration_cmp": 0.7,
    },
}
# The same for the word candidates (phrases, coordinations, long forms); set by hand (76f0aa6).
PHRASE_FIT: dict[AnswerType, dict[str, float]] = {
    AnswerType.LIST: {"list": 1.0, "phrase": 0.55},
    AnswerType.ENTITY: {"phrase": 1.0, "list": 0.45},
    AnswerType.DESCRIPTION: {"phrase": 1.0, "list": 0.5},
    AnswerType.EXPANSION: {"expansion": 1.0},
}

# Longest noun-phrase candidate, in tokens (the reader's max_answer_tokens when that is smaller) (76f0aa6).
MAX_PHRASE_TOKENS = 6
# A list item before "and"/"or" reaches at most this many content words left of its last word (76f0aa6).
LIST_ITEM_REACH = 5
# The item after "and"/"or" extends at most this many content words past its first (76f0aa6).
LAST_ITEM_REACH = 4
# Boundary variants: the first list item may lose up to this many leading tokens (76f0aa6).
FIRST_ITEM_TRIMS = 4


@dataclass(slots=True)
class Candidate:
    sent: Sentence
    i: int  # first token
    j: int  # last token (inclusive)
    kind: str
    start: int
    end: int
    trimmed: tuple[int, ...] = ()  # tokens of the last list item left out of this variant


def sentence_candidates(
    sent: Sentence,
    fits: dict[str, float],
    phrase_fits: dict[str, float],
    analysis: QuestionAnalysis,
    max_answer_tokens: int,
) -> list[Candidate]:
    """Every candidate of the classes the expected answer type admits, in one sentence."""
    cands: list[Candidate] = []
    if fits:
        cands += numeric_candidates(sent, fits)
    if "phrase" in phrase_fits:
        cands += phrase_candidates(sent, min(MAX_PHRASE_TOKENS, max_answer_tokens))
    if "list" in phrase_fits:
        cands += list_candidates(sent)
    if "expansion" in phrase_fits:
        cands += expansion_candidates(sent, analysis)
    return cands


def token_range(sent: Sentence, start: int, end: int) -> tuple[int, int] | None:
    i = bisect_right(sent.starts, start) - 1
    j = bisect_left(sent.ends, end)
    if i < 0 or j >= len(sent.words) or sent.starts[i] != start or sent.ends[j] != end:
        # Regex spans may start or end inside a token ("12.1 v 10.3 months"): snap to tokens if exact.
        i2 = bisect_left(sent.starts, start)
        j2 = bisect_right(sent.ends, end) - 1
        if i2 < len(sent.starts) and j2 >= 0 and sent.starts[i2] == start and sent.ends[j2] == end and i2 <= j2:
            return i2, j2
        return None
    return i, j


def drop_unitless_parts(cands: list[Candidate]) -> list[Candidate]:
    """ "28.1" inside "28.1 months" is not a second, unit-less answer."""
    with_unit = [c for c in cands if c.kind in UNIT_KINDS]
    return [
        c
        for c in cands
        if c.kind in UNIT_KINDS
        or not any(u.start <= c.start and c.end <= u.end and (u.start, u.end) != (c.start, c.end) for u in with_unit)
    ]


def numeric_candidates(sent: Sentence, fits: dict[str, float]) -> list[Candidate]:
    out: list[Candidate] = []
    for kind, pattern in NUMERIC_PATTERNS:
        for m in pattern.finditer(sent.text):
            span = token_range(sent, sent.start + m.start(), sent.start + m.end())
            if span is None:
                continue
            out.append(Candidate(sent, span[0], span[1], kind, sent.start + m.start(), sent.start + m.end()))
    # every kind is found first, so that "28.1" inside "28.1 months" is recognised as part of it
    return [c for c in drop_unitless_parts(out) if c.kind in fits]


def phrase_candidates(sent: Sentence, max_len: int) -> list[Candidate]:
    """Noun-phrase-like runs of content words; English heads come last, so spans end at a run's end or
    right before a word of the question's head phrase."""
    out: list[Candidate] = []
    n = len(sent.words)
    i = 0
    while i < n:
        if not is_content(sent.words[i]):
            i += 1
            continue
        j = i
        while j + 1 < n and is_content(sent.words[j + 1]):
            j += 1
        for a in range(i, j + 1):
            for b in range(a, min(j, a + max_len - 1) + 1):
                out.append(Candidate(sent, a, b, "phrase", sent.starts[a], sent.ends[b]))
        i = j + 1
    return out


def list_candidates(sent: Sentence) -> list[Candidate]:
    """Coordinations "A, B, and C" / "A and B"; several boundary choices, scored later."""
    out: list[Candidate] = []
    words = sent.words
    n = len(words)

    def item_left(end: int) -> int:
        """First token of the item that ends at `end` (a run of content words, optional article)."""
        k = end
        while k - 1 >= 0 and is_content(words[k - 1]) and end - k < LIST_ITEM_REACH:
            k -= 1
        if k - 1 >= 0 and words[k - 1].lower() in ARTICLES:
            k -= 1
        return k

    for c, w in enumerate(words):
        if w.lower() not in {"and", "or"} or c == 0 or c + 1 >= n:
            continue
        # right item
        r = c + 1
        if r < n and words[r].lower() in ARTICLES:
            r += 1
        if r >= n or not is_content(words[r]):
            continue
        r_end = r
        while r_end + 1 < n and is_content(words[r_end + 1]) and r_end - r < LAST_ITEM_REACH:
            r_end += 1
        # left items
        k = c - 1
        if words[k] == ",":
            k -= 1
        if k < 0 or not is_content(words[k]):
            continue
        first = item_left(k)
        if first > k:
            continue
        while first - 2 >= 0 and words[first - 1] == "," and is_content(words[first - 2]):
            first = item_left(first - 2)
        # boundary variants: trim the first item from the left, the last item from the right
        for a in range(first, min(k, first + FIRST_ITEM_TRIMS) + 1):
            if words[a].lower() in ARTICLES or not is_content(words[a]):
                continue
            for b in range(r, r_end + 1):
                trimmed = tuple(range(b + 1, r_end + 1))
                out.append(Candidate(sent, a, b, "list", sent.starts[a], sent.ends[b], trimmed))
    return out


def expansion_candidates(sent: Sentence, analysis: QuestionAnalysis) -> list[Candidate]:
    out: list[Candidate] = []
    if not analysis.acronyms:
        return out
    doc_text_start = sent.start
    for ab in find_abbreviations(sent.text):
        if ab.short in analysis.acronyms:
            s, e = doc_text_start + ab.start, doc_text_start + ab.end
            span = token_range(sent, s, e)
            if span:
                out.append(Candidate(sent, span[0], span[1], "expansion", s, e))
    return out
