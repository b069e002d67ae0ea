"""Sentence splitting tuned for biomedical abstracts.

A generic splitter breaks "vs. sorafenib", "et al. reported", "95% CI" or "P=0.0035", and a broken sentence
becomes a broken chunk and a broken answer window. Rules here are about punctuation, never about content.
Spans, not strings, are returned so that every later offset maps back to the document exactly.
"""

from __future__ import annotations

import re

SPLITTER_VERSION = "1"

# Tokens that end with a period without ending a sentence (compared lower-cased, without the final period).
ABBREVIATIONS = frozenset(
    [
        "vs",
        "v",
        "e.g",
        "eg",
        "i.e",
        "ie",
        "et",
        "al",
        "etc.al",
        "cf",
        "ca",
        "approx",
        "appr",
        "fig",
        "figs",
        "tab",
        "ref",
        "refs",
        "no",
        "nos",
        "vol",
        "pp",
        "p",
        "resp",
        "incl",
        "excl",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "st",
        "sr",
        "jr",
        "inc",
        "ltd",
        "co",
        "corp",
        "dept",
        "univ",
        "lab",
        "min",
        "max",
        "mo",
        "mos",
        "wk",
        "wks",
        "yr",
        "yrs",
        "hr",
        "hrs",
        "sec",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "spp",
        "sp",
        "var",
        "subsp",
        "nr",
        "approx",
        "est",
    ]
)

_TERMINATOR = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)")
_NEWLINE = re.compile(r"\s*\n\s*")
_NEXT_CHAR = re.compile(r"\s*(\S)")


def _is_boundary(text: str, term_start: int, term_end: int) -> bool:
    """Decide whether the terminator at text[term_start:term_end] ends a sentence.

    Looks only at the neighbouring characters: copying or rescanning the text around every period made splitting
    quadratic in the document's length (2.5 s for COVID-QA dev's 21 papers)."""
    m_next = _NEXT_CHAR.match(text, term_end)
    if m_next is None:
        return True
    nxt = m_next.group(1)
    # A sentence starts with a capital, a digit or an opening bracket/quote; "vs. sorafenib" does not.
    if not (nxt.isupper() or nxt.isdigit() or nxt in "([\"'“‘"):
        return False
    punct = text[term_start:term_end]
    if not punct.startswith("."):
        return True  # "?" and "!" always end a sentence when a capital follows
    # The word before the terminator; a terminator opening a line looks past that one newline (splitter v1 did).
    end = term_start - 1 if term_start > 0 and text[term_start - 1] == "\n" else term_start
    k = end
    while k > 0 and not text[k - 1].isspace():
        k -= 1
    if k == end:
        return True
    prev = text[k:end].lstrip("([\"'“‘").lower()
    if prev in ABBREVIATIONS:
        return False
    # Initials ("J. Smith") and enumerations ("A. B.") are single letters.
    if len(prev) == 1 and prev.isalpha():
        return False
    # Dotted abbreviations such as "e.g" or "U.S" (the final period is the terminator).
    return not re.fullmatch(r"(?:[a-z]\.)+[a-z]", prev)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return (start, end) spans of sentences; each span has no leading or trailing whitespace."""
    cuts: list[int] = []
    for m in _TERMINATOR.finditer(text):
        if _is_boundary(text, m.start(), m.end()):
            cuts.append(m.end())
    for m in _NEWLINE.finditer(text):
        cuts.append(m.start())
    cuts = sorted(set(cuts))
    spans: list[tuple[int, int]] = []
    start = 0
    for cut in [*cuts, len(text)]:
        if cut <= start:
            continue
        s, e = start, cut
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
        start = cut
    return spans
