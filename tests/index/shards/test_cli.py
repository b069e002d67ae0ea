"""`qa index --shards 3` then `qa ask --index-dir` answers as the single-node index; `qa eval --index-dir`
scores a prebuilt sharded index as it scores the unsharded one."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import SHARED

pytestmark = [pytest.mark.ray, pytest.mark.model, pytest.mark.slow]
QUESTION = "What was the median overall survival with STRIDE?"
SEED_DEV = SHARED / "gold" / "seed_dev.jsonl"


@pytest.fixture(scope="module")
def indexes(ray_cluster, tmp_path_factory):
    from cli import app

    root = tmp_path_factory.mktemp("cli-shards")
    runner = CliRunner()
    single = runner.invoke(app, ["index", "--index-dir", str(root / "single")])
    assert single.exit_code == 0, single.output
    sharded = runner.invoke(app, ["index", "--index-dir", str(root / "sharded"), "--shards", "3", "--engine", "ray"])
    assert sharded.exit_code == 0, sharded.output
    assert "on 3 shards" in sharded.output
    return root / "single", root / "sharded"


def test_qa_ask_on_three_shards_answers_as_single_node(indexes):
    from cli import app

    out = []
    for d in indexes:
        res = CliRunner().invoke(app, ["ask", "--index-dir", str(d), "--json", QUESTION])
        assert res.exit_code == 0, res.output
        body = json.loads(res.stdout)
        body.pop("took_ms"), body.pop("index_fingerprint", None)
        out.append(body)
    assert out[0] == out[1]
    assert out[1]["answers"][0]["text"] == "16.43 months"


def test_an_unknown_engine_is_refused_by_name(tmp_path):
    from cli import app

    res = CliRunner().invoke(app, ["index", "--index-dir", str(tmp_path), "--shards", "2", "--engine", "spark"])
    assert res.exit_code == 2 and "spark" in res.output


def test_qa_eval_on_a_prebuilt_sharded_index_scores_as_the_unsharded_one(indexes, embedder):
    from eval.datasets import load_gold
    from eval.runner import EvalRunner, RunConfig
    from qa.settings import Settings

    gold = load_gold(SEED_DEV)
    results = []
    for d in indexes:
        runner = EvalRunner(gold, Settings(_env_file=None), embedder=embedder, index_dir=d)
        runner.warm_up()
        assert runner.pipeline.index.path.parent.parent == d  # the given index, not one built in the cache
        results.append(runner.run(RunConfig()))
    single, sharded = results
    assert sharded.retrieval == single.retrieval
    assert sharded.answer == single.answer
    assert [r.predicted for r in sharded.records] == [r.predicted for r in single.records]


def test_qa_eval_refuses_an_index_without_the_gold_documents(indexes, embedder, pubmedqa_documents):
    from eval.datasets import load_gold
    from eval.runner import EvalRunner
    from index.errors import IndexMismatchError
    from qa.settings import Settings
    from tests.index.shards.conftest import PUBMEDQA

    runner = EvalRunner(load_gold(PUBMEDQA), Settings(_env_file=None), embedder=embedder, index_dir=indexes[1])
    with pytest.raises(IndexMismatchError, match="1000 gold documents missing"):
        runner.warm_up()
