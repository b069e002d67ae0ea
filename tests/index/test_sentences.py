from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import index.sentences as sentences_module
from index.sentences import ABBREVIATIONS, split_sentences


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


@pytest.mark.parametrize(
    "text",
    [
        "Median OS was 16.4 months (95% CI, 14.2-19.6) vs. 13.8 months with the comparator.",
        "Responses were seen in several arms, e.g. Arm B and Arm C, without new signals.",
        "As shown by Smith et al. Results were consistent across sites.",
        "The difference was significant (P=0.0035) in the full analysis set.",
        "Patients were randomized (n = 393) to the combination arm.",
        "Doses of 0.1-10.0 mg/kg were given i.e. Weekly or every 2 weeks.",
        "Fig. 2 shows the curves for the treated group.",
        "Results were reported by J. Smith and colleagues.",
    ],
)
def test_no_break_inside_biomedical_punctuation(text: str) -> None:
    assert sentences(text) == [text]


def test_breaks_at_real_sentence_ends_and_newlines() -> None:
    text = "First finding was clear. Second one (n=12) followed! Was it real? Yes.\nBACKGROUND: new section"
    assert sentences(text) == [
        "First finding was clear.",
        "Second one (n=12) followed!",
        "Was it real?",
        "Yes.",
        "BACKGROUND: new section",
    ]


def test_decimal_and_number_start_do_not_confuse_splitter() -> None:
    text = "The hazard ratio was 0.78. 1171 patients were randomized."
    assert sentences(text) == ["The hazard ratio was 0.78.", "1171 patients were randomized."]


def test_spans_are_trimmed_and_exact() -> None:
    text = "  Leading space. Trailing space.   "
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["Leading space.", "Trailing space."]


def test_empty_and_whitespace_text() -> None:
    assert split_sentences("") == []
    assert split_sentences("   \n  ") == []


# The splitter as first written (regex look-around over the whole text: quadratic in a paper's length). The linear
# version must draw exactly the same boundaries, or every index built so far would change under the same version.
_REFERENCE_PREV = re.compile(r"(\S+)$")


def _reference_is_boundary(text: str, term_start: int, term_end: int) -> bool:
    rest = text[term_end:].lstrip()
    if not rest:
        return True
    nxt = rest[0]
    if not (nxt.isupper() or nxt.isdigit() or nxt in "([\"'“‘"):
        return False
    if not text[term_start:term_end].startswith("."):
        return True
    m = _REFERENCE_PREV.search(text, 0, term_start)
    if m is None:
        return True
    prev = m.group(1).lstrip("([\"'“‘").lower()
    if prev in ABBREVIATIONS or (len(prev) == 1 and prev.isalpha()):
        return False
    return not re.fullmatch(r"(?:[a-z]\.)+[a-z]", prev)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="aBs1. ?!\n\t()[]\"'“‘%\u00a0\u2003\x1ce.g.U.S.vs.J.", max_size=80))
def test_boundaries_equal_the_reference_splitter(text: str) -> None:
    for m in sentences_module._TERMINATOR.finditer(text):
        assert sentences_module._is_boundary(text, m.start(), m.end()) == _reference_is_boundary(
            text, m.start(), m.end()
        ), (text, m.start())


def test_a_period_opening_a_line_still_sees_the_word_before_the_newline() -> None:
    # "s\n. B": the terminator's previous word is "s" across the newline, a single letter, so no boundary there
    assert sentences_module._is_boundary("s\n. B", 2, 3) is False
    assert sentences_module._is_boundary("word \n. B", 6, 7) is True
