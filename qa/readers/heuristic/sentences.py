"""Sentence profiles: tokens, their stems, asides (brackets, appositives) and the clause-aware token distance."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from index.documents import Document
from index.lexical import tokenize
from qa.english import FUNCTION_WORDS, PHRASE_BREAKERS, VERB_AFTER_APPOSITIVE

TOKEN = re.compile(r"\w+(?:[-/'.]\w+)*%?|[^\w\s]")
SEPARATORS = frozenset({",", ";", ":"})
ARTICLES = frozenset({"the", "a", "an"})

# Like every factor of this reader without a stated measurement, the two below were set by hand when their rule was
# written (the commit in brackets); neither git history nor the README records a measurement of them.

# Distance cost of a comma, semicolon or colon, in tokens (a word costs 1): a clause boundary is far (76f0aa6).
SEPARATOR_COST = 3
# An article-less aside between commas is one only with at most this many words and a verb after it (e9fcc33).
APPOSITIVE_MAX_WORDS = 3
# Words whose stems are cached: a memory bound, not a tuning factor.
STEM_CACHE_SIZE = 65536


@dataclass(slots=True)
class Sentence:
    doc_id: str
    start: int
    end: int
    text: str
    starts: list[int]
    ends: list[int]
    words: list[str]
    stems: list[frozenset[str]]
    cost_outer: list[int]  # prefix sums: tokens outside brackets, separators count SEPARATOR_COST
    cost_all: list[int]  # prefix sums over every token
    group: list[int]  # bracket/appositive group per token, 0 = main clause


@dataclass(slots=True)
class DocProfile:
    sentences: list[Sentence]
    stems: frozenset[str]


def word_stems(word: str) -> frozenset[str]:
    return frozenset(tokenize(word))


@lru_cache(maxsize=STEM_CACHE_SIZE)
def cached_stems(word: str) -> frozenset[str]:
    return word_stems(word)


def first_stem(word: str) -> str:
    stems = tokenize(word)
    return stems[0] if stems else ""


def is_content(word: str) -> bool:
    lw = word.lower()
    if not any(c.isalnum() for c in word):
        return False
    return lw not in FUNCTION_WORDS and lw not in PHRASE_BREAKERS


def is_named(sent: Sentence, t: int) -> bool:
    """Looks like a name or symbol: inner capitals or digits, a hyphenated form, or a capitalised word."""
    x = sent.words[t]
    if any(c.isupper() or c.isdigit() for c in x[1:]) or ("-" in x and any(c.isalnum() for c in x)):
        return True
    return x[:1].isupper() and x.lower() not in FUNCTION_WORDS


def profile_sentence(doc: Document, s: int, e: int, short_to_long: dict[str, set[frozenset[str]]]) -> Sentence:
    text = doc.text
    toks = list(TOKEN.finditer(text, s, e))
    words = [t.group() for t in toks]
    stems: list[frozenset[str]] = []
    for w in words:
        st = cached_stems(w)
        for part in {w, *w.split("-")}:
            for long in short_to_long.get(part, ()):
                st = st | long  # "OS" (or "RAI-sensitive") also stands for the words of its long form
        stems.append(st)
    group = aside_groups(words)
    cost_outer = [0]
    cost_all = [0]
    for i, w in enumerate(words):
        sep = SEPARATOR_COST if w in SEPARATORS else 1
        cost_outer.append(cost_outer[-1] + (0 if group[i] else sep))
        cost_all.append(cost_all[-1] + sep)
    return Sentence(
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


def aside_groups(words: list[str]) -> list[int]:
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
        short_then_verb = (
            len(plain) <= APPOSITIVE_MAX_WORDS and close + 1 < n and words[close + 1].lower() in VERB_AFTER_APPOSITIVE
        )
        if (article and words[close] != ".") or short_then_verb:
            last = close if words[close] == "," else close - 1
            for k in range(c, last + 1):
                if not group[k]:
                    group[k] = next_gid
            next_gid += 1
    return group


def distance(sent: Sentence, i: int, j: int) -> float:
    """Tokens between positions i and j, asides skipped unless both ends are inside the same aside."""
    if i > j:
        i, j = j, i
    if sent.group[i] and sent.group[i] == sent.group[j]:
        return sent.cost_all[j] - sent.cost_all[i + 1]
    return sent.cost_outer[j] - sent.cost_outer[i + 1]


def clause_final(sent: Sentence, gid: int) -> bool:
    """The aside `gid` closes its clause (a sentence end, semicolon or colon follows it)."""
    last = max(t for t in range(len(sent.words)) if sent.group[t] == gid)
    return last + 1 >= len(sent.words) or sent.words[last + 1] in {".", ";", ":"}
