"""Abbreviations defined in the corpus itself ("overall survival (OS)"), found Schwartz-Hearst style.

A question says "median overall survival" where the abstract says "median OS"; no hand-written list can keep up
with biomedical acronyms, but every abstract defines its own. The long form is chosen so that the short form's
letters align with word initials where possible ("time to untreatable (unTACEable) progression (TTUP)").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_PAREN = re.compile(r"\(([^()]{1,12})\)")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class Abbreviation:
    short: str
    long: str
    start: int  # document offsets of the long form
    end: int


def _plausible_short(sf: str) -> bool:
    sf = sf.strip()
    if not (2 <= len(sf) <= 10) or " " in sf.strip():
        return False
    if not sf[0].isalnum() or not any(c.isalpha() for c in sf):
        return False
    return sum(c.isupper() for c in sf) >= 1


def _initial_alignment(short: str, words: list[str]) -> int:
    """How many words start with a letter of `short`, the letters taken in order (letters may be skipped)."""
    letters = [c.lower() for c in short if c.isalnum()]
    i = aligned = 0
    for w in words:
        w0 = w.lstrip("([").lower()[:1]
        if w0 and w0 in letters[i:]:
            i = letters.index(w0, i) + 1
            aligned += 1
    return aligned


def _subsequence(short: str, text: str) -> bool:
    it = iter(text.lower())
    return all(c in it for c in short.lower() if c.isalnum())


def find_abbreviations(text: str) -> list[Abbreviation]:
    """Every "long form (SF)" definition in `text`, with the long form's exact offsets."""
    out: list[Abbreviation] = []
    for m in _PAREN.finditer(text):
        sf = m.group(1).strip()
        if not _plausible_short(sf):
            continue
        words = list(_WORD.finditer(text, max(0, m.start() - 200), m.start()))
        # Words inside an earlier parenthesis belong to the long form ("(unTACEable)") but not to its initials.
        best: tuple[float, int, int] | None = None  # (cost, n_words, start offset)
        max_words = min(len(words), len(sf) + 5, 2 * len(sf))
        for n in range(1, max_words + 1):
            cand = words[-n:]
            if cand[0].group().startswith("("):
                continue
            first = cand[0].group().lower()
            if first[:1] != sf[0].lower():
                continue
            lf = text[cand[0].start() : cand[-1].end()]
            if not _subsequence(sf, lf) or lf.lower() == sf.lower():
                continue
            plain = [w.group() for w in cand if not w.group().startswith("(")]
            n_letters = sum(c.isalnum() for c in sf)
            # More initials aligned is better, but each word beyond the letter count must earn its place.
            cost = -_initial_alignment(sf, plain) + 0.6 * max(0, n - n_letters)
            if best is None or (cost, n) < (best[0], best[1]):
                best = (cost, n, cand[0].start())
        if best is None:
            continue
        start = best[2]
        end = words[-1].end()
        long = text[start:end].rstrip(",;:")
        out.append(Abbreviation(sf, long, start, start + len(long)))
    return out


def abbreviation_map(texts: Iterable[str]) -> dict[str, set[str]]:
    """Short form -> the long forms the corpus gives it."""
    table: dict[str, set[str]] = {}
    for t in texts:
        for a in find_abbreviations(t):
            table.setdefault(a.short, set()).add(a.long)
    return table


def expand_query(query: str, table: dict[str, set[str]]) -> str:
    """Add the other form of every abbreviation the query uses: "overall survival" gains "OS", "PFS" gains
    "progression-free survival". Only forms the corpus itself defines are used."""
    lowered = query.lower()
    words = set(re.findall(r"[\w-]+", query))
    extra: list[str] = []
    for short, longs in table.items():
        if short in words:
            extra.extend(sorted(longs))
        elif any(re.search(rf"(?<!\w){re.escape(long.lower())}(?!\w)", lowered) for long in longs):
            extra.append(short)
    return f"{query} {' '.join(extra)}" if extra else query
