"""Does a faster embedding backend keep quality? The harness's numbers with each backend, side by side.

Each backend gets its own index of the gold corpus (an int8 index is built by the int8 encoder: its
fingerprint differs) in the harness's eval cache, then the default configuration (hybrid retrieval + the
configured reader) answers every question. A backend passes when every answer and retrieval figure is within
`MAX_DELTA_POINTS` (0.5) of torch's, in points (percent x 100 for rates in [0, 1]).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MAX_DELTA_POINTS = 0.5
GATED = ("exact_match", "f1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
CACHE_DIR = Path("var/eval-cache")  # the harness's: keys include the fingerprint, so backends never share an index


def _figures(result: Any) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k in ("exact_match", "f1"):
        v = result.answer.get(k)
        out[k] = None if v is None else round(100 * float(v), 3)
    for k, v in result.retrieval.items():
        if k != "n":
            out[k] = None if v is None else round(100 * float(v), 3)
    return out


def compare_to_torch(per_backend: dict[str, Any]) -> None:
    """Add each backend's difference from torch, in points, and whether every gated figure is within 0.5."""
    if "torch" not in per_backend:
        return
    ref = per_backend["torch"]["figures"]
    for b, r in per_backend.items():
        if b == "torch":
            continue
        delta = {k: round(v - ref[k], 3) for k, v in r["figures"].items() if v is not None and ref.get(k) is not None}
        r["delta_points_vs_torch"] = delta
        r["within_tolerance"] = all(abs(delta[k]) <= MAX_DELTA_POINTS for k in GATED if k in delta)


def bench_quality(
    gold_paths: Sequence[Path],
    backends: Sequence[str],
    cache_dir: Path = CACHE_DIR,
    say: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    from eval.datasets import load_gold
    from eval.runner import EvalRunner, RunConfig
    from index.embedder import Embedder
    from qa.settings import Settings

    settings = Settings(_env_file=None)
    out: dict[str, Any] = {"max_delta_points": MAX_DELTA_POINTS, "gated": list(GATED), "gold": {}}
    for path in gold_paths:
        gold = load_gold(path)
        per: dict[str, Any] = {}
        for b in backends:
            embedder = Embedder(settings.embedding_model, settings.embedding_batch_size, backend=b)
            runner = EvalRunner(gold, settings, cache_dir=cache_dir, embedder=embedder, say=say)
            runner.warm_up()
            config = RunConfig(settings.retriever, None if gold.retrieval_only else settings.reader)
            result = runner.run(config)
            per[b] = {"config": config.name, "fingerprint": embedder.fingerprint, "figures": _figures(result)}
            say(f"{gold.name} {b}: {per[b]['figures']}")
        compare_to_torch(per)
        out["gold"][gold.name] = {"questions": len(gold.examples), "backends": per}
    return out
