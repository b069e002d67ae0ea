#!/usr/bin/env python3
"""txtai on the benchmark corpus: index the documents with the local MiniLM folder (faiss backend), then time
`Embeddings.search`. Runs in var/peers/txtai (see setup.sh); `qa bench peers` calls it and reads --out.

Variants: `default` (txtai's own settings: its tokenizer truncates at 512 tokens, past MiniLM's 256) and
`maxlength` (`maxlength=True`: truncate at the model's own max_seq_length, the same work as sentence-transformers).
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import args, read_docs, time_queries, write


def main() -> None:
    a = args(__doc__, ["default", "maxlength"])
    from txtai import Embeddings

    docs = read_docs(a.docs)
    questions = json.loads(a.questions.read_text(encoding="utf-8"))
    config = {"path": a.model, "backend": "faiss", "content": False}
    if a.variant == "maxlength":
        config["maxlength"] = True
    emb = Embeddings(dict(config))  # txtai writes its own keys into the dict it is given
    rows = [(d["id"], d["text"], None) for d in docs]
    emb.index(rows[:8])  # load the model and set up: not indexing time
    t0 = time.perf_counter()
    emb.index(rows)
    index_s = time.perf_counter() - t0
    import torch

    torch.set_num_threads(1)  # queries with one thread, as every framework in the comparison answers them
    embed_only = time_queries(lambda q: emb.batchtransform([q]), questions, a.queries)
    query = time_queries(lambda q: emb.search(q, a.top_k), questions, a.queries)
    write(
        a.out,
        {
            "framework": "txtai",
            "version": version("txtai"),
            "variant": a.variant,
            "config": config,
            "documents": len(docs),
            "count": emb.count(),
            "index_s": round(index_s, 3),
            "query_threads": torch.get_num_threads(),
            "query_ms": query,
            "query_embed_ms": embed_only,
        },
    )


if __name__ == "__main__":
    main()
