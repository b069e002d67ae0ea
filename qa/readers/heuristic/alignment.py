"""Where a candidate stands relative to the question's words: the distance from a key term (aware of parallel
values and result brackets), and whether a phrase is tied to the question's head noun ("Which *kinase*...?").

The constants below were set by hand when their rule was written (the commit in brackets); neither git history nor
the README records a measurement of them.
"""

from __future__ import annotations

from qa.english import COPULAS
from qa.readers.heuristic.candidates import Candidate
from qa.readers.heuristic.sentences import ARTICLES, SEPARATORS, cached_stems, clause_final, distance

POSTMODIFIER_PREPOSITIONS = frozenset({"in", "with", "among", "for", "of"})

# A clause word before a clause-final result bracket is 1 + a quarter of its distance away, when that is nearer
# ("Median PFS was longer with A than with B (25.2 vs 13.5 months)") (e9fcc33).
RESULT_BRACKET_BASE = 1.0
RESULT_BRACKET_DIVISOR = 4.0
# A group named right after its value through a preposition ("61% in the naive") is this many times nearer (611cc80).
GROUP_AFTER_VALUE_DIVISOR = 2
# Tokens added to the distance for every value of the same kind passed on the way to the candidate (c701636).
PASSED_VALUE_DISTANCE = 4
# After a copula, the head noun is looked for within this many words ("X, a ... inhibitor, is the first drug") (e9fcc33).
COPULA_HEAD_WINDOW = 5
# A name may stand this many tokens before or after the head noun ("the REFLECT trial", "kinase (AMPK)") (76f0aa6).
HEAD_NEIGHBOUR_REACH = 2


def series_distance(cand: Candidate, t: int, series: list[tuple[int, int]]) -> float:
    """Distance from a question word at t, aware of parallel values ("A was 28.1 with X and 19.9 with Y").

    Words before the whole series ("Median PFS was") govern every value equally; a word reached only by
    passing another value of the same kind belongs more to that value.
    """
    sent = cand.sent
    plain = distance(sent, t, cand.i) if t < cand.i else distance(sent, cand.j, t)
    gid = sent.group[cand.i]
    # "Median PFS was longer with A than with B (25.2 vs 13.5 months; p=0.006)": a bracket closing the
    # clause reports the clause's result, so the clause's words are near it.
    same_clause = not any(sent.words[k] in {";", "."} for k in range(t + 1, cand.i))
    if gid and t < cand.i and not sent.group[t] and same_clause and clause_final(sent, gid):
        return min(plain, RESULT_BRACKET_BASE + plain / RESULT_BRACKET_DIVISOR)
    if len(series) < 2 or gid or sent.group[t]:
        return plain
    binding = POSTMODIFIER_PREPOSITIONS | ARTICLES
    if (
        t > cand.j
        and sent.words[cand.j + 1].lower() in POSTMODIFIER_PREPOSITIONS
        and all(sent.words[k].lower() in binding for k in range(cand.j + 1, t))
    ):
        # "61% in the naive and 47% in the pretreated": the group follows its value
        return plain / GROUP_AFTER_VALUE_DIVISOR
    if t < series[0][0]:
        return distance(sent, t, series[0][0])
    lo, hi = (t, cand.i) if t < cand.i else (cand.j, t)
    between = sum(1 for i, j in series if lo < i and j < hi)
    return plain + PASSED_VALUE_DISTANCE * between


def copula_to_head(cand: Candidate, head: frozenset[str]) -> bool:
    sent = cand.sent
    t = cand.j + 1
    while t < len(sent.words) and sent.group[t]:
        t += 1
    if t >= len(sent.words) or sent.words[t].lower() not in COPULAS:
        return False
    for k in range(t + 1, min(len(sent.words), t + 1 + COPULA_HEAD_WINDOW)):
        if sent.words[k] in SEPARATORS:
            return False
        if sent.stems[k] & head:
            return True
    return False


def head_related(cand: Candidate, head: frozenset[str], novelty: set[str], n_content: int, named: bool) -> bool:
    sent = cand.sent
    # "protein kinase" yes; "2 events" or "adverse events" (the question's own phrase) no
    modifiers = [
        sent.words[t]
        for t in range(cand.i, cand.j)
        if any(c.isalpha() for c in sent.words[t]) and not (sent.stems[t] & novelty)
    ]
    if n_content > 1 and modifiers and cached_stems(sent.words[cand.j]) & head:
        return True
    if copula_to_head(cand, head):
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
    reach = range(1, HEAD_NEIGHBOUR_REACH + 1)
    near = [t for t in (*(cand.j + d for d in reach), *(cand.i - d for d in reach)) if 0 <= t < len(sent.words)]
    for t in near:
        between = range(min(t, cand.i), max(t, cand.j)) if t < cand.i else range(cand.j + 1, t)
        if sent.stems[t] & head and all(sent.words[b] in "()[]," for b in between if not (cand.i <= b <= cand.j)):
            return True
    return False
