"""An extractive reader that needs no QA-trained weights.

It reads the way a careful person skims an abstract: decide what kind of answer the question wants (a
percentage, a duration, a dose, a named thing, a list...), collect the spans of that kind in the retrieved
sentences, and prefer the span that sits closest to the question's rarest words, in the same clause, outside
confidence intervals and p-values, and that does not merely repeat the question.

Every rule reads punctuation, numbers, units and word classes; none names a drug, trial or document.
Scores are in [0, 1]: a weighted sum of evidence terms times shape factors, so a threshold can abstain.
"""

from __future__ import annotations

import math
import re
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from index.documents import Document
from index.embedder import Embedder
from index.lexical import tokenize
from index.retriever import RetrievedPassage
from index.sentences import split_sentences
from qa.abbreviations import find_abbreviations
from qa.answers import Answer, make_answer
from qa.english import COPULAS, FUNCTION_WORDS, PHRASE_BREAKERS, VERB_AFTER_APPOSITIVE
from qa.question import AnswerType, QuestionAnalysis, analyse

_TOKEN = re.compile(r"\w+(?:[-/'.]\w+)*%?|[^\w\s]")
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
_NUMERIC_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
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

# How well a candidate class fits an expected answer type (absent = does not fit).
_FIT: dict[AnswerType, dict[str, float]] = {
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
_PHRASE_FIT: dict[AnswerType, dict[str, float]] = {
    AnswerType.LIST: {"list": 1.0, "phrase": 0.55},
    AnswerType.ENTITY: {"phrase": 1.0, "list": 0.45},
    AnswerType.DESCRIPTION: {"phrase": 1.0, "list": 0.5},
    AnswerType.EXPANSION: {"expansion": 1.0},
}
_ARTICLES = frozenset({"the", "a", "an"})
_POSTMODIFIER_PREPOSITIONS = frozenset({"in", "with", "among", "for", "of"})
MAX_KEY_TERMS = 24
_SEPARATORS = frozenset({",", ";", ":"})
_INTERVAL_WORDS = frozenset({"ci", "interval", "iqr", "range", "interquartile"})


@dataclass(frozen=True, slots=True)
class ReaderWeights:
    """Evidence weights (sum to 1) and the distance scale; chosen on dev data, see README."""

    proximity: float = 0.45
    sentence: float = 0.2
    document: float = 0.25
    dense: float = 0.1
    distance_scale: float = 5.0
    # Share of a key term's weight that depends on how rare it is among the document's own sentences: the words
    # that name the document's topic ("desmoid tumor") say little about *where* in it the answer stands.
    within_document: float = 0.5


@dataclass(slots=True)
class _Sentence:
    doc_id: str
    start: int
    end: int
    text: str
    starts: list[int]
    ends: list[int]
    words: list[str]
    stems: list[frozenset[str]]
    cost_outer: list[int]  # prefix sums: tokens outside brackets, separators count 3
    cost_all: list[int]  # prefix sums over every token
    group: list[int]  # bracket/appositive group per token, 0 = main clause


@dataclass(slots=True)
class _DocProfile:
    sentences: list[_Sentence]
    stems: frozenset[str]


@dataclass(slots=True)
class _Corpus:
    idf: dict[str, float]
    n_docs: int
    short_to_long: dict[str, set[frozenset[str]]]  # "OS" -> {{overall, surviv}}
    long_to_short: list[tuple[frozenset[str], str]]
    profiles: dict[str, _DocProfile] = field(default_factory=dict)


def _word_stems(word: str) -> frozenset[str]:
    return frozenset(tokenize(word))


@lru_cache(maxsize=65536)
def _cached_stems(word: str) -> frozenset[str]:
    return _word_stems(word)


def _profile_sentence(doc: Document, s: int, e: int, short_to_long: dict[str, set[frozenset[str]]]) -> _Sentence:
    text = doc.text
    toks = list(_TOKEN.finditer(text, s, e))
    words = [t.group() for t in toks]
    stems: list[frozenset[str]] = []
    for w in words:
        st = _cached_stems(w)
        for part in {w, *w.split("-")}:
            for long in short_to_long.get(part, ()):
                st = st | long  # "OS" (or "RAI-sensitive") also stands for the words of its long form
        stems.append(st)
    group = _aside_groups(words)
    cost_outer = [0]
    cost_all = [0]
    for i, w in enumerate(words):
        sep = 3 if w in _SEPARATORS else 1
        cost_outer.append(cost_outer[-1] + (0 if group[i] else sep))
        cost_all.append(cost_all[-1] + sep)
    return _Sentence(
        doc.id,
        s,
        e,
        text[s:e],
        [t.start() for t in toks],
        [t.end() for t in toks],
        words,
        stems,
        cost_outer,
        cost_all,
        group,
    )


def _aside_groups(words: list[str]) -> list[int]:
    """Mark asides, whose length should not count as distance: brackets, and appositives between commas,
    either introduced by an article (", a multikinase inhibitor,") or short and followed by a verb
    (", anti-VEGF, has become"). 0 = main clause; each aside gets its own id, commas included."""
    n = len(words)
    group = [0] * n
    next_gid, depth, gid = 1, 0, 0
    for i, w in enumerate(words):
        if w in "([":
            if depth == 0:
                gid, next_gid = next_gid, next_gid + 1
            depth += 1
        if depth > 0:
            group[i] = gid
        if w in ")]" and depth > 0:
            depth -= 1
    commas = [i for i, w in enumerate(words) if w == "," and not group[i]]
    for c in commas:
        if group[c]:
            continue  # already inside an appositive found from an earlier comma
        close = next((k for k in range(c + 1, n) if not group[k] and words[k] in {",", ";", ":", "."}), None)
        if close is None or close == c + 1:
            continue
        plain = [k for k in range(c + 1, close) if not group[k]]
        article = words[c + 1].lower() in {"a", "an"}
        short_then_verb = len(plain) <= 3 and close + 1 < n and words[close + 1].lower() in VERB_AFTER_APPOSITIVE
        if (article and words[close] != ".") or short_then_verb:
            last = close if words[close] == "," else close - 1
            for k in range(c, last + 1):
                if not group[k]:
                    group[k] = next_gid
            next_gid += 1
    return group


def _distance(sent: _Sentence, i: int, j: int) -> float:
    """Tokens between positions i and j, asides skipped unless both ends are inside the same aside."""
    if i > j:
        i, j = j, i
    if sent.group[i] and sent.group[i] == sent.group[j]:
        return sent.cost_all[j] - sent.cost_all[i + 1]
    return sent.cost_outer[j] - sent.cost_outer[i + 1]


@dataclass(slots=True)
class _QuestionContext:
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


@dataclass(slots=True)
class _Candidate:
    sent: _Sentence
    i: int  # first token
    j: int  # last token (inclusive)
    kind: str
    start: int
    end: int
    trimmed: tuple[int, ...] = ()  # tokens of the last list item left out of this variant


_TIME_POINT = re.compile(r"(\d+(?:\.\d+)?)-(year|month|week|day)s?")
_ROMAN_OR_NUMBER = re.compile(r"(?:[IVX]+[abc]?|\d+(?:\.\d+)?)", re.IGNORECASE)


def _first_stem(word: str) -> str:
    stems = tokenize(word)
    return stems[0] if stems else ""


_UNIT_KINDS = frozenset({"percent", "duration", "duration_cmp", "dose", "date"})


def _drop_unitless_parts(cands: list[_Candidate]) -> list[_Candidate]:
    """ "28.1" inside "28.1 months" is not a second, unit-less answer."""
    with_unit = [c for c in cands if c.kind in _UNIT_KINDS]
    return [
        c
        for c in cands
        if c.kind in _UNIT_KINDS
        or not any(u.start <= c.start and c.end <= u.end and (u.start, u.end) != (c.start, c.end) for u in with_unit)
    ]


class HeuristicReader:
    """Answer-type-driven span extraction; see the module docstring."""

    name = "heuristic"
    min_score = 0.30
    """Chosen on seed_dev alone (midway between its best unanswerable, 0.25, and weakest correct, 0.35)."""
    retrieval_weight = 0.0
    """BERTserini interpolation measured no gain on seed_dev (EM 0.822 at 0, 0.800 at 0.1)."""

    def __init__(
        self,
        embedder: Embedder | None = None,
        max_answer_tokens: int = 30,
        weights: ReaderWeights = ReaderWeights(),
    ) -> None:
        self.embedder = embedder
        self.max_answer_tokens = max_answer_tokens
        self.weights = weights
        self._corpus: _Corpus | None = None
        # The mapping the statistics were computed from, held so that its identity cannot be reused: keyed by id()
        # alone, a new mapping (a swapped index, a test's dict) allocated where a freed one was got stale statistics.
        self._corpus_docs: Mapping[str, Document] | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Nothing heavy: corpus statistics are computed on first use for the documents handed in."""

    # ---- corpus statistics -------------------------------------------------------------------------------

    def _corpus_for(self, documents: Mapping[str, Document]) -> _Corpus:
        with self._lock:
            if self._corpus is not None and self._corpus_docs is documents and self._corpus.n_docs == len(documents):
                return self._corpus
            df: dict[str, int] = {}
            short_to_long: dict[str, set[frozenset[str]]] = {}
            for doc in documents.values():
                for st in set(tokenize(doc.text)):
                    df[st] = df.get(st, 0) + 1
                for ab in find_abbreviations(doc.text):
                    long = frozenset(s for w in re.findall(r"\w+", ab.long.lower()) for s in _cached_stems(w))
                    if long:
                        short_to_long.setdefault(ab.short, set()).add(long)
            n = len(documents)
            idf = {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}
            long_to_short = [(long, short) for short, longs in short_to_long.items() for long in longs]
            self._corpus = _Corpus(idf, n, short_to_long, long_to_short)
            self._corpus_docs = documents
            return self._corpus

    def _profile(self, corpus: _Corpus, doc: Document) -> _DocProfile:
        prof = corpus.profiles.get(doc.id)
        if prof is None:
            sents = [_profile_sentence(doc, s, e, corpus.short_to_long) for s, e in split_sentences(doc.text)]
            stems = frozenset(st for s in sents for ws in s.stems for st in ws)
            prof = _DocProfile(sents, stems)
            corpus.profiles[doc.id] = prof
        return prof

    def _idf(self, corpus: _Corpus, stem: str) -> float:
        # A word the corpus never uses is as informative as the rarest one.
        return corpus.idf.get(stem, math.log((corpus.n_docs + 1) / 0.5))

    # ---- candidates --------------------------------------------------------------------------------------

    def _token_range(self, sent: _Sentence, start: int, end: int) -> tuple[int, int] | None:
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

    def _numeric_candidates(self, sent: _Sentence, fits: dict[str, float]) -> list[_Candidate]:
        out: list[_Candidate] = []
        for kind, pattern in _NUMERIC_PATTERNS:
            for m in pattern.finditer(sent.text):
                span = self._token_range(sent, sent.start + m.start(), sent.start + m.end())
                if span is None:
                    continue
                out.append(_Candidate(sent, span[0], span[1], kind, sent.start + m.start(), sent.start + m.end()))
        # every kind is found first, so that "28.1" inside "28.1 months" is recognised as part of it
        return [c for c in _drop_unitless_parts(out) if c.kind in fits]

    def _is_content(self, word: str) -> bool:
        lw = word.lower()
        if not any(c.isalnum() for c in word):
            return False
        return lw not in FUNCTION_WORDS and lw not in PHRASE_BREAKERS

    def _phrase_candidates(self, sent: _Sentence, max_len: int) -> list[_Candidate]:
        """Noun-phrase-like runs of content words; English heads come last, so spans end at a run's end or
        right before a word of the question's head phrase."""
        out: list[_Candidate] = []
        n = len(sent.words)
        i = 0
        while i < n:
            if not self._is_content(sent.words[i]):
                i += 1
                continue
            j = i
            while j + 1 < n and self._is_content(sent.words[j + 1]):
                j += 1
            for a in range(i, j + 1):
                for b in range(a, min(j, a + max_len - 1) + 1):
                    out.append(_Candidate(sent, a, b, "phrase", sent.starts[a], sent.ends[b]))
            i = j + 1
        return out

    def _list_candidates(self, sent: _Sentence) -> list[_Candidate]:
        """Coordinations "A, B, and C" / "A and B"; several boundary choices, scored later."""
        out: list[_Candidate] = []
        words = sent.words
        n = len(words)

        def item_left(end: int) -> int:
            """First token of the item that ends at `end` (a run of content words, optional article)."""
            k = end
            while k - 1 >= 0 and self._is_content(words[k - 1]) and end - k < 5:
                k -= 1
            if k - 1 >= 0 and words[k - 1].lower() in _ARTICLES:
                k -= 1
            return k

        for c, w in enumerate(words):
            if w.lower() not in {"and", "or"} or c == 0 or c + 1 >= n:
                continue
            # right item
            r = c + 1
            if r < n and words[r].lower() in _ARTICLES:
                r += 1
            if r >= n or not self._is_content(words[r]):
                continue
            r_end = r
            while r_end + 1 < n and self._is_content(words[r_end + 1]) and r_end - r < 4:
                r_end += 1
            # left items
            k = c - 1
            if words[k] == ",":
                k -= 1
            if k < 0 or not self._is_content(words[k]):
                continue
            first = item_left(k)
            if first > k:
                continue
            while first - 2 >= 0 and words[first - 1] == "," and self._is_content(words[first - 2]):
                first = item_left(first - 2)
            # boundary variants: trim the first item from the left, the last item from the right
            for a in range(first, min(k, first + 4) + 1):
                if words[a].lower() in _ARTICLES or not self._is_content(words[a]):
                    continue
                for b in range(r, r_end + 1):
                    trimmed = tuple(range(b + 1, r_end + 1))
                    out.append(_Candidate(sent, a, b, "list", sent.starts[a], sent.ends[b], trimmed))
        return out

    def _expansion_candidates(self, sent: _Sentence, analysis: QuestionAnalysis) -> list[_Candidate]:
        out: list[_Candidate] = []
        if not analysis.acronyms:
            return out
        doc_text_start = sent.start
        for ab in find_abbreviations(sent.text):
            if ab.short in analysis.acronyms:
                s, e = doc_text_start + ab.start, doc_text_start + ab.end
                span = self._token_range(sent, s, e)
                if span:
                    out.append(_Candidate(sent, span[0], span[1], "expansion", s, e))
        return out

    # ---- scoring -----------------------------------------------------------------------------------------

    def _is_named(self, sent: _Sentence, t: int) -> bool:
        """Looks like a name or symbol: inner capitals or digits, a hyphenated form, or a capitalised word."""
        x = sent.words[t]
        if any(c.isupper() or c.isdigit() for c in x[1:]) or ("-" in x and any(c.isalnum() for c in x)):
            return True
        return x[:1].isupper() and x.lower() not in FUNCTION_WORDS

    def _series_distance(self, cand: _Candidate, t: int, series: list[tuple[int, int]]) -> float:
        """Distance from a question word at t, aware of parallel values ("A was 28.1 with X and 19.9 with Y").

        Words before the whole series ("Median PFS was") govern every value equally; a word reached only by
        passing another value of the same kind belongs more to that value.
        """
        sent = cand.sent
        plain = _distance(sent, t, cand.i) if t < cand.i else _distance(sent, cand.j, t)
        gid = sent.group[cand.i]
        # "Median PFS was longer with A than with B (25.2 vs 13.5 months; p=0.006)": a bracket closing the
        # clause reports the clause's result, so the clause's words are near it.
        same_clause = not any(sent.words[k] in {";", "."} for k in range(t + 1, cand.i))
        if gid and t < cand.i and not sent.group[t] and same_clause and self._clause_final(sent, gid):
            return min(plain, 1.0 + plain / 4.0)
        if len(series) < 2 or gid or sent.group[t]:
            return plain
        binding = _POSTMODIFIER_PREPOSITIONS | _ARTICLES
        if (
            t > cand.j
            and sent.words[cand.j + 1].lower() in _POSTMODIFIER_PREPOSITIONS
            and all(sent.words[k].lower() in binding for k in range(cand.j + 1, t))
        ):
            return plain / 2  # "61% in the naive and 47% in the pretreated": the group follows its value
        if t < series[0][0]:
            return _distance(sent, t, series[0][0])
        lo, hi = (t, cand.i) if t < cand.i else (cand.j, t)
        between = sum(1 for i, j in series if lo < i and j < hi)
        return plain + 4 * between

    def _copula_to_head(self, cand: _Candidate, head: frozenset[str]) -> bool:
        sent = cand.sent
        t = cand.j + 1
        while t < len(sent.words) and sent.group[t]:
            t += 1
        if t >= len(sent.words) or sent.words[t].lower() not in COPULAS:
            return False
        for k in range(t + 1, min(len(sent.words), t + 6)):
            if sent.words[k] in _SEPARATORS:
                return False
            if sent.stems[k] & head:
                return True
        return False

    def _head_related(
        self, cand: _Candidate, head: frozenset[str], novelty: set[str], n_content: int, named: bool
    ) -> bool:
        sent = cand.sent
        # "protein kinase" yes; "2 events" or "adverse events" (the question's own phrase) no
        modifiers = [
            sent.words[t]
            for t in range(cand.i, cand.j)
            if any(c.isalpha() for c in sent.words[t]) and not (sent.stems[t] & novelty)
        ]
        if n_content > 1 and modifiers and _cached_stems(sent.words[cand.j]) & head:
            return True
        if self._copula_to_head(cand, head):
            return True  # "Regorafenib (...), a ... inhibitor, is the first drug to ..."
        after = cand.j + 1
        if after < len(sent.words) and sent.words[after] in "([" and sent.group[after]:
            gid = sent.group[after]
            inside = [k for k in range(after, len(sent.words)) if sent.group[k] == gid]
            has_head = any(sent.stems[k] & head for k in inside)
            # the bracket must echo the question's own head phrase ("primary endpoint"), not just the noun
            echoes = any(sent.stems[k] & (novelty - head) for k in inside)
            if has_head and echoes:
                return True  # "overall survival (OS; primary endpoint)"
        if not named:
            return False  # "its canonical kinase targets": an adjective before the head is not an answer
        near = [t for t in (cand.j + 1, cand.j + 2, cand.i - 1, cand.i - 2) if 0 <= t < len(sent.words)]
        for t in near:
            between = range(min(t, cand.i), max(t, cand.j)) if t < cand.i else range(cand.j + 1, t)
            if sent.stems[t] & head and all(sent.words[b] in "()[]," for b in between if not (cand.i <= b <= cand.j)):
                return True
        return False

    def _bracket_factor(
        self, cand: _Candidate, keywords: set[str], head: frozenset[str], describes_owner: bool
    ) -> float:
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
        while owner >= 0 and sent.words[owner] in _SEPARATORS:
            owner -= 1
        if owner >= 0 and sent.stems[owner] & keywords:
            # "kinases (VEGFR 1-3, ...)" after the head noun lists instances: that is the answer.
            return 0.7 if describes_owner and not (sent.stems[owner] & head) else 1.0
        near_inside = any(
            sent.group[t] == gid
            and (sent.stems[t] & keywords)
            and _distance(sent, t, cand.i if t < cand.i else cand.j) <= 4
            for t in range(len(sent.words))
            if not (cand.i <= t <= cand.j)
        )
        if near_inside:
            return 1.0
        return 0.9 if self._clause_final(sent, gid) else 0.75  # "... than in B (25.2 vs 13.5 months)."

    @staticmethod
    def _clause_final(sent: _Sentence, gid: int) -> bool:
        last = max(t for t in range(len(sent.words)) if sent.group[t] == gid)
        return last + 1 >= len(sent.words) or sent.words[last + 1] in {".", ";", ":"}

    def _score(
        self,
        cand: _Candidate,
        fit: float,
        q: _QuestionContext,
        doc_cov: float,
        dense: float | None,
    ) -> tuple[float, dict[str, float]]:
        sent = cand.sent
        w = self.weights
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
                best = max(best, math.exp(-self._series_distance(cand, t, series) / w.distance_scale))
            if found:
                sent_sum += idf
            prox_sum += idf * best
        prox = prox_sum / q.total_idf
        sent_cov = sent_sum / q.total_idf
        dense_term = sent_cov if dense is None else min(1.0, max(0.0, (dense - 0.2) / 0.5))
        evidence = w.proximity * prox + w.sentence * sent_cov + w.document * doc_cov + w.dense * dense_term

        shape = 1.0
        idx = range(cand.i, cand.j + 1)
        content = [t for t in idx if self._is_content(sent.words[t])]
        if content:
            repeated = sum(1 for t in content if _cached_stems(sent.words[t]) & q.novelty) / len(content)
            shape *= 1.0 - 0.85 * repeated**2  # an answer may share a word with the question, not be it
        if cand.kind in {"phrase", "list"}:
            last = sent.words[cand.j].lower()
            if (last.endswith(("ed", "ing", "ly")) and "-" not in last) or last in _ARTICLES:
                shape *= 0.3  # phrases end in a noun
            if q.head and (_cached_stems(sent.words[cand.i]) & q.head) and cand.i != cand.j:
                shape *= 0.6  # "inhibitors X and Y": the head noun introduces the answer, it is not part of it
            if cand.kind == "list":
                # "... and atrial fibrillation": cutting the last item short needs a reason (question words)
                shape *= 0.9 ** sum(1 for t in cand.trimmed if not (sent.stems[t] & (q.novelty | q.head)))
            if cand.kind == "phrase":
                shape *= 0.93 ** max(0, len(content) - 1)
                if all(_cached_stems(sent.words[t]) <= q.head for t in content):
                    shape *= 0.1  # only the head noun itself
                named = [self._is_named(sent, t) for t in content]
                if all(_ROMAN_OR_NUMBER.fullmatch(sent.words[t]) for t in content):
                    shape *= 0.3  # "phase III": a numeral is not a thing
                elif (
                    _ROMAN_OR_NUMBER.fullmatch(sent.words[cand.i])
                    and cand.i > 0
                    and self._is_content(sent.words[cand.i - 1])
                ):
                    shape *= 0.8  # "III REFLECT" out of "phase III REFLECT": the numeral belongs to the word before
                if analysis.answer_type is AnswerType.ENTITY:
                    if not any(named):
                        shape *= 0.85
                    # Specific (rare) words name things; "treatment" or "mechanism" rarely answer "which ...?"
                    spec = sum(min(1.0, corpus_idf.get(_first_stem(sent.words[t]), idf_max) / idf_max) for t in content)
                    shape *= 0.75 + 0.25 * spec / len(content)
                    lead = 0
                    while lead < len(named) - 1 and not named[lead] and any(named[lead + 1 :]):
                        lead += 1
                    shape *= 0.85**lead  # "multicentric REFLECT": drop the lowercase modifier
            if q.head and cand.kind == "phrase":
                # "Which kinase ...?": the answer names a kind of kinase ("AMP-activated protein kinase"), or is a
                # name standing next to the word ("the REFLECT trial", "kinase (AMPK)").
                named_cand = any(self._is_named(sent, t) for t in content)
                shape *= 1.3 if self._head_related(cand, q.head, q.novelty, len(content), named_cand) else 0.85
        describes = cand.kind in {"phrase", "list"} and analysis.answer_type is not AnswerType.DESCRIPTION
        shape *= self._bracket_factor(cand, q.keywords, q.head, describes_owner=describes)
        if analysis.answer_type.numeric:
            before = [x.lower() for x in sent.words[max(0, cand.i - 4) : cand.i]]
            if not (q.keywords & {"ci", "interv", "rang"}) and set(before) & _INTERVAL_WORDS:
                shape *= 0.4  # a confidence-interval bound, not the estimate
            if "p" in before[-2:] and before[-1] in {"p", "=", "<", ">"}:
                shape *= 0.2  # a p-value
            if before[-2:] and before[-1] in {"v", "vs", "versus"} and before[-2][:1].isdigit():
                shape *= 0.6  # the second half of "12.1 v 10.3 months": the comparison is the better span
            shape *= q.respectively.get((id(sent), cand.i), 1.0)
            if q.time_points and self._qualifier_conflict(cand, q.time_points):
                shape *= 0.5
        score = evidence * fit * min(shape, 1.0)
        details = {"proximity": prox, "sentence": sent_cov, "document": doc_cov, "fit": fit, "shape": shape}
        return score, details

    def _respectively_items(self, sent: _Sentence, start: int, resp: int) -> list[set[str]] | None:
        """The items of "... in X and Y, respectively": the stretch from `start` to "respectively", split at
        commas and and/or, as stem sets without the tail noun they share. None when there are fewer than two."""
        words = [x.lower() for x in sent.words]
        items: list[list[int]] = [[]]
        for t in range(start, resp):
            if words[t] in {",", "and", "or", ";"}:
                if items[-1]:
                    items.append([])
                continue
            if not sent.group[t] and self._is_content(sent.words[t]):
                items[-1].append(t)
        items = [it for it in items if it]
        if len(items) < 2:
            return None
        item_stems = [set().union(*(sent.stems[t] for t in it)) for it in items]
        # "the younger and older cohorts": a tail noun of the last item is shared by all items
        shortest = min(len(it) for it in items[:-1])
        shared = set().union(*(sent.stems[t] for t in items[-1][shortest:]))
        return [st - shared for st in item_stems]

    def _stated_items(self, sent: _Sentence) -> list[set[str]] | None:
        """Items a "respectively" sentence names after its last number, for a later sentence that leaves them
        out ("OS was 21.7 and 15.1 months in naive and experienced patients, respectively. 5-year OS rates
        were 14% and 12%, respectively.")."""
        words = [x.lower() for x in sent.words]
        if "respectively" not in words:
            return None
        resp = words.index("respectively")
        last_number = max(
            (t for t in range(resp) if not sent.group[t] and any(ch.isdigit() for ch in words[t])), default=None
        )
        return None if last_number is None else self._respectively_items(sent, last_number + 1, resp)

    def _respectively(
        self,
        sent: _Sentence,
        cands: list[_Candidate],
        keywords: set[str],
        idf: dict[str, float],
        inherited: list[set[str]] | None = None,
        time_points: dict[str, str] | None = None,
    ) -> dict[tuple[int, int], float]:
        """Align "A was 26.6 and B 15.1 in X and Y, respectively": value k belongs to item k. Only values in the
        clause of "respectively" take part; when no items follow the values, those of the last "respectively"
        sentence before this one (`inherited`) stand in."""
        words = [x.lower() for x in sent.words]
        if "respectively" not in words:
            return {}
        resp = words.index("respectively")
        clause = 1 + max((t for t in range(resp) if words[t] == ";" and not sent.group[t]), default=-1)
        out: dict[tuple[int, int], float] = {}
        by_kind: dict[str, list[_Candidate]] = {}
        for c in cands:
            if not sent.group[c.i] and clause <= c.i and c.j < resp:
                by_kind.setdefault(c.kind, []).append(c)
        for same in by_kind.values():
            same.sort(key=lambda c: c.i)
            if len(same) < 2:
                continue
            stretch = range(same[-1].j + 1, resp)
            if any(self._is_content(sent.words[t]) and not sent.group[t] for t in stretch):
                item_stems = self._respectively_items(sent, same[-1].j + 1, resp)
            else:
                item_stems = inherited
                position = self._time_point_items(sent, clause, same[0].i, time_points or {})
                if position is not None and position < len(same):
                    for k, c in enumerate(same):
                        out[(id(sent), c.i)] = 1.0 if k == position else 0.45
                    continue
            if item_stems is None or len(item_stems) != len(same):
                continue
            hits = []
            for k, st in enumerate(item_stems):
                others = set().union(*(x for m, x in enumerate(item_stems) if m != k))
                distinct = st - others  # "sorafenib-naive" vs "sorafenib-experienced": only "naive" tells
                hits.append(sum(idf.get(x, 0.0) for x in distinct & keywords))
            if max(hits) <= 0 or hits.count(max(hits)) > 1:
                continue
            winner = hits.index(max(hits))
            for k, c in enumerate(same):
                out[(id(sent), c.i)] = 1.0 if k == winner else 0.45
        return out

    def _qualifier_conflict(self, cand: _Candidate, wanted: dict[str, str]) -> bool:
        """ "5-year OS rate?" is not answered by the value in "the 3-year OS rates were 28%": the nearest time
        points before the value, in its clause ("3-year", or all of "1-year and 5-year"), leave out the
        question's."""
        sent = cand.sent
        for t in range(cand.i - 1, -1, -1):
            w = sent.words[t]
            if w in {";", "."} and not sent.group[t]:
                return False
            m = _TIME_POINT.fullmatch(w.lower())
            if m and m.group(2) in wanted:
                stated = {m.group(1)}
                k = t - 1
                while k >= 1 and sent.words[k].lower() in {",", "and", "or"}:
                    prev = _TIME_POINT.fullmatch(sent.words[k - 1].lower())
                    if not prev:
                        break
                    stated.add(prev.group(1))
                    k -= 2
                return wanted[m.group(2)] not in stated
        return False

    @staticmethod
    def _time_point_items(sent: _Sentence, start: int, end: int, wanted: dict[str, str]) -> int | None:
        """Position of the question's time point in "the 1-year and 5-year rates were 83% and 64%, respectively"
        (None unless the clause coordinates time points of the question's unit)."""
        points = [m for t in range(start, end) if (m := _TIME_POINT.fullmatch(sent.words[t].lower()))]
        units = {m.group(2) for m in points}
        if len(points) < 2 or len(units) != 1 or not units <= wanted.keys():
            return None
        values = [m.group(1) for m in points]
        want = wanted[units.pop()]
        return values.index(want) if values.count(want) == 1 else None

    # ---- run ---------------------------------------------------------------------------------------------

    def run(
        self,
        question: str,
        passages: Sequence[RetrievedPassage],
        documents: Mapping[str, Document],
        max_answers: int = 5,
    ) -> list[Answer]:
        if not passages:
            return []
        corpus = self._corpus_for(documents)
        analysis = analyse(question)
        groups = self._keyword_groups(corpus, analysis)
        if not groups:
            return []
        if len(groups) > MAX_KEY_TERMS:
            # A question is a handful of key terms; a 2,000-character one must not buy 2,000 terms of work.
            groups = sorted(groups, key=lambda g: -g[1])[:MAX_KEY_TERMS]
        keywords = set(analysis.keywords)
        novelty = keywords - set(analysis.head_stems)
        if analysis.answer_type is not AnswerType.EXPANSION:  # there the long form *is* the answer
            for word in re.findall(r"[\w-]+", question):
                for long in corpus.short_to_long.get(word, ()):
                    novelty |= long - set(analysis.head_stems)
        q = _QuestionContext(analysis, groups, sum(idf for _, idf in groups), keywords, novelty, analysis.head_stems)
        q.time_points = {m.group(2): m.group(1) for m in _TIME_POINT.finditer(question.lower())}
        q.idf = corpus.idf
        q.idf_max = math.log((corpus.n_docs + 1) / 0.5)
        kind = analysis.answer_type
        fits = _FIT.get(kind, {})
        phrase_fits = _PHRASE_FIT.get(kind, {})
        scored: dict[tuple[str, int, int], Answer] = {}
        per_doc: dict[str, tuple[float, _QuestionContext]] = {}  # document coverage and locating weights
        for p in passages:
            doc = documents.get(p.chunk.doc_id)
            if doc is None:
                continue
            prof = self._profile(corpus, doc)
            if doc.id not in per_doc:  # an expanded abstract comes as several passages: weigh its terms once
                per_doc[doc.id] = (
                    sum(idf for v, idf in groups if v & prof.stems) / q.total_idf,
                    self._locating_weights(q, prof),
                )
            doc_cov, qd = per_doc[doc.id]
            stated: list[set[str]] | None = None  # items of the last "respectively" sentence so far
            for sent in prof.sentences:
                previous = stated
                if kind.numeric and "respectively" in sent.text:
                    stated = self._stated_items(sent) or stated
                if sent.end <= p.chunk.start or sent.start >= p.chunk.end:
                    continue
                cands: list[_Candidate] = []
                if fits:
                    cands += self._numeric_candidates(sent, fits)
                if "phrase" in phrase_fits:
                    cands += self._phrase_candidates(sent, min(6, self.max_answer_tokens))
                if "list" in phrase_fits:
                    cands += self._list_candidates(sent)
                if "expansion" in phrase_fits:
                    cands += self._expansion_candidates(sent, analysis)
                if kind.numeric:
                    q.respectively.update(
                        self._respectively(sent, cands, keywords, corpus.idf, previous, q.time_points)
                    )
                    for c in cands:
                        if not sent.group[c.i]:
                            q.series.setdefault((id(sent), c.kind), []).append((c.i, c.j))
                    for spans in q.series.values():
                        spans.sort()
                for cand in cands:
                    if not (p.chunk.start <= cand.start and cand.end <= p.chunk.end):
                        continue  # the span must lie inside the passage it is cited from
                    if cand.j - cand.i + 1 > self.max_answer_tokens:
                        continue
                    fit = fits.get(cand.kind) or phrase_fits.get(cand.kind, 0.0)
                    if fit <= 0:
                        continue
                    score, details = self._score(cand, fit, qd, doc_cov, p.dense_score)
                    key = (doc.id, cand.start, cand.end)
                    if key in scored and scored[key].score >= score:
                        continue
                    scored[key] = make_answer(
                        question,
                        doc.text,
                        doc.id,
                        p.chunk.id,
                        p.chunk.start,
                        p.chunk.end,
                        cand.start,
                        cand.end,
                        self.name,
                        min(1.0, score),
                        retrieval_score=p.score,
                        answer_type=kind.value,
                        details=details,
                    )
        ranked = sorted(scored.values(), key=lambda a: (-a.score, a.doc_id, a.start, a.end))
        return ranked[:max_answers]

    def _locating_weights(self, q: _QuestionContext, prof: _DocProfile) -> _QuestionContext:
        """Key-term weights for finding the answer inside one document: corpus IDF times (in part) the term's
        IDF over the document's sentences."""
        lam = self.weights.within_document
        if lam <= 0 or not prof.sentences:
            return q
        n = len(prof.sentences)
        top = math.log((n + 1) / 0.5)
        groups = []
        for variants, idf in q.groups:
            sf = sum(1 for sent in prof.sentences if any(st & variants for st in sent.stems))
            groups.append((variants, idf * ((1 - lam) + lam * math.log((n + 1) / (sf + 0.5)) / top)))
        return replace(q, groups=groups, total_idf=sum(w for _, w in groups) or q.total_idf)

    def _keyword_groups(self, corpus: _Corpus, analysis: QuestionAnalysis) -> list[tuple[frozenset[str], float]]:
        """One group per question key term, with the alternatives that count as a match (its abbreviation)."""
        q = set(analysis.keywords)
        groups: list[tuple[frozenset[str], float]] = []
        for stem in analysis.keywords:
            variants = {stem}
            # A short form in the question ("PFS") is matched by the words of its long form, and vice versa.
            for long, short in corpus.long_to_short:
                sstems = _cached_stems(short)
                if stem in sstems:
                    continue
                if stem in long and long <= q:
                    variants |= sstems
            groups.append((frozenset(variants), self._idf(corpus, stem)))
        return groups
