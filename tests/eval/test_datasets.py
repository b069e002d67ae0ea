"""Each gold loader on small files written here, and format detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.datasets import GoldError, GoldFormat, detect_format, load_gold
from eval.runner import select_examples


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return _write_jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"id": "d1", "text": "Aspirin reduced infarction by 44%."},
            {"id": "d2", "text": "Metformin lowered HbA1c by 1.2 points."},
        ],
    )


def test_jsonl_gold_with_its_corpus(tmp_path: Path, corpus: Path) -> None:
    gold = _write_jsonl(
        tmp_path / "gold.jsonl",
        [
            {"id": "q1", "question": "How much?", "answers": ["44%", "44 %"], "doc_ids": ["d1"]},
            {"id": 2, "question": "Both?", "answers": ["x"], "doc_ids": ["d1", "d2"]},
            {"id": "q3", "question": "Capital of Peru?", "answers": [], "doc_ids": []},
        ],
    )
    g = load_gold(gold, corpus=corpus)
    assert g.format is GoldFormat.JSONL
    assert [d.id for d in g.documents] == ["d1", "d2"]
    assert not g.retrieval_only
    q1, q2, q3 = g.examples
    assert q1.answers == ("44%", "44 %")
    assert q1.relevant == {"d1": 1}
    assert q2.id == "2"
    assert q2.gold_doc_ids == ["d1", "d2"]
    assert q3.answerable is False
    assert q3.relevant == {}


def test_jsonl_gold_defaults_to_the_builtin_corpus(tmp_path: Path) -> None:
    gold = _write_jsonl(
        tmp_path / "gold.jsonl", [{"id": "q", "question": "?", "answers": ["a"], "doc_ids": ["abs-01"]}]
    )
    g = load_gold(gold)
    assert "abs-01" in {d.id for d in g.documents}
    assert g.corpus_source.endswith("abstracts.jsonl")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "q", "question": "?", "answers": ["a"], "doc_ids": ["nope"]}, "not in the corpus"),
        ({"id": "q", "question": "", "answers": [], "doc_ids": []}, "question"),
        ({"id": "q", "question": "?", "answers": "a", "doc_ids": []}, "answers"),
        ({"question": "?", "answers": [], "doc_ids": []}, "'id'"),
    ],
)
def test_jsonl_gold_refusals_name_the_line(tmp_path: Path, corpus: Path, row: dict, message: str) -> None:
    gold = _write_jsonl(tmp_path / "gold.jsonl", [{"id": "ok", "question": "?", "answers": [], "doc_ids": []}, row])
    with pytest.raises(GoldError, match=rf"gold.jsonl:2: .*{message}"):
        load_gold(gold, corpus=corpus)


def test_jsonl_gold_refuses_duplicate_ids(tmp_path: Path, corpus: Path) -> None:
    row = {"id": "q", "question": "?", "answers": [], "doc_ids": []}
    with pytest.raises(GoldError, match="duplicate question id 'q'"):
        load_gold(_write_jsonl(tmp_path / "gold.jsonl", [row, row]), corpus=corpus)


def _squad(version: str) -> dict:
    return {
        "version": version,
        "data": [
            {
                "title": "Super_Bowl_50",
                "paragraphs": [
                    {
                        "context": "Super Bowl 50 was played in Santa Clara.",
                        "qas": [
                            {
                                "id": "s1",
                                "question": "Where was Super Bowl 50 played?",
                                "answers": [
                                    {"text": "Santa Clara", "answer_start": 28},
                                    {"text": "Santa Clara", "answer_start": 28},
                                ],
                            }
                        ],
                    },
                    {
                        "context": "The Broncos won.",
                        "qas": [
                            {
                                "id": "s2",
                                "question": "Who lost?",
                                "answers": [],
                                "plausible_answers": [{"text": "Broncos", "answer_start": 4}],
                                "is_impossible": True,
                            }
                        ],
                    },
                ],
            }
        ],
    }


def test_squad_paragraphs_become_documents(tmp_path: Path) -> None:
    path = tmp_path / "dev-v2.0.json"
    path.write_text(json.dumps(_squad("v2.0")), encoding="utf-8")
    g = load_gold(path)
    assert g.format is GoldFormat.SQUAD
    assert [(d.id, d.title) for d in g.documents] == [
        ("Super Bowl 50:0", "Super Bowl 50"),
        ("Super Bowl 50:1", "Super Bowl 50"),
    ]
    s1, s2 = g.examples
    assert s1.answers == ("Santa Clara", "Santa Clara")
    assert s1.relevant == {"Super Bowl 50:0": 1}
    # v2.0 is_impossible: unanswerable (plausible answers are not gold), but its paragraph is still its document
    assert s2.answerable is False
    assert s2.relevant == {"Super Bowl 50:1": 1}


def test_squad_document_id_names_the_document(tmp_path: Path) -> None:
    data = {"data": [{"paragraphs": [{"document_id": 1667, "context": "C. difficile is a bacterium.", "qas": [
        {"id": "913", "question": "What is C. difficile?", "answers": [{"text": "a bacterium", "answer_start": 16}],
         "is_impossible": False}]}]}]}  # fmt: skip
    path = tmp_path / "covid.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    g = load_gold(path)
    assert [d.id for d in g.documents] == ["1667"]
    assert g.documents[0].title is None
    assert g.examples[0].relevant == {"1667": 1}


def test_squad_refuses_one_document_id_for_two_contexts(tmp_path: Path) -> None:
    paras = [{"document_id": 1, "context": text, "qas": []} for text in ("one text", "another text")]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"data": [{"paragraphs": paras}]}), encoding="utf-8")
    with pytest.raises(GoldError, match=r"paragraphs\[1\].*'1' is used for two different contexts"):
        load_gold(path, GoldFormat.SQUAD)


def test_pubmedqa_is_retrieval_only_over_its_abstracts(tmp_path: Path) -> None:
    data = {
        "111": {"QUESTION": "Does X help?", "CONTEXTS": ["Background one.", "Results one."], "final_decision": "yes"},
        "222": {"QUESTION": "Is Y safe?", "CONTEXTS": ["Only section."], "final_decision": "no"},
    }
    path = tmp_path / "ori_pqal.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    g = load_gold(path)
    assert g.format is GoldFormat.PUBMEDQA
    assert g.retrieval_only
    assert {d.id: d.text for d in g.documents} == {"111": "Background one.\nResults one.", "222": "Only section."}
    assert all(d.title is None for d in g.documents)  # the question is the article title: it must not leak in
    assert [(e.id, e.question, e.relevant) for e in g.examples] == [
        ("111", "Does X help?", {"111": 1}),
        ("222", "Is Y safe?", {"222": 1}),
    ]


def _beir(root: Path) -> Path:
    root.mkdir()
    _write_jsonl(
        root / "corpus.jsonl",
        [
            {"_id": "c1", "title": "Aspirin", "text": "Aspirin and infarction."},
            {"_id": "c2", "title": "Title only", "text": ""},
            {"_id": "c3", "title": "", "text": "Metformin."},
        ],
    )
    _write_jsonl(root / "queries.jsonl", [{"_id": "q1", "text": "aspirin"}, {"_id": "q2", "text": "unjudged"}])
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tc1\t2\nq1\tc3\t0\nq1\tc2\t1\n")
    return root


def test_beir_folder_keeps_graded_judgements(tmp_path: Path) -> None:
    g = load_gold(_beir(tmp_path / "scifact"))
    assert g.format is GoldFormat.BEIR
    assert g.retrieval_only and g.ignore_identical_ids
    docs = {d.id: d for d in g.documents}
    assert (docs["c1"].title, docs["c1"].text) == ("Aspirin", "Aspirin and infarction.")
    assert (docs["c2"].title, docs["c2"].text) == (None, "Title only")
    assert docs["c3"].title is None
    assert [e.id for e in g.examples] == ["q1"]  # only judged queries are scored
    assert g.examples[0].relevant == {"c1": 2, "c3": 0, "c2": 1}
    assert g.examples[0].gold_doc_ids == ["c1", "c2"]


def test_beir_refuses_judgements_of_unknown_queries(tmp_path: Path) -> None:
    root = _beir(tmp_path / "b")
    with (root / "qrels" / "test.tsv").open("a") as fh:
        fh.write("q9\tc1\t1\n")
    with pytest.raises(GoldError, match="q9"):
        load_gold(root)


def test_format_detection(tmp_path: Path) -> None:
    squad = tmp_path / "s.json"
    squad.write_text(json.dumps(_squad("1.1")))
    pqa = tmp_path / "p.json"
    pqa.write_text(json.dumps({"1": {"QUESTION": "q", "CONTEXTS": ["c"]}}))
    other = tmp_path / "o.json"
    other.write_text(json.dumps({"rows": []}))
    assert detect_format(squad) is GoldFormat.SQUAD
    assert detect_format(pqa) is GoldFormat.PUBMEDQA
    assert detect_format(tmp_path / "x.jsonl") is GoldFormat.JSONL
    assert detect_format(_beir(tmp_path / "beir")) is GoldFormat.BEIR
    with pytest.raises(GoldError, match="--format"):
        detect_format(other)


def test_corpus_is_refused_for_gold_sets_that_carry_their_own(tmp_path: Path, corpus: Path) -> None:
    squad = tmp_path / "s.json"
    squad.write_text(json.dumps(_squad("1.1")))
    with pytest.raises(GoldError, match="--corpus applies to JSONL gold only"):
        load_gold(squad, corpus=corpus)


def test_limit_takes_a_seeded_sample_in_file_order(tmp_path: Path) -> None:
    rows = [{"id": f"q{i}", "question": "?", "answers": [], "doc_ids": []} for i in range(50)]
    g = load_gold(_write_jsonl(tmp_path / "g.jsonl", rows))
    first = select_examples(g.examples, 10, seed=1)
    assert len(first) == 10
    assert first == select_examples(g.examples, 10, seed=1)
    assert [e.id for e in first] == sorted((e.id for e in first), key=lambda i: int(i[1:]))
    assert first != select_examples(g.examples, 10, seed=2)
    assert select_examples(g.examples, None, seed=1) == g.examples
