"""Hostile corpora: arbitrary Unicode, control characters, huge lines and empty documents never crash ingestion,
chunking or the store, and every span still maps back to its document exactly.

Hypothesis generates the inputs; each property names what must hold for all of them. Refusals are allowed, but
only as a CorpusError whose message names the file and record (or document) at fault.
"""

from __future__ import annotations

import json
import re
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from index.chunking import Chunker, ChunkingConfig, whitespace_token_count
from index.documents import Document
from index.embedder import Embedder
from index.errors import CorpusError
from index.ingest import CorpusFormat, InvalidRecordPolicy, load_corpus
from index.lexical import LexicalIndex, tokenize
from index.store import IndexConfig, build_index, load_index

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
SLOW = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)

# Text as hostile as Unicode allows: every category (control characters, separators such as U+2028, combining
# marks, astral planes) and, through JSON escapes, lone surrogates; with sentence punctuation mixed in.
any_char = st.characters(codec=None, exclude_categories=())
punctuation = st.sampled_from(list(". . ? ! ; \n\n \r\n \t \x00 \x0b \x1c \x85 \u2028 \u2029 ... e.g. vs. 95% CI"))
hostile_text = st.lists(
    st.one_of(any_char, punctuation, st.sampled_from(["word", "Sorafenib", "16.43"])), max_size=300
).map("".join)


def huge_line(n: int, spaces: bool) -> str:
    unit = "abcdefghij " if spaces else "abcdefghij"
    return (unit * (n // len(unit) + 1))[:n]


def check_chunks(doc: Document, chunks: list, max_tokens: int, count) -> None:
    """The chunking contract: exact spans, in order, ordinals 0..n-1, within budget unless one word exceeds it,
    and no non-space character of the document left out of every chunk."""
    covered = bytearray(len(doc.text))
    for i, c in enumerate(chunks):
        assert c.ordinal == i and c.id == f"{doc.id}#{i}" and c.doc_id == doc.id
        assert 0 <= c.start < c.end <= len(doc.text)
        assert c.text == doc.text[c.start : c.end]
        if count(c.text) > max_tokens:
            assert len(c.text.split()) == 1, "only a single over-long word may exceed the budget"
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
        if i:
            assert c.start >= chunks[i - 1].start
    missed = [i for i, ch in enumerate(doc.text) if not ch.isspace() and not covered[i]]
    assert not missed, f"characters at {missed[:10]} are in no chunk"


@FAST
@given(text=hostile_text, max_tokens=st.integers(8, 64), overlap=st.integers(0, 3))
@example(text="", max_tokens=8, overlap=1)
@example(text=" \n\t\u2028 ", max_tokens=8, overlap=1)
@example(text=huge_line(200_000, spaces=True), max_tokens=128, overlap=1)
@example(text=huge_line(200_000, spaces=False), max_tokens=128, overlap=1)
@example(text="A." * 5000, max_tokens=8, overlap=2)
def test_chunking_any_text_keeps_exact_spans(text: str, max_tokens: int, overlap: int) -> None:
    doc = Document("d", text)
    chunks = Chunker(ChunkingConfig(max_tokens, overlap), whitespace_token_count).chunk(doc)
    check_chunks(doc, chunks, max_tokens, whitespace_token_count)
    if text.strip():
        assert chunks


@FAST
@given(texts=st.lists(hostile_text, max_size=6), query=hostile_text)
def test_bm25_indexes_and_searches_any_text(texts: list[str], query: str) -> None:
    index = LexicalIndex.build(texts)
    hits = index.search(query, 5)
    assert all(0 <= i < len(texts) and score > 0 for i, score in hits)
    assert [i for i, _ in hits] == sorted({i for i, _ in hits}, key=[i for i, _ in hits].index)
    assert all(isinstance(t, str) for t in tokenize(query))


record = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=12), st.integers(), st.none(), st.booleans(), st.lists(st.integers())),
        "text": st.one_of(hostile_text, st.none(), st.integers()),
        "title": st.one_of(hostile_text, st.none(), st.integers()),
        "meta": st.one_of(st.dictionaries(st.text(max_size=5), st.text(max_size=5)), st.text(max_size=5)),
    },
)
line = st.one_of(
    record.map(lambda r: ("record", r)),
    st.sampled_from(["", "   ", "[1, 2]", '"a string"', "{not json", "null", "{}"]).map(lambda s: ("raw", s)),
)


