from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.errors import CorpusError
from index.ingest import CorpusFormat, InvalidRecordPolicy, corpus_fingerprint, detect_format, load_corpus

PUBMED_XML = """<?xml version="1.0" ?>
<PubmedArticleSet>
  <PubmedArticle>
    <MedlineCitation Status="MEDLINE" Owner="NLM">
      <PMID Version="1">11111111</PMID>
      <Article PubModel="Print">
        <Journal><Title>Journal of Tests</Title><JournalIssue><PubDate><Year>2021</Year></PubDate></JournalIssue></Journal>
        <ArticleTitle>A trial of <i>something</i> in liver cancer.</ArticleTitle>
        <Abstract>
          <AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">Liver cancer is common.</AbstractText>
          <AbstractText Label="RESULTS" NlmCategory="RESULTS">Median OS was 12.1 months (95% CI, 10.0-14.2).</AbstractText>
        </Abstract>
      </Article>
    </MedlineCitation>
  </PubmedArticle>
  <PubmedArticle>
    <MedlineCitation><PMID Version="1">22222222</PMID>
      <Article><ArticleTitle>Unstructured</ArticleTitle>
        <Abstract><AbstractText>One plain paragraph.</AbstractText></Abstract></Article>
    </MedlineCitation>
  </PubmedArticle>
  <PubmedArticle>
    <MedlineCitation><PMID Version="1">33333333</PMID>
      <Article><ArticleTitle>No abstract here</ArticleTitle></Article>
    </MedlineCitation>
  </PubmedArticle>
</PubmedArticleSet>
"""


def write_jsonl(path: Path, rows: list[object | str]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_jsonl_with_title_and_metadata(tmp_path: Path) -> None:
    p = write_jsonl(
        tmp_path / "c.jsonl", [{"id": "a", "text": "Alpha.", "title": "T", "year": 2020}, {"id": 7, "text": "B."}]
    )
    docs = load_corpus(p).documents
    assert [d.id for d in docs] == ["a", "7"]
    assert docs[0].title == "T" and docs[0].meta == {"year": 2020}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{not json", "invalid JSON"),
        ('["a", "b"]', "expected a JSON object"),
        ({"text": "no id"}, "missing or empty 'id'"),
        ({"id": "x", "text": "   "}, "empty or missing 'text'"),
        ({"id": "x"}, "empty or missing 'text'"),
        ({"id": "x", "text": "ok", "title": 5}, "'title' must be a string"),
    ],
)
def test_bad_jsonl_record_names_file_and_line(tmp_path: Path, row: object, message: str) -> None:
    p = write_jsonl(tmp_path / "bad.jsonl", [{"id": "ok", "text": "Fine."}, row])
    with pytest.raises(CorpusError) as err:
        load_corpus(p)
    assert f"{p}:2" in str(err.value) and message in str(err.value)


def test_duplicate_ids_refused_then_skipped_and_counted(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "dup.jsonl", [{"id": "a", "text": "One."}, {"id": "a", "text": "Two."}, "", "oops"])
    with pytest.raises(CorpusError, match=r"dup.jsonl:2: duplicate id 'a' \(first seen at .*dup.jsonl:1\)"):
        load_corpus(p)
    result = load_corpus(p, on_invalid=InvalidRecordPolicy.SKIP)
    assert [d.text for d in result.documents] == ["One."]
    assert [s.location.rsplit(":", 1)[1] for s in result.skipped] == ["2", "4"]


def test_pubmed_xml_structured_abstract(tmp_path: Path) -> None:
    p = tmp_path / "pubmed.xml"
    p.write_text(PUBMED_XML, encoding="utf-8")
    assert detect_format(p) is CorpusFormat.PUBMED_XML
    with pytest.raises(CorpusError, match=r"PubmedArticle #3 \(PMID 33333333\).*empty"):
        load_corpus(p)
    result = load_corpus(p, on_invalid=InvalidRecordPolicy.SKIP)
    first, second = result.documents
    assert first.id == "11111111"
    assert first.title == "A trial of something in liver cancer."
    assert first.text == "BACKGROUND: Liver cancer is common.\nRESULTS: Median OS was 12.1 months (95% CI, 10.0-14.2)."
    assert first.meta == {"pmid": "11111111", "journal": "Journal of Tests", "year": "2021"}
    assert second.text == "One plain paragraph."
    assert len(result.skipped) == 1


def test_malformed_and_hostile_xml_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text("<PubmedArticleSet><PubmedArticle>", encoding="utf-8")
    with pytest.raises(CorpusError, match="not well-formed"):
        load_corpus(broken)
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        "<PubmedArticleSet>&b;</PubmedArticleSet>",
        encoding="utf-8",
    )
    with pytest.raises(CorpusError, match="refused XML"):
        load_corpus(bomb)
    other = tmp_path / "other.xml"
    other.write_text("<html><body/></html>", encoding="utf-8")
    with pytest.raises(CorpusError, match="expected a PubmedArticleSet"):
        load_corpus(other)


def test_text_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("  First abstract.  \n", encoding="utf-8")
    (tmp_path / "sub" / "b.txt").write_text("Second abstract.", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe not utf8")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    result = load_corpus(tmp_path, on_invalid=InvalidRecordPolicy.SKIP)
    assert {d.id: d.text for d in result.documents} == {"a": "First abstract.", "sub/b": "Second abstract."}
    assert sorted(Path(s.location).name for s in result.skipped) == ["bad.txt", "empty.txt"]


def test_missing_empty_and_unknown_inputs(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="corpus not found"):
        load_corpus(tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="no usable documents"):
        load_corpus(empty)
    odd = tmp_path / "data.bin"
    odd.write_text("plain words", encoding="utf-8")
    with pytest.raises(CorpusError, match="cannot tell the corpus format"):
        load_corpus(odd)
    with pytest.raises(CorpusError, match=r"folder holds no \.txt files"):
        load_corpus(_empty_dir(tmp_path))


def _empty_dir(tmp_path: Path) -> Path:
    d = tmp_path / "nothing"
    d.mkdir()
    return d


def test_fingerprint_is_order_independent_and_content_sensitive(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "text": "X."}, {"id": "2", "text": "Y."}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": "2", "text": "Y."}, {"id": "1", "text": "X."}])
    c = write_jsonl(tmp_path / "c.jsonl", [{"id": "2", "text": "Y!"}, {"id": "1", "text": "X."}])
    fa, fb, fc = (corpus_fingerprint(load_corpus(p).documents) for p in (a, b, c))
    assert fa == fb != fc


def test_lone_surrogate_text_is_refused_or_skipped(tmp_path: Path) -> None:
    p = tmp_path / "s.jsonl"
    p.write_text('{"id": "ok", "text": "Fine."}\n{"id": "bad", "text": "broken \\ud800 text"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"s.jsonl:2: .*not valid Unicode"):
        load_corpus(p)
    result = load_corpus(p, on_invalid=InvalidRecordPolicy.SKIP)
    assert [d.id for d in result.documents] == ["ok"] and len(result.skipped) == 1
