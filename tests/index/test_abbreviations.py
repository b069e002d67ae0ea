from __future__ import annotations

from index.abbreviations import abbreviation_map, expand_query, find_abbreviations


def test_long_forms_with_exact_offsets() -> None:
    text = (
        "Median overall survival (OS) improved. Patients received transarterial chemoembolisation (TACE) until "
        "time to untreatable (unTACEable) progression (TTUP). It activates AMP-activated protein kinase (AMPK)."
    )
    found = {a.short: a for a in find_abbreviations(text)}
    assert found["OS"].long == "overall survival"
    assert found["TACE"].long == "transarterial chemoembolisation"
    assert found["TTUP"].long == "time to untreatable (unTACEable) progression"
    assert found["AMPK"].long == "AMP-activated protein kinase"
    for a in found.values():
        assert text[a.start : a.end] == a.long


def test_non_abbreviations_are_ignored() -> None:
    text = "The rate was 30% (n = 12) and (95% CI 1-2) in (some) patients (P=0.01)."
    assert find_abbreviations(text) == []


def test_map_collects_every_long_form() -> None:
    table = abbreviation_map(["objective response rate (ORR)", "overall response rate (ORR)"])
    assert table["ORR"] == {"objective response rate", "overall response rate"}


def test_expand_query_adds_the_other_form_only() -> None:
    table = {"OS": {"overall survival"}, "PFS": {"progression-free survival"}}
    assert expand_query("median overall survival with X", table) == "median overall survival with X OS"
    assert expand_query("What was the PFS?", table) == "What was the PFS? progression-free survival"
    assert expand_query("cost of care", table) == "cost of care"
    assert expand_query("OSTEOPOROSIS survival", table) == "OSTEOPOROSIS survival"
