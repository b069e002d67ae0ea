"""Per-question reader latency, torch vs onnx (vs onnx-int8), on the passages the pipeline retrieves for seed_dev.

Run: nice .venv/bin/python -m eval.bench.reader_onnx ../shared/gold/seed_dev.jsonl var/reader-covidqa 30
"""

import statistics
import sys
import time

from eval.datasets import load_gold
from eval.runner import EvalRunner
from qa.commands import load_settings
from qa.readers.transformers_reader import TransformersReader


def main() -> None:
    gold_path, model, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings = load_settings(reader="transformers", reader_model=model)
    runner = EvalRunner(load_gold(gold_path), settings, limit=limit)
    runner.warm_up()
    pipe = runner._pipeline
    inputs = []
    for ex in runner.examples:
        passages = pipe.retrieve(ex.question, settings.top_k, settings.retriever)
        inputs.append((ex.question, pipe.expand_passages(passages)))
    docs = pipe.index.documents
    results = {}
    for backend in sys.argv[4:] or ["torch", "onnx"]:
        r = TransformersReader(
            model,
            max_answer_tokens=settings.max_answer_tokens,
            backend=backend,
            onnx_cache_dir=settings.onnx_cache_path(),
        )
        t0 = time.perf_counter()
        try:
            r.warm_up()
        except Exception as err:
            print(f"{backend}: {err}")
            continue
        load_s = time.perf_counter() - t0
        for q, ps in inputs[:3]:
            r.run(q, ps, docs, 12)
        ms, answers = [], []
        for q, ps in inputs:
            t = time.perf_counter()
            out = r.run(q, ps, docs, 12)
            ms.append((time.perf_counter() - t) * 1000)
            answers.append([(a.text, a.doc_id, a.start, a.end) for a in out[:1]])
        results[backend] = answers
        with open("/proc/loadavg") as fh:
            load = fh.read().split()[:3]
        print(
            f"{backend}: warm_up {load_s:.1f} s, p50 {statistics.median(ms):.1f} ms, mean {statistics.mean(ms):.1f} ms, "
            f"n={len(ms)}, load {' '.join(load)}",
            flush=True,
        )
    ref = results.get("torch")
    for b, ans in results.items():
        if ref is not None and b != "torch":
            same = sum(a == t for a, t in zip(ans, ref, strict=True))
            print(f"{b}: best answer (text, doc, offsets) equal to torch on {same}/{len(ref)}")


if __name__ == "__main__":
    main()
