from __future__ import annotations

from pathlib import Path

from index.lexical import LexicalIndex, tokenize


def test_tokenize_stems_drops_stopwords_and_folds_british_spelling() -> None:
    assert tokenize("The patients randomised") == tokenize("patients randomized")
    assert "the" not in tokenize("the of and")
    assert tokenize("3 mg") == ["3", "mg"]


def test_all_stopword_corpus_is_guarded(tmp_path: Path) -> None:
    lex = LexicalIndex.build(["the and of", "a an the"])
    assert lex.bm25 is None
    assert lex.search("anything at all", 5) == []
    lex.save(tmp_path / "bm25")
    assert LexicalIndex.load(tmp_path / "bm25", 2, 1.2, 0.75).search("the", 3) == []


def test_search_ranks_and_round_trips(tmp_path: Path) -> None:
    texts = ["sorafenib in liver cancer", "lenvatinib versus sorafenib", "thyroid cancer and iodine"]
    lex = LexicalIndex.build(texts)
    hits = lex.search("lenvatinib sorafenib", 3)
    assert hits[0][0] == 1
    assert all(score > 0 for _, score in hits)
    assert lex.search("unknownword", 3) == []
    lex.save(tmp_path / "bm25")
    again = LexicalIndex.load(tmp_path / "bm25", 3, 1.2, 0.75)
    assert again.search("lenvatinib sorafenib", 3) == hits
