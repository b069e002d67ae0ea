"""The transformers reader on a tiny, hand-set BERT QA model built and saved by the test.

The model is a real `BertForQuestionAnswering` whose weights are set so that its start logit is high exactly on
the word "zebra" and its end logit exactly on "tiger" (attention and feed-forward outputs are zeroed, so each
token's hidden state is its own normalised embedding). Its answer is therefore known in advance wherever the
markers stand, which makes windows, offsets and the answer-length limit checkable.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ModelLoadError
from index.documents import Chunk, Document
from index.passages import RetrievedPassage
from qa.readers.transformers_reader import (
    CALIBRATION_FILE,
    UNCALIBRATED_MIN_SCORE,
    TransformersReader,
    best_spans,
    encode_windows,
    joins_word,
    word_edges,
)
from tests.qa.tiny_bert import minilm_tokenizer, tiny_bert_config

pytestmark = pytest.mark.model

START, END = "zebra", "tiger"
FILLER = "the cohort was followed for several months and outcomes were recorded in the registry"


def build_marker_model(folder: Path) -> Path:
    import torch
    from transformers import BertForQuestionAnswering

    tokenizer = minilm_tokenizer()
    start_id, end_id = (tokenizer.convert_tokens_to_ids(w) for w in (START, END))
    assert tokenizer.unk_token_id not in (start_id, end_id)
    hidden = 32
    config = tiny_bert_config(tokenizer.vocab_size, hidden)
    torch.manual_seed(0)
    model = BertForQuestionAnswering(config).eval()
    v_start = torch.tensor([1.0, -1.0] * (hidden // 2))  # zero mean, unit variance: LayerNorm keeps them
    v_end = torch.tensor([1.0, 1.0, -1.0, -1.0] * (hidden // 4))
    with torch.no_grad():
        emb = model.bert.embeddings
        words = torch.randn(config.vocab_size, hidden)
        for v in (v_start, v_end):  # every other word is orthogonal to both markers: logit exactly 0
            words -= (words @ v)[:, None] * v[None, :] / (v @ v)
        words[start_id], words[end_id] = v_start, v_end
        emb.word_embeddings.weight.copy_(words)
        emb.position_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        for layer in model.bert.encoder.layer:
            for dense in (layer.attention.output.dense, layer.output.dense):
                dense.weight.zero_()
                dense.bias.zero_()
        model.qa_outputs.weight.copy_(torch.stack([v_start, v_end]) * 0.5)
        model.qa_outputs.bias.zero_()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def marker_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_marker_model(tmp_path_factory.mktemp("marker-qa"))


@pytest.fixture(scope="module")
def reader(marker_model: Path) -> TransformersReader:
    r = TransformersReader(str(marker_model), max_answer_tokens=10, max_length=64, stride=16)
    r.warm_up()
    return r


def passages_for(doc: Document, bounds: list[tuple[int, int]]) -> list[RetrievedPassage]:
    return [
        RetrievedPassage(chunk=Chunk.from_document(doc, s, e, i), score=1.0 / (i + 1), rank=i + 1)
        for i, (s, e) in enumerate(bounds)
    ]


def check_invariants(answers, documents) -> None:
    for a in answers:
        doc = documents[a.doc_id]
        assert doc.text[a.start : a.end] == a.text
        assert a.passage.text[a.span_in_passage.start : a.span_in_passage.end] == a.text
        assert a.passage.start <= a.start < a.end <= a.passage.end
        assert a.text == a.text.strip() and a.text
        assert 0.0 <= a.score <= 1.0
        assert 0.0 <= a.details["null_score"] <= 1.0


def test_reads_the_marked_span_with_exact_document_offsets(reader: TransformersReader) -> None:
    text = f"Intro sentence here. {FILLER}. Result: {START} dose was 300 mg {END}. Closing words."
    doc = Document(id="d1", text=text)
    first = text.index("Result")
    answers = reader.run("What was the dose?", passages_for(doc, [(0, 20), (first, len(text))]), {"d1": doc})
    check_invariants(answers, {"d1": doc})
    best = answers[0]
    assert best.text == f"{START} dose was 300 mg {END}"
    assert best.start == text.index(START) and best.end == text.index(END) + len(END)
    assert best.passage.start == first  # cites the passage it was read from
    assert best.score > 0.9 > best.details["null_score"]


def test_answer_beyond_the_first_window_of_a_long_passage(reader: TransformersReader) -> None:
    text = " ".join([FILLER] * 12) + f" finally {START} late answer {END} here. " + " ".join([FILLER] * 2)
    doc = Document(id="long", text=text)
    windows = encode_windows(reader.tokenizer, "Where?", [text], reader.max_length, reader.stride)
    assert len(windows) >= 4
    answers = reader.run("Where is the answer?", passages_for(doc, [(0, len(text))]), {"long": doc}, max_answers=3)
    check_invariants(answers, {"long": doc})
    assert answers[0].text == f"{START} late answer {END}"
    assert answers[0].start == text.index(START)
    assert answers[0].details["window"] > 0
    keys = [(a.start, a.end) for a in answers]
    assert len(keys) == len(set(keys))  # a span seen in two overlapping windows is reported once


def test_span_found_in_overlapping_windows_and_chunks_is_deduplicated(reader: TransformersReader) -> None:
    text = f"{FILLER} {FILLER} {START} shared {END} {FILLER}"
    doc = Document(id="dup", text=text)
    bounds = [(0, len(text)), (len(FILLER) + 1, len(text))]  # two chunks holding the same answer
    answers = reader.run("q?", passages_for(doc, bounds), {"dup": doc}, max_answers=5)
    check_invariants(answers, {"dup": doc})
    assert [a.text for a in answers].count(f"{START} shared {END}") == 1


def test_max_answer_tokens_is_respected(reader: TransformersReader) -> None:
    far = f"{START} " + "one two three four five six seven eight nine ten eleven twelve" + f" {END}"
    doc = Document(id="far", text=f"Start. {far}. End.")
    answers = reader.run("q?", passages_for(doc, [(0, len(doc.text))]), {"far": doc}, max_answers=20)
    check_invariants(answers, {"far": doc})
    assert answers, "valid shorter spans still exist"
    for a in answers:
        n = len(reader.tokenizer(a.text, add_special_tokens=False)["input_ids"])
        assert n <= reader.max_answer_tokens
    assert all(not (START in a.text and END in a.text) for a in answers)


def test_no_passages_empty_passages_and_documents_from_several_sources(reader: TransformersReader) -> None:
    doc = Document(id="e", text="   ")
    assert reader.run("q?", [], {}) == []
    assert reader.run("q?", passages_for(doc, [(0, 3)]), {"e": doc}) == []
    a = Document(id="a", text=f"alpha {START} one {END} beta")
    b = Document(id="b", text=f"gamma {START} two {END} delta")
    answers = reader.run(
        "q?", passages_for(a, [(0, len(a.text))]) + passages_for(b, [(0, len(b.text))]), {"a": a, "b": b}
    )
    check_invariants(answers, {"a": a, "b": b})
    assert {x.doc_id for x in answers[:2]} == {"a", "b"}


def test_over_long_question_still_reads(reader: TransformersReader) -> None:
    doc = Document(id="q", text=f"x {START} y {END} z")
    answers = reader.run("why " * 200, passages_for(doc, [(0, len(doc.text))]), {"q": doc})
    assert answers[0].text == f"{START} y {END}"


def test_best_spans_orders_and_limits() -> None:
    import torch

    start = torch.tensor([0.0, 5.0, 1.0, 0.0, 3.0])
    end = torch.tensor([0.0, 0.0, 4.0, 6.0, 0.0])
    mask = [False, True, True, True, True]
    spans, null = best_spans(start, end, mask, max_answer_tokens=2, top_n=4)
    assert all(s <= e < s + 2 for s, e, *_ in spans)
    assert spans[0][:2] == (1, 2)  # (1, 3) scores higher but is 3 tokens long
    assert [x[2] for x in spans] == sorted((x[2] for x in spans), reverse=True)
    total = sum(x[2] for x in spans)
    assert 0.0 < null < 1.0 and total <= 1.0


@pytest.mark.parametrize(
    ("text", "cut", "expected"),
    [
        ("inhibits SRC.", "inhibits SR", True),  # inside a word (WordPiece: "sr", "##c")
        ("inhibits SRC.", "inhibits SRC", False),
        ("was 12.1 months", "was 12", True),  # inside a decimal number
        ("was 12.1 months", "was 12.", True),
        ("in 1,171 patients", "in 1,", True),  # inside a thousands group
        ("rash (73%), fatigue", "rash (73%)", False),
        ("in 2019, 45 patients", "in 2019", False),  # a comma before a space ends the number
        ("the anti-VEGF arm", "the anti", False),  # a hyphen is an edge
        ("ends here.", "ends here.", False),  # the end of the text
    ],
)
def test_joins_word_says_where_an_edge_would_cut_a_word_or_number(text: str, cut: str, expected: bool) -> None:
    assert text.startswith(cut)
    assert joins_word(text, len(cut)) is expected
    assert joins_word(text, 0) is False


def test_word_edges_mark_token_edges_that_cut_words() -> None:
    text = "SRC at 12.1"
    offsets = [(0, 2), (2, 3), (4, 6), (7, 9), (9, 10), (10, 11)]  # sr ##c at 12 . 1
    can_start, can_end = word_edges(text, offsets)
    assert can_start == [True, False, True, True, False, False]
    assert can_end == [False, True, True, False, False, True]


def test_best_spans_keeps_only_the_allowed_edges_and_the_models_probabilities() -> None:
    import torch

    start = torch.tensor([0.0, 5.0, 1.0, 0.0])
    end = torch.tensor([0.0, 6.0, 2.0, 0.0])
    mask = [False, True, True, True]
    free, null = best_spans(start, end, mask, max_answer_tokens=3, top_n=3)
    assert free[0][:2] == (1, 1)
    edged, edged_null = best_spans(
        start, end, mask, max_answer_tokens=3, top_n=3, can_start=[True] * 4, can_end=[True, False, True, True]
    )
    assert edged[0][:2] == (1, 2)  # the end the model preferred cuts a word: the next allowed one
    assert all(e != 1 for _, e, *_ in edged)
    assert edged_null == null  # one softmax over the window either way
    assert edged[0][2] == pytest.approx(next(x[2] for x in free if x[:2] == (1, 2)))
    assert best_spans(start, end, mask, 3, 3, can_start=[False] * 4) == ([], null)


def test_an_answer_never_ends_or_starts_inside_a_word(reader: TransformersReader) -> None:
    """The marker model ends its span on "tiger"; in "tigerfish" ("tiger", "##fish") that would cut the word."""
    text = f"{FILLER}. Result: {START} dose was 300 mg {END}fish. Closing words."
    doc = Document(id="d1", text=text)
    answers = reader.run("What was the dose?", passages_for(doc, [(0, len(text))]), {"d1": doc})
    check_invariants(answers, {"d1": doc})
    assert answers
    for a in answers:
        assert not joins_word(text, a.start) and not joins_word(text, a.end), a.text
    assert all(not a.text.endswith(END) for a in answers)


def test_missing_folder_is_a_clear_model_load_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-reader"
    with pytest.raises(ModelLoadError, match="no-such-reader"):
        TransformersReader(str(missing)).warm_up()
    doc = Document(id="m", text="some text")
    with pytest.raises(RuntimeError, match="warm_up"):
        TransformersReader(str(missing)).run("q?", passages_for(doc, [(0, 9)]), {"m": doc})


def test_calibration_beside_the_weights_sets_the_readers_threshold_and_weight(marker_model: Path, tmp_path) -> None:
    import json
    import shutil

    plain = TransformersReader(str(marker_model), max_length=64, stride=16)
    plain.warm_up()
    assert plain.min_score == UNCALIBRATED_MIN_SCORE and plain.retrieval_weight == 0.0 and plain.calibration is None
    folder = tmp_path / "calibrated"
    shutil.copytree(marker_model, folder)
    (folder / CALIBRATION_FILE).write_text(json.dumps({"min_answer_score": 0.25, "retrieval_weight": 0.1}))
    calibrated = TransformersReader(str(folder), max_length=64, stride=16)
    calibrated.warm_up()
    assert (calibrated.min_score, calibrated.retrieval_weight, calibrated.coverage_exponent) == (0.25, 0.1, 0.0)
    assert calibrated.secondary_ratio == 0.0  # older calibrations have no ratio: every listed answer kept
    (folder / CALIBRATION_FILE).write_text(
        json.dumps(
            {"min_answer_score": 0.25, "retrieval_weight": 0.1, "coverage_exponent": 2.0, "secondary_ratio": 0.8}
        )
    )
    calibrated = TransformersReader(str(folder), max_length=64, stride=16)
    calibrated.warm_up()
    assert calibrated.coverage_exponent == 2.0 and calibrated.secondary_ratio == 0.8
    (folder / CALIBRATION_FILE).write_text(
        json.dumps({"min_answer_score": 0.25, "retrieval_weight": 0.1, "secondary_ratio": 1.5})
    )
    with pytest.raises(ModelLoadError, match="secondary_ratio must lie in"):
        TransformersReader(str(folder), max_length=64, stride=16).warm_up()
    (folder / CALIBRATION_FILE).write_text(
        json.dumps({"min_answer_score": 0.25, "retrieval_weight": 0.1, "coverage_exponent": -1})
    )
    with pytest.raises(ModelLoadError, match="coverage_exponent >= 0"):
        TransformersReader(str(folder), max_length=64, stride=16).warm_up()
    (folder / CALIBRATION_FILE).write_text(json.dumps({"min_answer_score": 2.0, "retrieval_weight": 0.1}))
    with pytest.raises(ModelLoadError, match=r"calibration\.json.*\[0, 1\]"):
        TransformersReader(str(folder), max_length=64, stride=16).warm_up()
    (folder / CALIBRATION_FILE).write_text("{}")
    with pytest.raises(ModelLoadError, match="not a reader calibration"):
        TransformersReader(str(folder), max_length=64, stride=16).warm_up()


# --- the ONNX backend: only the model call changes, so logits and answers must match torch's ---

ONNX_TEXTS = [
    f"Intro sentence here. {FILLER}. Result: {START} dose was 300 mg {END}. Closing words.",
    " ".join([FILLER] * 12) + f" finally {START} late answer {END} here. " + " ".join([FILLER] * 2),
    f"{FILLER} {FILLER} {START} shared {END} {FILLER}",
    f"Start. {START} one two three four five six seven eight nine ten eleven twelve {END}. End.",
]


@pytest.fixture(scope="module")
def fp32_reader(marker_model: Path) -> TransformersReader:
    """ONNX is fp32: its reference is torch in fp32, whatever `auto` picks on this machine."""
    r = TransformersReader(str(marker_model), max_answer_tokens=10, max_length=64, stride=16, precision="fp32")
    r.warm_up()
    return r


@pytest.fixture(scope="module")
def onnx_reader(marker_model: Path, onnx_cache: Path) -> TransformersReader:
    r = TransformersReader(
        str(marker_model), max_answer_tokens=10, max_length=64, stride=16, backend="onnx", onnx_cache_dir=onnx_cache
    )
    r.warm_up()
    return r


def test_onnx_logits_match_torch_on_every_window(
    fp32_reader: TransformersReader, onnx_reader: TransformersReader
) -> None:
    reader = fp32_reader
    windows = encode_windows(reader.tokenizer, "What was the dose?", ONNX_TEXTS, reader.max_length, reader.stride)
    assert len(windows) >= 6
    torch_start, torch_end = reader._logits(windows)
    onnx_start, onnx_end = onnx_reader._logits(windows)
    assert onnx_start.shape == torch_start.shape and onnx_end.shape == torch_end.shape
    assert float((onnx_start - torch_start).abs().max()) < 1e-4
    assert float((onnx_end - torch_end).abs().max()) < 1e-4


def test_onnx_reader_gives_torch_answers(fp32_reader: TransformersReader, onnx_reader: TransformersReader) -> None:
    """The best answer is identical; below it the marker model scores many spans exactly alike (logit 0), and
    float noise may order such ties differently, so the rest is compared by score only."""
    reader = fp32_reader
    docs = {f"d{i}": Document(id=f"d{i}", text=t) for i, t in enumerate(ONNX_TEXTS)}
    groups = [[d] for d in docs.values()] + [list(docs.values())]
    for question in ("What was the dose?", "Where is the answer?", "why " * 200):
        for group in groups:
            passages = [p for d in group for p in passages_for(d, [(0, len(d.text))])]
            want = reader.run(question, passages, docs, max_answers=5)
            got = onnx_reader.run(question, passages, docs, max_answers=5)
            assert want and START in want[0].text
            key = (want[0].text, want[0].start, want[0].end, want[0].doc_id)
            assert (got[0].text, got[0].start, got[0].end, got[0].doc_id) == key
            assert [a.score for a in got] == pytest.approx([a.score for a in want], abs=1e-5)


def test_a_second_onnx_warm_up_reuses_the_export(
    marker_model: Path, onnx_cache: Path, onnx_reader: TransformersReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.readers import onnx_reader as module
    from runtimes.onnx_export import cache_entry

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached export should have been reused")

    monkeypatch.setattr(module, "trace_to_onnx", no_export)
    entry = cache_entry(marker_model, onnx_cache, module.READER_TASK)
    before = (entry / "meta.json").stat().st_mtime_ns
    again = TransformersReader(str(marker_model), max_length=64, stride=16, backend="onnx", onnx_cache_dir=onnx_cache)
    again.warm_up()
    assert (entry / "meta.json").stat().st_mtime_ns == before
    doc = Document(id="q", text=f"x {START} y {END} z")
    assert again.run("q?", passages_for(doc, [(0, len(doc.text))]), {"q": doc})[0].text == f"{START} y {END}"


def test_unknown_reader_backend_lists_the_choices(marker_model: Path) -> None:
    with pytest.raises(ValueError, match=r"choose one of: torch, onnx$"):
        TransformersReader(str(marker_model), backend="tensorrt")


def test_precision_auto_follows_the_cpu_and_bf16_reads_the_same_answer(
    marker_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.readers import precision

    text = f"Intro. {FILLER}. Result: {START} dose was 300 mg {END}. Closing."
    doc = Document(id="d1", text=text)
    got = {}
    for flags, expected in (({"avx2"}, "fp32"), ({"avx2", "avx512_bf16"}, "bf16")):
        monkeypatch.setattr(precision, "cpu_flags", lambda flags=flags: set(flags))
        r = TransformersReader(str(marker_model), max_answer_tokens=10, max_length=64, stride=16, device="cpu")
        r.warm_up()
        assert r.precision is precision.Precision.AUTO and r.active_precision.value == expected
        got[expected] = r.run("What was the dose?", passages_for(doc, [(0, len(text))]), {"d1": doc})
        check_invariants(got[expected], {"d1": doc})
    assert got["bf16"][0].text == got["fp32"][0].text == f"{START} dose was 300 mg {END}"
    assert (got["bf16"][0].start, got["bf16"][0].end) == (got["fp32"][0].start, got["fp32"][0].end)
    assert got["bf16"][0].score == pytest.approx(got["fp32"][0].score, abs=0.02)


def test_bf16_reader_keeps_linear_weights_in_bf16_with_autocasts_exact_logits(tmp_path: Path) -> None:
    """Storing the Linear weights in bf16 (warm_up) must give the very logits of bf16 autocast over the fp32
    weights (what training's in-memory reader and every earlier measurement used), on a random tiny BERT."""
    import torch
    from transformers import BertForQuestionAnswering

    tokenizer = minilm_tokenizer()
    torch.manual_seed(1)
    BertForQuestionAnswering(tiny_bert_config(tokenizer.vocab_size)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    stored = TransformersReader(str(tmp_path), max_length=64, stride=16, precision="bf16", device="cpu")
    stored.warm_up()
    linears = [m for m in stored.model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(m.weight.dtype == m.bias.dtype == torch.bfloat16 for m in linears)
    assert stored.model.bert.embeddings.word_embeddings.weight.dtype == torch.float32
    fp32 = BertForQuestionAnswering.from_pretrained(tmp_path, dtype=torch.float32).eval()
    autocast = TransformersReader.from_loaded(fp32, tokenizer, max_length=64, stride=16, precision="bf16")
    assert all(p.dtype == torch.float32 for p in fp32.parameters())  # a model in training is never cast
    windows = encode_windows(tokenizer, "What was the dose?", [f"{FILLER}. The dose was 300 mg. " * 4], 64, 16)
    assert len(windows) > 1
    for got, want in zip(stored._logits(windows), autocast._logits(windows), strict=True):
        assert torch.equal(got, want)


def test_onnx_backend_reads_fp32_and_refuses_bf16(marker_model: Path) -> None:
    with pytest.raises(ValueError, match="bf16 is for the torch reader backend only"):
        TransformersReader(str(marker_model), backend="onnx", precision="bf16")
    assert TransformersReader(str(marker_model), backend="onnx").precision == "auto"  # resolved to fp32 on warm-up
