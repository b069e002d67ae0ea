"""The README's results block and docs/reader.md are generated from docs/results/*.json: they cannot drift."""

from __future__ import annotations

from eval import results_doc


def test_generated_results_are_up_to_date() -> None:
    assert results_doc.main(["--check"]) == 0, "run: python -m eval.results_doc"


def test_the_readme_block_shows_each_reader_and_the_mean(tmp_path) -> None:
    block = results_doc.readme_block()
    assert block.startswith(results_doc.BEGIN) and block.endswith(results_doc.END)
    for label in ("heuristic", "trained (default)", "mean over the dev sets"):
        assert label in block