@FAST
@given(lines=st.lists(line, max_size=12), ascii_only=st.booleans())
@example(lines=[("raw", '{"id": "x", "text": "lone \\ud800 surrogate"}')], ascii_only=True)
def test_jsonl_ingestion_keeps_the_valid_records_and_names_the_rest(
    lines: list[tuple[str, object]], ascii_only: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("jsonl") / "corpus.jsonl"
    raw = [json.dumps(x, ensure_ascii=ascii_only) if kind == "record" else str(x) for kind, x in lines]
    with path.open("w", encoding="utf-8", errors="surrogatepass", newline="\n") as fh:
        fh.write("\n".join(r.replace("\n", " ") for r in raw) + "\n")
    try:
        result = load_corpus(path, CorpusFormat.JSONL, InvalidRecordPolicy.SKIP)
    except CorpusError as err:
        assert str(path) in str(err)
        return
    ids = [d.id for d in result.documents]
    assert len(ids) == len(set(ids)) and all(isinstance(i, str) and i.strip() for i in ids)
    assert all(isinstance(d.text, str) and d.text.strip() for d in result.documents)
    for skipped in result.skipped:
        assert re.match(rf"{re.escape(str(path))}:\d+$", skipped.location) and skipped.reason


@FAST
@given(files=st.dictionaries(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), st.binary(max_size=300), max_size=5))
def test_text_folder_ingestion_never_crashes(files: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("texts")
    for name, data in files.items():
        (folder / f"{name}.txt").write_bytes(data)
    try:
        result = load_corpus(folder, CorpusFormat.TEXT_DIR, InvalidRecordPolicy.SKIP)
    except CorpusError as err:
        assert str(folder) in str(err)
        return
    assert all(d.text.strip() for d in result.documents)
    assert all(s.reason for s in result.skipped)


@FAST
@given(title=hostile_text, abstract=hostile_text)
def test_pubmed_xml_ingestion_of_any_text_parses_or_is_refused_by_name(
    title: str, abstract: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("xml") / "corpus.xml"
    xml = (
        "<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>"
        f"<ArticleTitle>{escape(title)}</ArticleTitle><Abstract><AbstractText>{escape(abstract)}</AbstractText>"
        "</Abstract></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"
    )
    path.write_text(xml, encoding="utf-8", errors="surrogatepass")
    try:
        load_corpus(path, CorpusFormat.PUBMED_XML, InvalidRecordPolicy.SKIP)
    except CorpusError as err:
        assert str(path) in str(err)


documents = st.lists(
    st.builds(
        Document,
        id=st.text(min_size=1, max_size=10),
        text=st.one_of(hostile_text, st.just(""), st.just(huge_line(4_000, spaces=False))),
        title=st.one_of(st.none(), hostile_text),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda d: d.id,
)


@pytest.mark.model
@SLOW
@given(docs=documents)
@example(docs=[Document("ok", "Fine text."), Document("bad", "lone \ud800 surrogate")])
@example(docs=[Document("e", ""), Document("c", "\x00\x1c\u2028 control characters. " * 20, title="\x85")])
def test_the_store_round_trips_any_documents_or_refuses_them_by_name(
    docs: list[Document], embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Real tokenizer, embedder, FAISS, BM25 and files: what goes in comes back out, spans included."""
    index_dir = tmp_path_factory.mktemp("store")
    try:
        build_index(docs, embedder, index_dir, IndexConfig())
    except CorpusError as err:
        bad = [d for d in docs if not _encodable(d)]
        assert bad, f"refused a storable corpus: {err}"
        assert any(repr(d.id) in str(err) for d in bad)
        return
    assert all(_encodable(d) for d in docs)
    index = load_index(index_dir, IndexConfig(), embedder.model_name, embedder.fingerprint)
    assert list(index.documents.values()) == docs
    assert index.dense.ntotal == len(index.chunks)
    for doc in docs:
        check_chunks(doc, index.chunks_of(doc.id), 128, embedder.count_tokens)


def _encodable(doc: Document) -> bool:
    try:
        json.dumps(doc.to_json(), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
