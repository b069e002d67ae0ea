"""Parallel values: "A and B were 42% and 51%, respectively" aligned item by item, and time points that must agree
("5-year" in the question, "3-year" before the value)."""

from __future__ import annotations

import re

from qa.readers.heuristic.candidates import Candidate
from qa.readers.heuristic.sentences import Sentence, is_content

TIME_POINT = re.compile(r"(\d+(?:\.\d+)?)-(year|month|week|day)s?")

# Shape factor of a value of a "respectively" clause aligned with another item than the question's (the aligned one
# keeps 1.0). Set by hand in the first version (76f0aa6); no measurement recorded.
OTHER_ITEM_FACTOR = 0.45


def question_time_points(question: str) -> dict[str, str]:
    """ "5-year OS rate?" -> {"year": "5"}."""
    return {m.group(2): m.group(1) for m in TIME_POINT.finditer(question.lower())}


def respectively_items(sent: Sentence, start: int, resp: int) -> list[set[str]] | None:
    """The items of "... in X and Y, respectively": the stretch from `start` to "respectively", split at
    commas and and/or, as stem sets without the tail noun they share. None when there are fewer than two."""
    words = [x.lower() for x in sent.words]
    items: list[list[int]] = [[]]
    for t in range(start, resp):
        if words[t] in {",", "and", "or", ";"}:
            if items[-1]:
                items.append([])
            continue
        if not sent.group[t] and is_content(sent.words[t]):
            items[-1].append(t)
    items = [it for it in items if it]
    if len(items) < 2:
        return None
    item_stems = [set().union(*(sent.stems[t] for t in it)) for it in items]
    # "the younger and older cohorts": a tail noun of the last item is shared by all items
    shortest = min(len(it) for it in items[:-1])
    shared = set().union(*(sent.stems[t] for t in items[-1][shortest:]))
    return [st - shared for st in item_stems]


def stated_items(sent: Sentence) -> list[set[str]] | None:
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
    return None if last_number is None else respectively_items(sent, last_number + 1, resp)


def respectively(
    sent: Sentence,
    cands: list[Candidate],
    keywords: set[str],
    idf: dict[str, float],
    inherited: list[set[str]] | None = None,
    time_points: dict[str, str] | None = None,
) -> dict[tuple[int, int], float]:
    """Align "A was 26.6 and B 15.1 in X and Y, respectively": value k belongs to item k. Only values in the
    clause of "respectively" take part; when no items follow the values, those of the last "respectively"
    sentence before this one (`inherited`) stand in. Returns a shape factor per (id(sentence), first token)."""
    words = [x.lower() for x in sent.words]
    if "respectively" not in words:
        return {}
    resp = words.index("respectively")
    clause = 1 + max((t for t in range(resp) if words[t] == ";" and not sent.group[t]), default=-1)
    out: dict[tuple[int, int], float] = {}
    by_kind: dict[str, list[Candidate]] = {}
    for c in cands:
        if not sent.group[c.i] and clause <= c.i and c.j < resp:
            by_kind.setdefault(c.kind, []).append(c)
    for same in by_kind.values():
        same.sort(key=lambda c: c.i)
        if len(same) < 2:
            continue
        stretch = range(same[-1].j + 1, resp)
        if any(is_content(sent.words[t]) and not sent.group[t] for t in stretch):
            item_stems = respectively_items(sent, same[-1].j + 1, resp)
        else:
            item_stems = inherited
            position = time_point_items(sent, clause, same[0].i, time_points or {})
            if position is not None and position < len(same):
                for k, c in enumerate(same):
                    out[(id(sent), c.i)] = 1.0 if k == position else OTHER_ITEM_FACTOR
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
            out[(id(sent), c.i)] = 1.0 if k == winner else OTHER_ITEM_FACTOR
    return out


def qualifier_conflict(cand: Candidate, wanted: dict[str, str]) -> bool:
    """ "5-year OS rate?" is not answered by the value in "the 3-year OS rates were 28%": the nearest time
    points before the value, in its clause ("3-year", or all of "1-year and 5-year"), leave out the
    question's."""
    sent = cand.sent
    for t in range(cand.i - 1, -1, -1):
        w = sent.words[t]
        if w in {";", "."} and not sent.group[t]:
            return False
        m = TIME_POINT.fullmatch(w.lower())
        if m and m.group(2) in wanted:
            stated = {m.group(1)}
            k = t - 1
            while k >= 1 and sent.words[k].lower() in {",", "and", "or"}:
                prev = TIME_POINT.fullmatch(sent.words[k - 1].lower())
                if not prev:
                    break
                stated.add(prev.group(1))
                k -= 2
            return wanted[m.group(2)] not in stated
    return False


def time_point_items(sent: Sentence, start: int, end: int, wanted: dict[str, str]) -> int | None:
    """Position of the question's time point in "the 1-year and 5-year rates were 83% and 64%, respectively"
    (None unless the clause coordinates time points of the question's unit)."""
    points = [m for t in range(start, end) if (m := TIME_POINT.fullmatch(sent.words[t].lower()))]
    units = {m.group(2) for m in points}
    if len(points) < 2 or len(units) != 1 or not units <= wanted.keys():
        return None
    values = [m.group(1) for m in points]
    want = wanted[units.pop()]
    return values.index(want) if values.count(want) == 1 else None
