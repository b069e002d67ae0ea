"""Reader training end to end on a tiny SQuAD fixture with a tiny BERT: save, load, answer, resume."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest

from index.documents import Chunk, Document
from index.passages import RetrievedPassage
from qa.readers.transformers_reader import TransformersReader
from qa.training.data import load_squad, sha256_file
from qa.training.trainer import (
    CHECKPOINT_DIR,
    CHECKPOINT_FILE,
    TrainConfig,
    TrainingError,
    check_separate,
    dev_subset,
    export_compact,
    load_checkpoint,
    lr_at,
    run_training,
    score_saved_reader,
)
from tests.qa.tiny_bert import minilm_tokenizer, tiny_bert_config

FACTS = [
    ("What was the median survival?", "16.4 months"),
    ("Which drug was given?", "tremelimumab"),
    ("How many patients were enrolled?", "1171 patients"),
    ("Where was the trial run?", "in 16 countries"),
]
FILLER = "The study protocol was approved and the data were analysed by an independent committee. "


def squad_file(path: Path, seed: int) -> Path:
    """Two long contexts (several 64-token windows each) with answers at known offsets."""
    paragraphs = []
    for d in range(2):
        context, qas = FILLER * (2 + d + seed), []
        for i, (question, answer) in enumerate(FACTS):
            context += f"Finding {i}: {answer}. " + FILLER * (1 + (i + seed) % 2)
            qas.append(
                {
                    "id": f"{seed}-{d}-{i}",
                    "question": question,
                    "answers": [
                        {"text": answer, "answer_start": context.index(f"Finding {i}: ") + len(f"Finding {i}: ")}
                    ],
                }
            )
        paragraphs.append({"document_id": f"{seed}{d}", "context": context + f"Appendix {seed}.", "qas": qas})
    path.write_text(json.dumps({"data": [{"paragraphs": paragraphs}]}))
    return path


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT encoder (no QA head) with the bundled MiniLM tokenizer."""
    import torch
    from transformers import BertModel

    folder = tmp_path_factory.mktemp("tiny-base")
    tokenizer = minilm_tokenizer()
    torch.manual_seed(0)
    BertModel(tiny_bert_config(tokenizer.vocab_size)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("squad")
    return squad_file(folder / "tiny-train.json", 0), squad_file(folder / "tiny-dev.json", 1)


def config_for(tiny_base: Path, data: tuple[Path, Path], output: Path, **kw) -> TrainConfig:
    base = dict(
        train_paths=(data[0],),
        dev_paths=(data[1],),
        output_dir=output,
        base_model=str(tiny_base),
        epochs=3,
        batch_size=4,
        lr=5e-4,
        max_length=64,
        stride=16,
        negative_ratio=1.0,
        seed=7,
        max_steps=4,
        eval_every=2,
        dev_sample=0,
        eval_max_answer_tokens=10,
        threads=1,
    )
    return TrainConfig(**{**base, **kw})


@pytest.mark.model
def test_trains_saves_a_folder_the_reader_loads_and_answers(tiny_base, data, tmp_path) -> None:
    import torch
    from safetensors import safe_open

    out = tmp_path / "reader"
    result = run_training(config_for(tiny_base, data, out), progress=False)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "training.json").read_text())
    assert report["data"]["train"][0]["sha256"] == sha256_file(data[0])
    assert report["hyperparameters"]["seed"] == 7 and report["hyperparameters"]["max_steps"] == 4
    assert [e["step"] for e in report["evals"]] == [2, 4]
    assert report["final_dev"]["tiny-dev.json"]["questions"] == 8 and report["steps"]["done"] == 4
    assert report["windows"]["positive"] >= 8 and report["device"] == "cpu" and report["wall_time_s"] > 0
    assert report["speed"]["windows_per_s"] > 0 and report["speed"]["tokens_per_s"] > 0
    assert 0.0 <= result.dev.f1 <= 1.0 and result.best_step in (2, 4)
    assert set(json.loads((out / "dev_predictions.json").read_text())) == {ex.id for ex in load_squad(data[1])}

    reader = TransformersReader(str(out), max_answer_tokens=10, max_length=64, stride=16)
    reader.warm_up()
    doc = Document(id="d", text=load_squad(data[1])[0].context)
    passage = RetrievedPassage(chunk=Chunk.from_document(doc, 0, len(doc.text), 0), score=1.0, rank=1)
    answers = reader.run(FACTS[0][0], [passage], {"d": doc}, max_answers=3)
    assert answers
    for a in answers:
        assert doc.text[a.start : a.end] == a.text and 0.0 <= a.score <= 1.0

    compact = export_compact(out, tmp_path / "compact")
    with safe_open(str(compact / "model.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}  # noqa: SIM118 (not a dict)
    assert (compact / "model.safetensors").stat().st_size < 0.6 * (out / "model.safetensors").stat().st_size
    assert not (compact / CHECKPOINT_DIR).exists() and (compact / "training.json").exists()
    small = TransformersReader(str(compact), max_answer_tokens=10, max_length=64, stride=16)
    small.warm_up()
    assert next(small.model.parameters()).dtype == torch.float32  # fp16 on disk, fp32 in memory
    again = small.run(FACTS[0][0], [passage], {"d": doc}, max_answers=3)
    assert [a.text for a in again][:1] == [a.text for a in answers][:1]


class Interrupted(Exception):
    pass


@pytest.mark.model
def test_resume_continues_the_same_trajectory(tiny_base, data, tmp_path) -> None:
    straight = config_for(tiny_base, data, tmp_path / "straight")
    run_training(straight, progress=False)

    interrupted = replace(straight, output_dir=tmp_path / "resumed")

    def stop_after_first_eval(message: str) -> None:
        if message.startswith("step 2:"):
            raise Interrupted

    with pytest.raises(Interrupted):
        run_training(interrupted, say=stop_after_first_eval, progress=False)
    ckpt = interrupted.output_dir / CHECKPOINT_DIR / CHECKPOINT_FILE
    assert int(load_checkpoint(ckpt)["step"]) == 2

    messages: list[str] = []
    run_training(replace(interrupted, resume=True), say=messages.append, progress=False)
    assert any("resumed" in m and "step 2" in m for m in messages)
    a = load_checkpoint(straight.output_dir / CHECKPOINT_DIR / CHECKPOINT_FILE)
    b = load_checkpoint(ckpt)
    assert int(a["step"]) == int(b["step"]) == 4
    assert all((a["model"][k] == b["model"][k]).all() for k in a["model"])
    assert json.loads(a["evals"])[-1]["mean_f1"] == json.loads(b["evals"])[-1]["mean_f1"]

    with pytest.raises(TrainingError, match="other hyperparameters"):
        run_training(replace(interrupted, resume=True, lr=1e-3), progress=False)


@pytest.mark.model
def test_without_final_eval_the_kept_weights_score_apart_as_the_trainer_scores_them(tiny_base, data, tmp_path) -> None:
    with_final = run_training(config_for(tiny_base, data, tmp_path / "a"), progress=False)
    config = config_for(tiny_base, data, tmp_path / "b", final_eval=False)
    without = run_training(config, progress=False)
    report = json.loads((config.output_dir / "training.json").read_text())
    assert report["final_dev"] is None and not (config.output_dir / "dev_predictions.json").exists()
    assert without.best_step == with_final.best_step and report["steps"]["done"] == 4
    best = next(e for e in report["evals"] if e["step"] == without.best_step)
    assert without.dev.f1 == best["tiny-dev.json"]["f1"]  # the dev sample's figure (here the whole file)

    settings = {k: report["evaluation"][k] for k in ("max_answer_tokens", "max_length", "stride", "precision")}
    scored = score_saved_reader(config.output_dir, {str(data[1]): load_squad(data[1])}, **settings)
    assert scored["tiny-dev.json"].summary() == with_final.report["final_dev"]["tiny-dev.json"]


def test_training_and_reading_import_no_search_code() -> None:
    """A GPU machine lent for training has torch and transformers but not FAISS, BM25 or pydantic: the trainer
    and the reader must import without them (scripts/train_reader_device.py runs there)."""
    import subprocess
    import sys

    blocked = ["faiss", "bm25s", "pydantic", "pydantic_settings", "fastapi", "onnxruntime", "ray"]
    code = (
        f"import sys\nfor m in {blocked!r}: sys.modules[m] = None\n"
        "import qa.training.trainer, qa.training.data, qa.readers.transformers_reader, qa.training.model_card\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_hard_negatives_join_the_trajectory_only_when_used(data, tmp_path) -> None:
    plain = TrainConfig(train_paths=(data[0],), dev_paths=(data[1],), output_dir=tmp_path)
    assert "hard_negative_share" not in plain.trajectory()  # checkpoints of earlier runs still resume
    assert replace(plain, hard_negative_share=0.5).trajectory()["hard_negative_share"] == 0.5
    with pytest.raises(TrainingError, match="hard_negative_share must be in"):
        replace(plain, hard_negative_share=1.5)


def test_refuses_test_splits_and_dev_contexts_seen_in_training(data, tmp_path) -> None:
    train, dev = load_squad(data[0]), load_squad(data[1])
    ok = TrainConfig(train_paths=(data[0],), dev_paths=(data[1],), output_dir=tmp_path)
    check_separate(ok, train, dev)
    with pytest.raises(TrainingError, match="test"):
        check_separate(replace(ok, train_paths=(data[0], tmp_path / "covid-qa-test.json")), train, dev)
    with pytest.raises(TrainingError, match="both a training and a dev file"):
        check_separate(replace(ok, train_paths=(data[0], data[1])), train, dev)
    with pytest.raises(TrainingError, match="share their context"):
        check_separate(ok, train, train[:2])
    replaying = replace(ok, replay_paths=(tmp_path / "squad-test.json",), replay_questions=3)
    with pytest.raises(TrainingError, match="test splits"):
        check_separate(replaying, train, dev)
    with pytest.raises(TrainingError, match="both a training and a dev file"):
        check_separate(replace(replaying, replay_paths=(data[1],)), train, dev)
    with pytest.raises(TrainingError, match="both a training and a replay file"):
        check_separate(replace(replaying, replay_paths=(data[0],)), train, dev)
    for files, count in (((data[0],), 0), ((), 3)):
        with pytest.raises(TrainingError, match="--replay-questions"):
            replace(ok, replay_paths=files, replay_questions=count)


@pytest.mark.model
def test_replayed_questions_join_the_training_data_drawn_by_the_seed(tiny_base, data, tmp_path) -> None:
    replay = squad_file(tmp_path / "tiny-replay.json", 2)  # 8 questions over other contexts
    plain = run_training(config_for(tiny_base, data, tmp_path / "plain", max_steps=1), progress=False)
    config = config_for(tiny_base, data, tmp_path / "replay", max_steps=1, replay_paths=(replay,), replay_questions=5)
    run_training(config, progress=False)
    report = json.loads((tmp_path / "replay" / "training.json").read_text())
    before = json.loads((plain.output_dir / "training.json").read_text())
    assert report["data"]["replay"] == [
        {"path": str(replay), "sha256": sha256_file(replay), "questions": 8, "drawn": 5}
    ]
    assert report["hyperparameters"]["replay_questions"] == 5
    assert report["windows"]["examples"] == before["windows"]["examples"] + 5
    assert report["windows"]["positive"] > before["windows"]["positive"]
    with pytest.raises(TrainingError, match="the replay files hold 8"):
        run_training(replace(config, replay_questions=9, output_dir=tmp_path / "too-many"), progress=False)


def test_schedule_and_dev_sample_are_fixed() -> None:
    lrs = [lr_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[9] == pytest.approx(1.0) and lrs[0] == pytest.approx(0.1)
    assert all(x >= y for x, y in itertools.pairwise(lrs[10:])) and lrs[-1] < 0.02
    items = list(range(50))
    assert dev_subset(items, 10, 3) == dev_subset(items, 10, 3) != dev_subset(items, 10, 4)
    assert dev_subset(items, 0, 3) == items


def test_bf16_is_refused_on_a_cpu_that_would_emulate_it() -> None:
    from qa.readers.precision import Precision
    from qa.training.trainer import check_precision

    with pytest.raises(TrainingError, match="--precision fp32"):
        check_precision(Precision.BF16, "cpu", {"avx2", "fma"})
    check_precision(Precision.BF16, "cpu", {"avx2", "avx512_bf16"})  # native: allowed
    check_precision(Precision.FP32, "cpu", {"avx2"})  # fp32 always runs
    check_precision(Precision.BF16, "cuda", {"avx2"})  # the CPU's flags do not matter on a GPU
