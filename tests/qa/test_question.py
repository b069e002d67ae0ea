from __future__ import annotations

import pytest

from qa.question import AnswerType, analyse


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many participants were enrolled in the extension study?", AnswerType.COUNT),
        ("What percentage of responders relapsed within a year?", AnswerType.PERCENT),
        ("What was the objective response rate with the combination?", AnswerType.PERCENT),
        ("What was the median progression-free survival in the control arm?", AnswerType.DURATION),
        ("How long did responses last?", AnswerType.DURATION),
        ("What dose of the antibody was infused every three weeks?", AnswerType.DOSE),
        ("What is the recommended dosage for adults?", AnswerType.DOSE),
        ("When was the database locked?", AnswerType.DATE),
        ("What was the enrolment cut-off date?", AnswerType.DATE),
        ("In what year was the drug first approved?", AnswerType.YEAR),
        ("What was the odds ratio for relapse?", AnswerType.RATIO),
        ("What does ECOG stand for?", AnswerType.EXPANSION),
        ("Which receptors does the compound bind?", AnswerType.LIST),
        ("Which three cohorts were compared?", AnswerType.LIST),
        ("Which enzyme is inhibited by the compound?", AnswerType.ENTITY),
        ("What kind of receptor is HER2?", AnswerType.DESCRIPTION),
    ],
)
def test_answer_type_from_question_form(question: str, kind: AnswerType) -> None:
    assert analyse(question).answer_type is kind


def test_low_dose_compound_word_is_not_a_dose_question() -> None:
    assert analyse("Which pathway does low-dose aspirin block?").answer_type is AnswerType.ENTITY


def test_head_phrase_and_keywords() -> None:
    a = analyse("Which ferroptosis inhibitors blocked the combined effect?")
    assert a.head == ("ferroptosis", "inhibitors")
    assert a.head_stems == frozenset({"inhibitor"})
    assert "which" not in a.keywords and "inhibitor" in a.keywords
    b = analyse("What was the most frequently reported adverse event?")
    assert b.head[-1] == "event"
    assert analyse("How many sites enrolled patients?").head[0] == "sites"
    assert analyse("What does TTUP stand for?").acronyms == ("TTUP",)
