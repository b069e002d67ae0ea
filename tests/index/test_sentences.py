from __future__ import annotations

import pytest

from index.sentences import split_sentences


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
