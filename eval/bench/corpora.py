"""The corpora benchmarks run on, by name: the built-in abstracts, PubMedQA's 1,000 abstracts, COVID-QA's papers.

A name resolves to the files of the shared benchmark folder (`--data-dir`, default `../shared/benchmarks` next to
the repository); any other value is read as a corpus file or folder (`qa index` formats).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from eval.bench.common import DEFAULT_DATA_DIR
from eval.bench.questions import BUILTIN_QUESTIONS
from index.documents import Document


class NamedCorpus(StrEnum):
    BUILTIN = "builtin"
    PUBMEDQA = "pubmedqa"
    COVIDQA = "covidqa"


@dataclass(frozen=True, slots=True)
class BenchCorpus:
    name: str
    documents: list[Document]
    questions: list[str]
    source: str


def _gold_corpus(name: str, path: Path) -> BenchCorpus:
    from eval.datasets import load_gold

    if not path.exists():
        raise FileNotFoundError(f"{path}: not found; pass --data-dir with the shared benchmarks folder")
    gold = load_gold(path)
    return BenchCorpus(name, gold.documents, [e.question for e in gold.examples], str(path))


def load_bench_corpus(
    name: str, data_dir: Path = DEFAULT_DATA_DIR, limit: int | None = None, seed: int = 0
) -> BenchCorpus:
    """A corpus and questions asked of it; `limit` keeps a seeded sample of documents (in corpus order)."""
    if name == NamedCorpus.BUILTIN:
        from index.ingest import load_corpus
        from qa.settings import BUILTIN_CORPUS

        corpus = BenchCorpus(name, load_corpus(BUILTIN_CORPUS).documents, list(BUILTIN_QUESTIONS), str(BUILTIN_CORPUS))
    elif name == NamedCorpus.PUBMEDQA:
        corpus = _gold_corpus(name, Path(data_dir) / "pubmedqa" / "ori_pqal.json")
    elif name == NamedCorpus.COVIDQA:
        corpus = _gold_corpus(name, Path(data_dir) / "covid_qa" / "covid-qa-dev.json")
    else:
        from index.ingest import load_corpus

        path = Path(name)
        corpus = BenchCorpus(path.stem, load_corpus(path).documents, list(BUILTIN_QUESTIONS), str(path))
    if limit is not None and limit < len(corpus.documents):
        keep = sorted(random.Random(seed).sample(range(len(corpus.documents)), limit))
        corpus = BenchCorpus(
            f"{corpus.name}[{limit}]", [corpus.documents[i] for i in keep], corpus.questions, corpus.source
        )
    return corpus
