"""One local Ray cluster for the whole session (2 CPUs, loopback only, no dashboard), started and stopped here,
and the corpora the sharded tests share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.documents import Document
from tests.conftest import SHARED

PUBMEDQA = SHARED / "benchmarks" / "pubmedqa" / "ori_pqal.json"
RAY_CPUS = 2  # the workspace's machine has 2 cores; a test cluster never asks for more


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    from index.shards.build import init_ray

    if ray.is_initialized():
        ray.shutdown()
    init_ray(num_cpus=RAY_CPUS)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def pubmedqa_documents() -> list[Document]:
    """PubMedQA's 1,000 abstracts, as the evaluation reads them."""
    from eval.datasets import load_gold

    return load_gold(PUBMEDQA).documents


@pytest.fixture(scope="session")
def pubmedqa_questions() -> list[str]:
    return [item["QUESTION"] for item in json.loads(PUBMEDQA.read_text(encoding="utf-8")).values()]


def write_jsonl(path: Path, documents: list[Document]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for d in documents:
            fh.write(json.dumps(d.to_json(), ensure_ascii=False) + "\n")
    return path
